"""Where an operator applies: all of the latent, one row, column or channel, a seeded random fraction of its
elements, or a rectangular region in relative image coordinates.

A `Where` is written as a short string, the same in Python, the CLI and recipes:

    "all"                      every element
    "row:8"  "column:3"        one row / column index of the latent (16 x 16 for the shipped model, 64 x 64 SD)
    "row:mid"  "column:0.25"   a row / column relative to the latent's size (mid = 0.5; a fraction in [0, 1)),
                               the same place at any model size: row 8 of 16, row 32 of SD's 64
    "channel:2"                one latent channel (0..3 for an image model's 4; 0..C-1 for a music model's C)
    "group:1"                  one group of 4 latent channels (4G..4G+3) of a music model, whose channel
                               operators act on every group of 4 channels
    "time:1.5-3"               seconds 1.5 to 3 of a music model's output (its latent frames that cover them)
    "fraction:0.05"            a random 5% of the elements (the paper's "5% of the features"), drawn from its
    "fraction:0.05:seed=7"     own generator (default seed 0), independent of the diffusion noise and identical
                               for every frame of a video
    "region:0.25,0.25,0.75,0.75"  x0,y0,x1,y1 in [0, 1], origin top-left (the latent maps to the image layout)
    "token:3"  "token:orb"     for a bend of target "text" only: one token of the prompt embedding (0 = the
                               start token), or the tokens of a word of the prompt (found by the pipeline's
                               tokenizer at render start, see `token_positions`)

`mask(shape)` gives a boolean tensor broadcastable to the latent; the bend's result is
``torch.where(mask, op(x), x)``.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..checks import BendlabValueError, check_int

KINDS = ("all", "row", "column", "channel", "group", "fraction", "region", "token", "time")
FORMS = ("all, row:I, column:I, channel:C, group:G, fraction:P[:seed=S], region:X0,Y0,X1,Y1, token:I, token:WORD, "
         "time:A-B")


class WhereError(BendlabValueError):
    """A selection that is malformed or out of range (one line naming the value and what is accepted)."""


def _as_where_error(check, *args):
    try:
        return check(*args)
    except BendlabValueError as e:
        raise WhereError(str(e)) from None


@dataclass(frozen=True)
class Where:
    kind: str = "all"
    index: int | None = None  # row, column or channel
    rel: float | None = None  # row or column as a fraction of the latent's height / width
    fraction: float | None = None
    seed: int = 0
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in [0, 1]
    word: str | None = None  # token:WORD
    span: tuple[float, float] | None = None  # time:A-B, seconds of the output
    rate: float | None = None  # latent frames per second (set for a music model by `at_rate` when a render starts)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise WhereError(f"unknown where {self.kind!r}; accepted: {', '.join(KINDS)}")
        if self.rel is not None:
            if self.kind not in ("row", "column") or not (isinstance(self.rel, float) and 0 <= self.rel < 1):
                raise WhereError(f"relative {self.kind} {self.rel!r}: accepted: row or column at a fraction in "
                                 "[0, 1), e.g. row:mid or row:0.25")
        elif self.kind == "token" and self.word is not None:
            if not isinstance(self.word, str) or not self.word.strip() or self.index is not None:
                raise WhereError(f"token word {self.word!r} is empty; accepted: token:I or token:WORD")
        elif self.kind in ("row", "column", "channel", "group", "token"):
            _as_where_error(check_int, f"{self.kind} index", self.index, 0)
        if self.kind == "time":
            a, b = self.span if self.span is not None and len(self.span) == 2 else (None, None)
            if a is None or not (math.isfinite(a) and math.isfinite(b) and 0 <= a < b):
                raise WhereError(f"time span {self.span!r} is empty or negative; accepted: time:A-B in seconds with "
                                 "0 <= A < B, e.g. time:1.5-3")
        _as_where_error(check_int, "where seed", self.seed, 0, 2**63 - 1)
        if self.kind == "fraction":
            f = self.fraction
            if f is None or not math.isfinite(f) or not 0 < f <= 1:
                raise WhereError(f"fraction {f!r} is outside (0, 1]; accepted: 0 < p <= 1, e.g. 0.05 for 5%")
        if self.kind == "region":
            b = self.box
            if b is None or len(b) != 4 or not all(math.isfinite(v) for v in b):
                raise WhereError(f"region {b!r} is not four numbers x0,y0,x1,y1")
            x0, y0, x1, y1 = b
            if not (0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1):
                raise WhereError(f"region {b!r} is empty or outside the unit square; "
                                 "accepted: 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1")

    @classmethod
    def parse(cls, spec: "str | Where | None") -> "Where":
        """Parse "all", "row:i", "column:i", "channel:c", "fraction:p[:seed=s]", "region:x0,y0,x1,y1"."""
        if spec is None:
            return cls()
        if isinstance(spec, Where):
            return spec
        if not isinstance(spec, str):
            raise BendlabValueError(f"where {spec!r} is not a string like 'all', 'row:8' or 'fraction:0.05'")
        kind, _, rest = spec.strip().partition(":")
        kind = kind.strip().lower()
        try:
            if kind == "all" and not rest:
                return cls()
            if kind in ("row", "column") and (rest.strip() == "mid" or "." in rest):
                return cls(kind, rel=0.5 if rest.strip() == "mid" else float(rest))
            if kind in ("row", "column", "channel", "group"):
                return cls(kind, index=int(rest))
            if kind == "time":
                a, sep, b = rest.strip().partition("-")
                if not sep:
                    raise ValueError("no '-' between the start and end seconds")
                return cls(kind, span=(float(a), float(b)))
            if kind == "token":
                rest = rest.strip()
                return cls(kind, index=int(rest)) if rest.lstrip("-").isdigit() else cls(kind, word=rest)
            if kind == "fraction":
                p, _, seed = rest.partition(":")
                return cls(kind, fraction=float(p), seed=int(seed.removeprefix("seed=")) if seed else 0)
            if kind == "region":
                return cls(kind, box=tuple(float(v) for v in rest.split(",")))
        except ValueError as e:
            if isinstance(e, WhereError):
                raise
            raise BendlabValueError(f"cannot read where {spec!r}: {e}; accepted forms: {FORMS}") from None
        raise BendlabValueError(f"unknown where {spec!r}; accepted forms: {FORMS}")

    def __str__(self) -> str:
        if self.kind == "all":
            return "all"
        if self.kind == "fraction":
            return f"fraction:{self.fraction:g}" + (f":seed={self.seed}" if self.seed else "")
        if self.kind == "token":
            return f"token:{self.index if self.word is None else self.word}"
        if self.kind == "region":
            return "region:" + ",".join(f"{v:g}" for v in self.box)
        if self.kind == "time":
            return f"time:{self.span[0]:g}-{self.span[1]:g}"
        if self.rel is not None:
            return f"{self.kind}:{'mid' if self.rel == 0.5 else format(self.rel, 'g')}"
        return f"{self.kind}:{self.index}"

    def position(self, shape: tuple[int, ...]) -> int | None:
        """The row, column or channel index in a latent of shape (B, C, H, W)."""
        if self.rel is not None:
            return int(self.rel * (shape[2] if self.kind == "row" else shape[3]))
        return self.index

    def at_rate(self, rate: float) -> "Where":
        """This selection for a latent of `rate` frames per second (a music model's): what `time:A-B` needs to
        find its frames; any other selection is returned as it is."""
        from dataclasses import replace
        return replace(self, rate=float(rate)) if self.kind == "time" else self

    def frames(self, length: int) -> tuple[int, int]:
        """The latent frames [first, end) a `time:A-B` selection covers (every frame that overlaps the span)."""
        a, b = self.span
        first = int(math.floor(a * self.rate))
        return first, min(length, max(first + 1, int(math.ceil(b * self.rate))))

    def check(self, shape: tuple[int, ...]) -> None:
        """Raise a one-line error if this selection does not fit a latent of shape (B, C, H, W)."""
        _, C, H, W = shape
        size = {"row": H, "column": W, "channel": C, "group": C // 4}.get(self.kind)
        if self.kind == "group" and C % 4:
            raise BendlabValueError(f"where {self} needs a latent of groups of 4 channels; this one has {C}; "
                                    "accepted: channel:C")
        if size is not None and self.position(shape) >= size:
            what = f"{C} channels" if self.kind in ("channel", "group") and H == 1 else f"a {C}x{H}x{W} latent"
            raise BendlabValueError(f"{self.kind} {self.index} is out of range for {what}; "
                                    f"accepted: 0..{size - 1}")
        if self.kind == "time" and self.rate is None:
            raise BendlabValueError(f"where {self} selects seconds of a music model's output; accepted for an image "
                                    "latent: all, row:I, column:I, channel:C, fraction:P, region:X0,Y0,X1,Y1")
        if self.kind == "time" and math.floor(self.span[0] * self.rate) >= W:
            raise BendlabValueError(f"where {self} starts after the latent's {W / self.rate:g} s; accepted: a span "
                                    f"that starts before {W / self.rate:g} s")

    def token_positions(self, tokenizer, prompt: str) -> list[int]:
        """The positions of the selected tokens in the prompt embedding of `prompt` (0 = the start token): every
        token for "all", [I] for "token:I" (a one-line error beyond the tokenizer's length), and for "token:WORD"
        the positions of each occurrence of the word's tokens (a one-line error naming the prompt's words if it
        is not there)."""
        n = tokenizer.model_max_length
        if self.kind == "all":
            return list(range(n))
        if self.kind != "token":
            raise WhereError(f"where {self} selects in a latent, not among prompt tokens; accepted for the text "
                             "target: all, token:I, token:WORD")
        if self.word is None:
            if self.index >= n:
                raise WhereError(f"token {self.index} is out of range for {n} prompt tokens; accepted: 0..{n - 1}")
            return [self.index]
        ids = tokenizer(prompt, truncation=True, max_length=n).input_ids
        word = tokenizer(self.word, add_special_tokens=False).input_ids
        k = len(word)
        found = [i + j for i in range(len(ids) - k + 1) if ids[i:i + k] == word for j in range(k)]
        if not word or not found:
            words = " ".join(prompt.split()) or "(empty)"
            raise WhereError(f"token word {self.word!r} is not in the prompt {prompt!r}; accepted: token:I "
                             f"(0..{n - 1}) or a word of the prompt: {words}")
        return found

    def mask(self, shape: tuple[int, ...], device=None) -> torch.Tensor | None:
        """Boolean mask broadcastable to `shape` (B, C, H, W); None means everything."""
        if self.kind == "all":
            return None
        if self.kind == "token":
            raise WhereError(f"where {self} selects prompt tokens; accepted: target='text' for a token selection")
        self.check(shape)
        _, C, H, W = shape
        if self.kind == "all":
            return None
        m = torch.zeros(1, C, H, W, dtype=torch.bool)
        if self.kind == "row":
            m[..., self.position(shape), :] = True
        elif self.kind == "column":
            m[..., :, self.position(shape)] = True
        elif self.kind == "channel":
            m[:, self.index] = True
        elif self.kind == "group":
            m[:, 4 * self.index:4 * self.index + 4] = True
        elif self.kind == "time":
            first, end = self.frames(W)
            m[..., first:end] = True
        elif self.kind == "fraction":
            n = C * H * W
            k = max(1, round(self.fraction * n))
            g = torch.Generator().manual_seed(self.seed)
            m.view(-1)[torch.randperm(n, generator=g)[:k]] = True
        else:
            x0, y0, x1, y1 = self.box
            r0, r1 = int(math.floor(y0 * H)), max(int(math.floor(y0 * H)) + 1, int(math.ceil(y1 * H)))
            c0, c1 = int(math.floor(x0 * W)), max(int(math.floor(x0 * W)) + 1, int(math.ceil(x1 * W)))
            m[..., r0:r1, c0:c1] = True
        return m.to(device) if device is not None else m
