"""A bend: operator + parameter + layer(s) + where (+ optional mean-normalisation, or a UNet module).

Layers follow the paper's figures: layer L in 0..N (N = denoising steps, default 50) acts on the latent x_t
just before the UNet evaluation of step L. Layer 0 is the initial noise (in image-to-image, the noised init
latent), layer N is the final latent just before the VAE decodes it; layer 49 is "before the last step". In
image-to-image N counts the steps actually run (about strength x steps).

A bend's `target` says what it bends:
- "latent" (the default): the latent x_t at the layers above;
- "unet:<module path>" (the same as ``module="<path>"``, e.g. "unet:mid_block"): the output of that UNet block
  during the UNet evaluations of the given steps (0..N-1): the original network bending of Broad et al.;
- "vae:<module path>" (e.g. "vae:decoder.up_blocks.1"): the output of that block of the VAE decoder, once, when
  the VAE decodes the final latent (a forward hook removed after the call). Its layer has no meaning: leave it
  out, or give N (the final layer, where the decode happens); any other layer is refused in one line. A batch
  carries one parameter per item, as the VAE decodes the B latents (no classifier-free guidance doubling).
- "text": the prompt embedding (B, 77, D) the UNet is conditioned on, during the UNet evaluations of the given
  steps (0..N-1, as for UNet modules): a forward pre-hook on the UNet bends its `encoder_hidden_states`, the
  positive (prompt) half only under classifier-free guidance (the negative prompt is left as it is), removed
  after the call. `where` selects tokens: "all", "token:I" (0 = the start token) or "token:WORD" (every token
  of that word of the prompt; a word not in the prompt is refused in one line when the render starts, before the
  UNet runs). Only the point-wise operators apply (`operators.POINTWISE_OPERATORS`), element-wise on the
  selected tokens' vectors; the others and `norm` are refused in one line. A batch carries one parameter per item.
- "attn:<module path>" (e.g. "attn:down_blocks.2.attentions.0.transformer_blocks.0.attn2"): the attention
  probabilities (the softmax, before it weighs the values) of that diffusers `Attention` module of the UNet
  (`attn1` self-attention, `attn2` cross-attention to the prompt's tokens), during the UNet evaluations of the given
  steps (0..N-1, as for UNet modules), through an attention processor installed on that module for the call (the
  original processor object put back afterwards, also on an error). `where`: "all", or for a cross-attention
  module "token:I" / "token:WORD" (the columns of those prompt tokens; refused in one line for self-attention).
  Operators: the point-wise ones on the selected probabilities, and AttentionBender's spatial transforms of a
  token's map over the image (`operators.ATTN_OPERATORS`: attn_rotate, attn_translate, attn_flip, attn_blur, valid
  for attention targets only), each column's map reshaped to the block's h x w; then every bent row is clamped
  at 0 and renormalised to sum to 1 (a row bent to all zeros becomes uniform). Under classifier-free guidance
  only the conditional (prompt) half is bent, as for the text target; a batch carries one parameter per item.
  Where a bend leaves the probabilities exactly as they were (an identity), the module's own processor computes
  the output, so the image is bit-identical. `norm` is refused (the rows are renormalised anyway).
As for UNet modules, the operators that mix the 4 latent channels (`operators.CHANNEL_OPERATORS`) are refused,
and `where` selects in the module's output (its channels, rows, columns).

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch

from . import operators
from ..checks import is_int
from .where import Where
from ..checks import BendlabValueError


@dataclass
class Bend:
    """One application of an operator.

    op:     operator name, see `bendlab.operators.OPERATORS`
    param:  the operator's r (radians for rotations, channel 0..3 for reflect, kernel size for erode/dilate);
            a number, or a sequence / (B,) tensor with one value per batch item. The operators with K
            parameters (`operators.N_PARAMS`: matrix 16, row by row or as 4x4; rotate6 6 angles) take K numbers,
            or a (B, K) tensor with one set per batch item; hadamard has none (r is ignored)
    layer:  an int in 0..N, or (first, last) for every layer of that inclusive range
    where:  "all", "row:i", "column:i", "channel:c", "fraction:p[:seed=s]", "region:x0,y0,x1,y1"; for targets "text"
            and cross-attention "attn:...attn2" also "token:I" / "token:WORD"
    norm:   optional mean-normalisation after the operator: "channel", "row" or "column"
    module: optional UNet block (e.g. "mid_block", "up_blocks.1") whose output is bent instead of the latent
    target: "latent" (default), "unet:<module path>" (sets `module`), "vae:<module path>", "text" or
            "attn:<module path>" (see the module's docstring); after construction it always names the target, e.g.
            "unet:mid_block" for module="mid_block"
    """

    op: str
    param: object = 0.0
    layer: int | tuple[int, int] | None = None  # None: 0, or for a VAE target "at decode"
    where: Where | str = "all"
    norm: str | None = None
    module: str | None = None
    target: str | None = None
    _mask_cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self):
        operators.get(self.op)
        try:
            self.param = operators.canonical_param(self.op, self.param)
            operators.check_param(self.op, self.param)
        except (TypeError, RuntimeError, ValueError) as e:
            if isinstance(e, ValueError) and str(e).startswith(f"{self.op}:"):
                raise  # check_param's own one-line error
            k = operators.N_PARAMS.get(self.op)
            what, accepted = (("numbers", f"{k} numbers or one set of {k} per batch item") if k else
                              ("a number", "a number or one number per batch item"))
            raise BendlabValueError(f"{self.op}: parameter {operators._show(self.param)} is not {what}; accepted: "
                                    f"{accepted}") from None
        self.where = Where.parse(self.where)
        if self.norm is not None and self.norm not in operators.NORM_DIMS:
            raise BendlabValueError(f"unknown normalisation {self.norm!r}; accepted: {', '.join(operators.NORM_DIMS)}")
        if self.module is not None and (not isinstance(self.module, str) or not self.module.strip()):
            raise BendlabValueError(f"module {self.module!r} is not a UNet block name; accepted: e.g. mid_block, "
                                    "up_blocks.1, or None to bend the latent")
        self.target = _check_target(self.target, self.module)
        if self.kind == "unet":
            self.module = self.path
        if not (self.kind == "vae" and self.layer is None):  # None: a VAE bend at decode
            self.layer = _check_layer(0 if self.layer is None else self.layer)
        if self.kind == "text":
            if self.op not in operators.POINTWISE_OPERATORS:
                raise BendlabValueError(f"{self.op} is not point-wise and cannot bend the text embedding; accepted for "
                                        f"target text: {', '.join(operators.POINTWISE_OPERATORS)}")
            if self.norm is not None:
                raise BendlabValueError(f"norm {self.norm!r} has no meaning for the text embedding; accepted for "
                                        f"target "
                                        "text: no norm")
            if self.where.kind not in ("all", "token"):
                raise BendlabValueError(f"where {self.where} selects in a latent, not among prompt tokens; accepted "
                                        f"for "
                                        "target text: all, token:I, token:WORD")
        elif self.kind == "attn":
            self._check_attn()
        elif self.where.kind == "token":
            raise BendlabValueError(f"where {self.where} selects prompt tokens and cannot bend target {self.target}; "
                                    "accepted: target='text' or a cross-attention target 'attn:...attn2' for a token "
                                    "selection")
        if self.kind != "attn" and self.op in operators.ATTN_OPERATORS:
            raise BendlabValueError(f"{self.op} transforms a token's attention map and cannot bend target "
                                    f"{self.target}; "
                                    "accepted: target='attn:<module path>' (`bendlab targets` lists them)")
        if self.kind != "latent" and self.op in operators.CHANNEL_OPERATORS:
            allowed = ", ".join(sorted(set(operators.OPERATORS) - operators.CHANNEL_OPERATORS))
            what = "the VAE decoder's" if self.kind == "vae" else "a UNet"
            raise BendlabValueError(f"{self.op} mixes the 4 latent channels and cannot bend {what} module's output; "
                                    f"accepted for modules: {allowed}")

    def _check_attn(self) -> None:
        """One-line errors for what an attention target cannot take: operators that are neither point-wise nor
        spatial, a norm, a where other than all/token, and a token selection on a self-attention module (known
        here by its name, attn1; `bend.fit.check_bends` checks the module itself)."""
        allowed = operators.POINTWISE_OPERATORS + operators.ATTN_OPERATORS
        if self.op not in allowed:
            raise BendlabValueError(f"{self.op} cannot bend attention probabilities; accepted for attn targets: "
                                    f"{', '.join(allowed)}")
        if self.norm is not None:
            raise BendlabValueError(f"norm {self.norm!r} has no meaning for attention probabilities (their rows are "
                                    "renormalised to sum to 1); accepted for attn targets: no norm")
        if self.where.kind not in ("all", "token"):
            raise BendlabValueError(f"where {self.where} selects in a latent, not among attention columns; accepted "
                                    f"for "
                                    "attn targets: all, or token:I / token:WORD for cross-attention (attn2)")
        if self.where.kind == "token" and self.path.rsplit(".", 1)[-1] == "attn1":
            raise BendlabValueError(f"where {self.where} selects prompt tokens, but {self.target} is self-attention "
                                    f"(its "
                                    "keys are image positions); accepted: where='all', or a cross-attention module "
                                    "(attn2) for a token")

    @property
    def kind(self) -> str:
        """"latent", "unet", "vae", "text" or "attn": what the target bends."""
        return self.target.split(":", 1)[0]

    @property
    def path(self) -> str | None:
        """The module path of a "unet:", "vae:" or "attn:" target inside that model (None for the latent, text)."""
        return self.target.split(":", 1)[1] if ":" in self.target else None

    @property
    def layers(self) -> tuple[int, ...]:
        """The layers it acts at (empty for a VAE bend given no layer: it acts at decode)."""
        if self.layer is None:
            return ()
        if isinstance(self.layer, tuple):
            return tuple(range(self.layer[0], self.layer[1] + 1))
        return (self.layer,)

    @classmethod
    def from_dict(cls, d: dict) -> "Bend":
        """Build from a recipe entry: keys op, param, layer, where, norm, module, target."""
        names = {f.name for f in fields(cls) if f.init}
        unknown = set(d) - names
        if unknown:
            raise BendlabValueError(f"unknown recipe key(s) {sorted(unknown)}; accepted: {', '.join(sorted(names))}")
        if "op" not in d:
            raise BendlabValueError(f"recipe entry {d!r} has no 'op'; accepted operators: "
                                    f"{', '.join(operators.OPERATORS)}")
        return cls(**d)

    def to_dict(self) -> dict:
        p = self.param.tolist() if isinstance(self.param, torch.Tensor) else self.param
        d = {"op": self.op, "param": p, "layer": list(self.layer) if isinstance(self.layer, tuple) else self.layer,
             "where": str(self.where)}
        if self.layer is None:
            del d["layer"]
        if self.norm:
            d["norm"] = self.norm
        if self.module:
            d["module"] = self.module
        if self.kind in ("vae", "text", "attn"):
            d["target"] = self.target
        return d

    def check(self, n_layers: int, latent_shape: tuple[int, ...] | None = None) -> None:
        """Raise a one-line error if this bend does not fit a render of n_layers steps (and that latent shape)."""
        if self.kind == "vae":
            if self.layer not in (None, n_layers):
                raise BendlabValueError(f"layer {self.layer} of {self.target}: a VAE bend acts once, when the VAE "
                                        f"decodes "
                                        f"the final latent; accepted: no layer, or layer {n_layers} (the final one)")
        elif max(self.layers) > (top := n_layers - 1 if self.kind in ("unet", "text", "attn") else n_layers):
            what = ("module bends act on the UNet evaluations of steps" if self.module else
                    f"{self.kind} bends act on the UNet evaluations of steps" if self.kind in ("text", "attn") else
                    "layers run")
            raise BendlabValueError(f"layer {self.layer} is outside 0..{top} ({what} 0..{top} for {n_layers} steps)")
        if latent_shape is None:
            return
        p = self.param
        n = operators.batch_of(self.op, p)
        if n is not None and n != latent_shape[0]:
            k = operators.N_PARAMS.get(self.op)
            what = f"{n} sets of {k} parameters" if k else f"{n} parameter values"
            accepted = f"{k} numbers or one set of {k} per batch item" if k else "a number or one value per " \
                "batch item"
            raise BendlabValueError(f"{self.op}: {what} for a batch of {latent_shape[0]}; accepted: {accepted}")
        if self.op in operators.KERNEL_OPERATORS:
            side = max(latent_shape[-2:])
            if torch.as_tensor(p).max() > side:
                raise BendlabValueError(f"{self.op}: kernel size {_text(p)} is larger than the {latent_shape[-2]}x"
                                        f"{latent_shape[-1]} latent; accepted: 1..{side}")
        if self.kind == "latent":
            self.where.check(latent_shape)
            if self.op in operators.CHANNEL_OPERATORS and latent_shape[1] % 4:
                raise BendlabValueError(f"{self.op} acts on groups of 4 latent channels and this latent has "
                                        f"{latent_shape[1]}; accepted: the point-wise and morphological operators")

    def apply(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x where not selected, op(x) (then mean-normalised if asked) where selected; `mask` (broadcastable to
        x, e.g. the tokens of a text bend) replaces the where's own."""
        p = self.param
        n = operators.batch_of(self.op, p)
        if n is not None and n != x.shape[0] and x.shape[0] % n == 0:  # classifier-free guidance doubles a module's
            p = p.repeat(x.shape[0] // n, *([1] * (p.ndim - 1)))      # batch
        y = by_groups(operators.OPERATORS[self.op], x, p) if self.op in operators.CHANNEL_OPERATORS else \
            operators.OPERATORS[self.op](x, p)
        if self.norm:
            y = operators.mean_normalise(y, self.norm)
        if mask is not None:
            return torch.where(mask, y, x)
        key = (tuple(x.shape[1:]), x.device)
        if key not in self._mask_cache:
            self._mask_cache[key] = self.where.mask(x.shape, x.device)
        m = self._mask_cache[key]
        return y if m is None else torch.where(m, y, x)


def by_groups(op, x: torch.Tensor, p) -> torch.Tensor:
    """A channel operator (defined on 4 channels) applied to every group of 4 channels of x (N, C, H, W): channels
    4g..4g+3 are mixed among themselves, as the operator mixes an image latent's 4 (C = 4: op(x, p) itself). A
    music model's latent (Stable Audio Open: 64 channels) is bent as its 16 groups; `where="group:G"` keeps one."""
    N, C = x.shape[:2]
    if C == 4:
        return op(x, p)
    g = C // 4
    if isinstance(p, torch.Tensor) and p.ndim and p.shape[0] == N:  # one parameter per item: the same for its groups
        p = p.repeat_interleave(g, 0)
    return op(x.reshape(N * g, 4, *x.shape[2:]), p).reshape(x.shape)


def _text(p) -> str:
    return str(p.tolist() if isinstance(p, torch.Tensor) else p)


TARGET_KINDS = ("latent", "unet", "vae", "text", "attn")  # what a bend may target
PATH_KINDS = ("unet", "vae", "attn")  # the kinds that name a module: "KIND:<module path>"


def _check_target(target, module: str | None) -> str:
    """The canonical target: "latent", "text", "unet:PATH" (from target, or from module), "vae:PATH" or "attn:PATH";
    a one-line error for anything else, and for a target and a module that disagree."""
    accepted = "accepted: latent, text, unet:<module path> (e.g. unet:mid_block), vae:<module path> (e.g. " \
               "vae:decoder.up_blocks.1) or attn:<attention module path> (e.g. " \
               "attn:mid_block.attentions.0.transformer_blocks.0.attn2); `bendlab targets` lists them"
    if target is None:
        return "latent" if module is None else f"unet:{module}"
    if not isinstance(target, str):
        raise BendlabValueError(f"target {target!r} is not a string; {accepted}")
    kind, _, path = target.partition(":")
    if target not in ("latent", "text") and (kind not in PATH_KINDS or not path.strip()):
        raise BendlabValueError(f"target {target!r} is not a bend target; {accepted}")
    if module is not None and target != f"unet:{module}":
        raise BendlabValueError(f"target {target!r} and module {module!r} disagree; accepted: one of them "
                                f"(module=PATH is "
                                "target='unet:PATH')")
    return target


def _check_layer(layer) -> int | tuple[int, int]:
    """An int >= 0, or a (first, last) inclusive range given as a 2-sequence or a range object."""
    if is_int(layer) and layer >= 0:
        return layer
    if isinstance(layer, range) and len(layer) and layer.step == 1:
        layer = (layer.start, layer[-1])
    if isinstance(layer, (list, tuple)) and len(layer) == 2 and all(is_int(v) and v >= 0 for v in layer):
        if layer[0] > layer[1]:
            raise BendlabValueError(f"layer range {list(layer)} is reversed; accepted: [first, last] with first <= "
                                    f"last")
        return tuple(layer)
    raise BendlabValueError(f"layer {layer!r} is not an integer >= 0 or a [first, last] range of them")


def as_bends(bends) -> list[Bend]:
    """Accept a Bend, a dict (a recipe entry), or a sequence of them."""
    if bends is None:
        return []
    if isinstance(bends, (Bend, dict)):
        bends = [bends]
    if not isinstance(bends, (list, tuple)):
        raise BendlabValueError(f"bends {bends!r:.60} are not a Bend, a dict or a list of them")
    out = []
    for b in bends:
        if not isinstance(b, (Bend, dict)):
            raise BendlabValueError(f"bend {b!r:.60} is not a Bend or a dict with keys op, param, layer, ...; "
                                    f"accepted: "
                                    "e.g. Bend('add', 1.0, layer=40) or {'op': 'add', 'param': 1.0, 'layer': 40}")
        out.append(b if isinstance(b, Bend) else Bend.from_dict(b))
    return out
