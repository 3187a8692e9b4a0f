"""The bending engine: render a prompt with a list of bends on a stock diffusers pipeline (SD v1.x/2.x, SDXL).

Bends are installed only through diffusers' own extension points, for the duration of one call:
- layer 0 (the initial latent, or in image-to-image the noised init latent) by wrapping the pipeline's
  `prepare_latents` so whatever it prepares is bent before the first UNet evaluation;
- layers 1..N through `callback_on_step_end`, which receives the latent after step L-1, i.e. just before
  the UNet evaluation of step L (layer N: just before the VAE decodes);
- module bends through forward hooks on UNet blocks, and VAE bends through forward hooks on blocks of the VAE
  decoder (they act when the pipeline decodes), all removed when the call ends;
- text bends through one forward pre-hook on the UNet that bends the positive half of its
  `encoder_hidden_states` (the pipelines concatenate [negative, positive] under classifier-free guidance),
  removed when the call ends;
- attention bends (target "attn:PATH") through diffusers' attention processors: the `Attention` module at PATH
  gets an `AttnBendProcessor` (`Attention.set_processor`) wrapping the one it had, which is put back when the call
  ends (also on an error).

Branching sweeps: renders that share prompt, seed and every bend before layer L share their first L steps;
`render_grid` computes that prefix once and runs the branches as one batch from layer L, by truncating the
scheduler's timesteps exactly as diffusers' image-to-image pipeline does.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from diffusers.callbacks import PipelineCallback
from PIL import Image

from .bend import Bend, as_bends
from .checks import BendlabValueError, check_list, check_numbers, is_int
from . import models, operators
from .models import img2img_pipeline
from .paper import GUIDANCE, SEED, STEPS


# ------------------------------------------------------------------------------------------ validation
OUTPUT_TYPES = ("pil", "np", "pt", "latent")  # what diffusers' pipelines return


def check_settings(steps=STEPS, guidance=GUIDANCE, seed=SEED, strength=None, output_type="pil") -> None:
    """One-line errors for out-of-range render settings, raised before any model work."""
    from .checks import check_choice, check_int, check_number
    check_int("steps", steps, 1, 1000, accepted="the paper uses 50")
    check_number("guidance", guidance, 0, accepted="the paper uses 7.5; <= 1 turns classifier-free guidance off")
    check_int("seed", seed, 0, 2**63 - 1)
    if strength is not None:
        check_number("strength", strength, 0, 1, low_open=True, high_open=True,
                     accepted="0 < strength < 1 (0 keeps the init image, 1 ignores it)")
        if img2img_layers(steps, strength) < 1:
            raise BendlabValueError(f"strength {strength} with {steps} steps runs no denoising step; accepted: "
                                    f"strength >= {1 / steps:.3g}")
    check_choice("output_type", output_type, OUTPUT_TYPES)


def check_pipe(pipe) -> None:
    """A one-line error unless `pipe` is None or a loaded pipeline of a supported family (`models.FAMILIES`)."""
    import diffusers
    if pipe is None:
        return
    classes = tuple(getattr(diffusers, name) for f in models.FAMILIES for name in (f.txt2img, f.img2img))
    if not isinstance(pipe, classes):
        what = type(pipe).__name__ if isinstance(pipe, diffusers.DiffusionPipeline) else f"{pipe!r:.60}"
        raise ValueError(f"pipe {what} is not a supported pipeline; accepted: None or bendlab.load_pipeline(...), "
                         f"or a diffusers {models.SUPPORTED}")


def img2img_layers(steps: int, strength: float) -> int:
    """How many denoising steps image-to-image actually runs (its number of layers N)."""
    return min(int(steps * strength), steps)


def latent_shape(pipe, batch: int = 1, height: int | None = None, width: int | None = None) -> tuple:
    """(B, 4, h, w) of the latent for an image of height x width pixels (default: the model's native size)."""
    f = pipe.vae_scale_factor
    step = math.lcm(f, 8)  # the latent's pixels, and diffusers' pipelines' check_inputs (multiples of 8)
    for name, v in (("height", height), ("width", width)):
        if v is not None and (not is_int(v) or not step <= v <= 8192 or v % step):
            raise BendlabValueError(f"{name} {v!r} is not a positive multiple of {f}{' and of 8' if step != f else ''}"
                                    f" pixels up to 8192; accepted: {step}, {2 * step}, ... (default "
                                    f"{pipe.unet.config.sample_size * f})")
    height = height or pipe.unet.config.sample_size * f
    width = width or pipe.unet.config.sample_size * f
    return (batch, pipe.unet.config.in_channels, height // f, width // f)


def initial_noise(pipe, seed: int = SEED, batch: int = 1, height=None, width=None) -> torch.Tensor:
    """Standard normal initial latent from a CPU generator (the same noise on CPU and GPU), on pipe's device."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(latent_shape(pipe, batch, height, width), generator=g)
    return x.to(pipe.device, pipe.unet.dtype)


@dataclass(frozen=True)
class Embeddings:
    """The text conditioning of a batch, one row per image: per-token embeddings `pos` (B, 77, D) and the
    negative (unconditional) ones `neg`; SDXL adds pooled embeddings (B, P) for each (None for SD v1.x/2.x).
    Rows are taken, repeated and mixed on every field together, so no caller handles a family's fields."""

    pos: torch.Tensor
    neg: torch.Tensor
    pooled: torch.Tensor | None = None
    neg_pooled: torch.Tensor | None = None

    def _map(self, f) -> "Embeddings":
        return Embeddings(*(None if t is None else f(t) for t in (self.pos, self.neg, self.pooled, self.neg_pooled)))

    def row(self, p: int) -> "Embeddings":
        """Row p (prompt p) as a batch of one."""
        return self._map(lambda t: t[p:p + 1])

    def expand(self, n: int) -> "Embeddings":
        """Row 0 repeated n times (a view, no copy)."""
        return self._map(lambda t: t[:1].expand(n, *t.shape[1:]))

    def mix(self, weights: torch.Tensor) -> "Embeddings":
        """F rows, each the weighted sum of this batch's P prompts by `weights` (F, P); the negative rows are
        row 0's (every prompt shares the negative prompt)."""
        w = weights.to(self.pos.device, self.pos.dtype)
        mixed = lambda t: None if t is None else torch.einsum("fp,p...->f...", w, t)  # noqa: E731
        neg = self.expand(len(w))
        return Embeddings(mixed(self.pos), neg.neg, mixed(self.pooled), neg.neg_pooled)

    def kwargs(self) -> dict:
        """The pipeline call's keyword arguments."""
        kw = dict(prompt_embeds=self.pos, negative_prompt_embeds=self.neg)
        if self.pooled is not None:
            kw.update(pooled_prompt_embeds=self.pooled, negative_pooled_prompt_embeds=self.neg_pooled)
        return kw


@torch.no_grad()
def encode_prompts(pipe, prompts: Sequence[str], negative_prompt: str | None = None) -> Embeddings:
    """The text embeddings of the prompts and of the negative prompt (SDXL: with both text encoders' pooled
    embeddings), one row per prompt."""
    out = pipe.encode_prompt(prompt=list(prompts), device=pipe.device, num_images_per_prompt=1,
                             do_classifier_free_guidance=True,
                             negative_prompt=negative_prompt and [negative_prompt] * len(prompts))
    return Embeddings(*out)


# ------------------------------------------------------------------------------------------ installing bends
class NonFiniteLatentError(ValueError):
    """The latent left the floating-point range (NaN or inf): the image would be black or noise."""


class BendCallback(PipelineCallback):
    """Applies latent bends through diffusers' `callback_on_step_end` (tensor_inputs = ["latents"]).

    The pipeline calls it after step i with the latent x_{i+1}, i.e. just before the UNet evaluation of step
    layer = start + i + 1 (layer N: just before decoding). `at(layer, x)` also serves layer `start` (the
    initial latent, see `bending`). After the UNet and after every bend the latent is checked to be finite: a
    NaN or inf stops the render with a one-line error naming the layer and what caused it.

    start:   first layer of this call (> 0 when branching from a latent computed earlier; txt2img only)
    capture: layers whose (bent) latent is stored in `captured[layer]`
    stop:    interrupt the call after this layer (the remaining steps are skipped)
    """

    tensor_inputs = ["latents"]

    def __init__(self, bends: Sequence[Bend] = (), start: int = 0, capture: Sequence[int] = (),
                 stop: int | None = None):
        super().__init__()
        self.bends = [b for b in as_bends(bends) if b.kind == "latent"]
        self.start, self.capture, self.stop = start, set(capture), stop
        self.step = start  # the step whose UNet evaluation comes next (module bends read it)
        self.latent_hw: tuple[int, int] | None = None  # the latent's (h, w) (attention bends read it)
        self.captured: dict[int, torch.Tensor] = {}

    def at(self, layer: int, x: torch.Tensor, guidance: float | None = None) -> torch.Tensor:
        self.latent_hw = tuple(x.shape[-2:])
        if layer > self.start and not torch.isfinite(x).all():
            raise NonFiniteLatentError(
                f"the latent became NaN or infinite in denoising step {layer - 1} (before layer {layer}); "
                f"accepted: bends and guidance{f' (here {guidance:g})' if guidance is not None else ''} that keep "
                "it finite")
        for b in self.bends:
            if layer in b.layers:
                x = b.apply(x)
                if not torch.isfinite(x).all():
                    raise NonFiniteLatentError(f"layer {layer}: {b.op}({_param_text(b.param)}) made the latent NaN "
                                               "or infinite; accepted: a parameter that keeps it finite")
        if layer in self.capture:
            self.captured[layer] = x.clone()
        return x

    def callback_fn(self, pipeline, step_index, timestep, callback_kwargs):
        layer = self.start + step_index + 1
        callback_kwargs["latents"] = self.at(layer, callback_kwargs["latents"], getattr(pipeline, "guidance_scale",
                                                                                         None))
        self.step = layer
        if self.stop is not None and layer >= self.stop:
            pipeline._interrupt = True
        return callback_kwargs


def _param_text(p) -> str:
    if isinstance(p, torch.Tensor) and p.ndim:
        return f"{p.min().item():g}..{p.max().item():g}"
    return f"{float(p):g}"


class AttnBendProcessor:
    """A diffusers attention processor that bends the attention probabilities of one `Attention` module.

    At the steps of its bends (`cb.step`, as UNet module hooks read it) it computes attention as diffusers'
    `AttnProcessor` does, with the probabilities explicit (`attn.get_attention_scores`: softmax(q k^T * scale)),
    bends them (`bend_probs`) and multiplies the bent probabilities with the values. At every other step, and
    whenever the bends leave the probabilities exactly as they were (an identity bend), it hands the call to the
    module's own processor (`original`, e.g. AttnProcessor2_0's fused kernel), so an unbent render is
    bit-identical.

    bends: (Bend, mask) pairs; mask None (every column) or a boolean (P, K, 1) over the K key tokens, one row per
           prompt (`token_mask`); cb: the call's `BendCallback`; cfg: a function telling, during the call, whether
           the batch is [negative, positive] (classifier-free guidance), in which case only the positive half is
           bent, as the text target does.
    """

    def __init__(self, original, bends, cb: BendCallback, cfg):
        self.original, self.bends, self.cb, self.cfg = original, bends, cb, cfg

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, **kwargs):
        def stock():
            extra = dict(kwargs, **({} if temb is None else {"temb": temb}))
            return self.original(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                                 attention_mask=attention_mask, **extra)

        active = [(b, m) for b, m in self.bends if self.cb.step in b.layers]
        if not active:
            return stock()
        # diffusers' AttnProcessor, step by step, with the probabilities bent
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        hw = None
        if input_ndim == 4:
            batch_size, channel, height, width = hidden_states.shape
            hw = (height, width)
            hidden_states = hidden_states.view(batch_size, channel, height * width).transpose(1, 2)
        batch_size, sequence_length, _ = (
            hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape)
        mask = attn.prepare_attention_mask(attention_mask, sequence_length, batch_size)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        context = hidden_states if encoder_hidden_states is None else (
            attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states)
        key, value = attn.to_k(context), attn.to_v(context)
        query, key, value = attn.head_to_batch_dim(query), attn.head_to_batch_dim(key), attn.head_to_batch_dim(value)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        probs = attn.get_attention_scores(query, key, mask)
        bent = self.bend_probs(probs, attn.heads, active, hw or self._map_shape(query.shape[1]))
        if bent is None:  # an identity: the module's own processor, bit for bit
            return stock()
        out = attn.batch_to_head_dim(torch.bmm(bent, value))
        out = attn.to_out[1](attn.to_out[0](out))
        if input_ndim == 4:
            out = out.transpose(-1, -2).reshape(batch_size, channel, height, width)
        if attn.residual_connection:
            out = out + residual
        return out / attn.rescale_output_factor

    def _map_shape(self, queries: int) -> tuple[int, int]:
        """The (h, w) of a block's query positions: the latent's size halved k times as diffusers' downsamplers
        halve it (ceil), the k whose h x w is the number of queries."""
        H, W = self.cb.latent_hw
        for k in range(8):
            h, w = -(-H // 2**k), -(-W // 2**k)
            if h * w == queries:
                return h, w
        raise ValueError(f"{queries} attention queries are not the {H}x{W} latent at any block resolution; accepted: "
                         "an attn target of a UNet whose attention runs on the latent's grid")

    def bend_probs(self, probs: torch.Tensor, heads: int, active, hw: tuple[int, int]) -> torch.Tensor | None:
        """The bent probabilities (B * heads, Q, K), or None when every bend left them as they were.

        The positive half of the batch under classifier-free guidance (all of it without), as (B, heads, Q, K):
        a point-wise operator acts on the selected columns; a spatial one (`operators.ATTN_OPERATORS`) on each
        selected column's map over the image, the Q queries as the block's h x w grid (row-major), each batch
        item with its parameter. Then, once, every bent row is clamped at 0 and divided by its sum (a row whose
        sum is 0 becomes uniform, 1/K), so each row sums to 1 again."""
        n, Q, K = probs.shape
        P = probs.view(n // heads, heads, Q, K)
        half = P.shape[0] // 2 if self.cfg() else 0
        x = P[half:]
        changed = False
        for b, m in active:
            if m is not None:
                if m.shape[1] != K:
                    raise ValueError(f"{b.where} selects among {m.shape[1]} prompt tokens, but {b.target} attends to "
                                     f"{K} keys; accepted: where='all' for this module")
                if m.shape[0] not in (1, x.shape[0]):
                    raise ValueError(f"{b.where} was found in {m.shape[0]} prompts for a batch of {x.shape[0]}; "
                                     "accepted: one prompt per batch item")
                m = m.to(x.device).view(m.shape[0], 1, 1, K)
            y = self._apply(b, x, hw)
            if m is not None:
                y = torch.where(m, y, x)
            if not torch.equal(y, x):
                x, changed = y, True
        if not changed:
            return None
        x = x.clamp_min(0)
        total = x.sum(dim=-1, keepdim=True)
        x = torch.where(total > 0, x / total.clamp_min(torch.finfo(x.dtype).tiny), torch.full_like(x, 1.0 / K))
        return (torch.cat([P[:half], x]) if half else x).reshape(n, Q, K)

    @staticmethod
    def _apply(b: Bend, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """b's operator on every column of x (B, heads, Q, K), with one parameter per batch item."""
        f = operators.OPERATORS[b.op]
        if b.op not in operators.ATTN_OPERATORS:
            return f(x, b.param)
        B, heads, Q, K = x.shape
        maps = x.transpose(2, 3).reshape(B, heads * K, *hw)  # each (head, key) column as an h x w image
        return f(maps, b.param).reshape(B, heads, K, Q).transpose(2, 3)


@contextlib.contextmanager
def _patched(obj, name: str, value):
    """Set an instance attribute for the duration of a block and restore what was there before (an outer
    patch of the same attribute survives a nested one)."""
    had, old = name in vars(obj), vars(obj).get(name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if had:
            setattr(obj, name, old)
        else:
            delattr(obj, name)


@contextlib.contextmanager
def bending(pipe, bends: Sequence[Bend], start: int = 0, capture: Sequence[int] = (), stop: int | None = None,
            prompts: Sequence[str] | None = None):
    """Install `bends` on `pipe` for one pipeline call; yields the `BendCallback` to pass as
    callback_on_step_end. Layer `start` is bent by wrapping `prepare_latents`; module bends are forward hooks
    (UNet ones act at their steps, VAE ones whenever the decoder runs in the call); text bends are one forward
    pre-hook on the UNet, acting at their steps on the selected tokens of the batch's `prompts` (needed for
    where="token:WORD"; a word not in a prompt is refused here, before the UNet runs); attention bends are an
    `AttnBendProcessor` per bent module (its bends together), the module's own processor put back at the end;
    with start > 0 the scheduler's timesteps are truncated to the steps from `start` on. Everything is undone
    when the block ends, and nesting is safe (each level restores what it found)."""
    bends = as_bends(bends)
    cb = BendCallback(bends, start, capture, stop)
    original_prepare = pipe.prepare_latents
    scheduler = pipe.scheduler
    original_set_timesteps = scheduler.set_timesteps
    original_begin = getattr(scheduler, "set_begin_index", None)

    def prepare_latents(*args, **kwargs):
        if start:  # a branch: the latent given is already at layer `start`, not noise for the sampler to scale
            given = inspect.signature(original_prepare).bind(*args, **kwargs).arguments["latents"]
            return cb.at(start, given.to(pipe.device, pipe.unet.dtype))
        return cb.at(start, original_prepare(*args, **kwargs))

    def set_timesteps(*args, **kwargs):  # as diffusers' image-to-image pipeline starts part-way
        original_set_timesteps(*args, **kwargs)
        scheduler.timesteps = scheduler.timesteps[start:]
        if original_begin is not None:
            original_begin(start)

    def set_begin_index(begin_index: int = 0):  # SDXL's pipeline sets 0: its steps count from `start`
        original_begin(start + begin_index)

    def hook_for(b: Bend):
        def hook(module, inputs, output):
            if b.kind == "unet" and cb.step not in b.layers:
                return None
            if isinstance(output, tuple):
                return (b.apply(output[0]),) + tuple(output[1:])
            return b.apply(output)
        return hook

    text = [(b, token_mask(pipe, b, prompts)) for b in bends if b.kind == "text"]

    def text_hook(module, args, kwargs):
        active = [(b, m) for b, m in text if cb.step in b.layers]
        if not active:
            return None
        h = kwargs["encoder_hidden_states"]
        half = h.shape[0] // 2 if pipe.do_classifier_free_guidance else 0  # [negative, positive]
        pos = h[half:]
        for b, m in active:
            if m is not None and m.shape[0] not in (1, pos.shape[0]):
                raise ValueError(f"{b.where} was found in {m.shape[0]} prompts for a batch of {pos.shape[0]}; "
                                 "accepted: one prompt per batch item")
            pos = b.apply(pos, None if m is None else m.to(pos.device))
        kwargs["encoder_hidden_states"] = torch.cat([h[:half], pos]) if half else pos
        return args, kwargs

    attn: dict[str, list] = {}
    for b in bends:
        if b.kind == "attn":
            attn.setdefault(b.path, []).append((b, token_mask(pipe, b, prompts)))

    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(pipe, "prepare_latents", prepare_latents))
        for path, pairs in attn.items():
            module = pipe.unet.get_submodule(path)
            stack.callback(module.set_processor, module.processor)
            module.set_processor(AttnBendProcessor(module.processor, pairs, cb,
                                                   lambda: pipe.do_classifier_free_guidance))
        if text:
            stack.callback(pipe.unet.register_forward_pre_hook(text_hook, with_kwargs=True).remove)
        if start:
            stack.enter_context(_patched(scheduler, "set_timesteps", set_timesteps))
            if original_begin is not None:
                stack.enter_context(_patched(scheduler, "set_begin_index", set_begin_index))
        for b in bends:
            if b.kind in ("unet", "vae"):
                model = pipe.unet if b.kind == "unet" else pipe.vae
                stack.callback(model.get_submodule(b.path).register_forward_hook(hook_for(b)).remove)
        yield cb


def token_mask(pipe, b: Bend, prompts: Sequence[str] | None = None) -> torch.Tensor | None:
    """The tokens a text (or cross-attention) bend selects as a boolean mask (P, T, 1) over the prompt embedding's
    T tokens, one row per prompt (None: every token); a one-line error for a token beyond T, a word not in a
    prompt, or a word given without the prompts."""
    if b.where.kind == "all":
        return None
    tok = pipe.tokenizer
    if b.where.word is not None and prompts is None:
        raise ValueError(f"where {b.where} needs the prompt's text to find the word; accepted: token:I, or "
                         "prompts= given to render_batch with the embeddings")
    rows = [b.where.token_positions(tok, p) for p in (prompts if b.where.word is not None else [""])]
    m = torch.zeros(len(rows), tok.model_max_length, 1, dtype=torch.bool)
    for i, r in enumerate(rows):
        m[i, r] = True
    return m


def check_bends(pipe, bends: Sequence[Bend], n_layers: int, shape: tuple) -> None:
    """One-line errors for bends that do not fit this pipeline and render, before any model work."""
    for b in bends:
        b.check(n_layers, shape)
        if b.kind == "unet":
            try:
                pipe.unet.get_submodule(b.module)
            except AttributeError:
                names = [n for n, _ in pipe.unet.named_children() if "blocks" in n or n == "mid_block"]
                raise ValueError(f"UNet has no module {b.module!r}; accepted: {', '.join(names)} or a dotted "
                                 "child such as 'up_blocks.1' (`bendlab targets` lists them)") from None
        if b.kind == "vae":
            check_vae_module(pipe.vae, b.path)
        if b.kind == "attn":
            check_attn_module(pipe.unet, b)


def attention_modules(unet) -> list[tuple[str, object]]:
    """(path, module) of every diffusers `Attention` module of a UNet (a loaded one, or a `models.Skeleton`'s on
    the meta device), in the order of `named_modules`."""
    from diffusers.models.attention_processor import Attention
    return [(n, m) for n, m in unet.named_modules() if isinstance(m, Attention)]


def check_attn_module(unet, b: Bend) -> None:
    """A one-line error unless an attention bend's path names an `Attention` module of `unet`, and (for a token
    selection) a cross-attention one."""
    from diffusers.models.attention_processor import Attention
    found = attention_modules(unet)
    example = next((n for n, m in found if m.is_cross_attention), found[0][0] if found else None)
    accepted = (f"accepted: the path of an attention module, e.g. attn:{example} (`bendlab targets` lists them)"
                if example else "accepted: a UNet with attention modules")
    try:
        module = unet.get_submodule(b.path)
    except AttributeError:
        raise ValueError(f"UNet has no module {b.path!r}; {accepted}") from None
    if not isinstance(module, Attention):
        raise ValueError(f"UNet module {b.path!r} is a {type(module).__name__}, not an attention module; {accepted}")
    if b.where.kind == "token" and not module.is_cross_attention:
        raise ValueError(f"where {b.where} selects prompt tokens, but {b.target} is self-attention (its keys are "
                         "image positions); accepted: where='all', or a cross-attention module (attn2) for a token")


def check_token_words(model: "models.Model", bends: Sequence[Bend], prompts: Sequence[str]) -> None:
    """One-line errors for a token:WORD bend (text or cross-attention) whose word is not in each of the prompts,
    before the model loads: the tokenizer is the loaded pipeline's, or read from a local folder's tokenizer files
    (no weights). A hub id's words are checked when the render starts (`bending`), as every word is there too."""
    words = [b for b in bends if b.where.kind == "token" and b.where.word is not None]
    tok = _tokenizer(model) if words else None
    for b in words if tok is not None else ():
        for p in prompts:
            b.where.token_positions(tok, p)


def _tokenizer(model: "models.Model"):
    if model.pipe is not None:
        return model.pipe.tokenizer
    return _folder_tokenizer(model.path) if Path(model.path).is_dir() else None


@functools.lru_cache(maxsize=4)
def _folder_tokenizer(path: str):
    """The tokenizer a local model folder's pipeline loads (the class its model_index.json names), or None if it
    cannot be read here (the loader reports that)."""
    import transformers
    try:
        _, cls = json.loads((Path(path) / "model_index.json").read_text())["tokenizer"]
        return getattr(transformers, cls).from_pretrained(Path(path) / "tokenizer")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


VAE_DECODE_PARTS = ("decoder", "post_quant_conv")  # the parts of a VAE that run when it decodes


def check_vae_module(vae, path: str) -> None:
    """A one-line error unless `path` names a module of `vae` (a loaded one, or a `models.Skeleton`'s on the
    meta device) that runs when it decodes."""
    if path.split(".")[0] not in VAE_DECODE_PARTS:
        raise ValueError(f"VAE module {path!r} runs when an image is encoded, not when the VAE decodes; accepted: "
                         "a module of the decoder, e.g. vae:decoder.up_blocks.1 (`bendlab targets` lists them)")
    try:
        vae.get_submodule(path)
    except AttributeError:
        names = [f"vae:decoder.{n}" for n, _ in vae.decoder.named_children()]
        raise ValueError(f"VAE has no module {path!r}; accepted: {', '.join(names)} or a dotted child such as "
                         "vae:decoder.up_blocks.1 (`bendlab targets` lists them)") from None


# ------------------------------------------------------------------------------------------ rendering
def denoise(pipe, embeds: Embeddings, latents: torch.Tensor, *, steps: int, guidance: float, callback: BendCallback,
            output_type: str = "latent", seed: int = 0):
    """One call of the stock pipeline from `latents` with a `bending` callback: the image size is the latent's
    (SDXL conditions on it), and the fresh noise of stochastic samplers comes from `seed`."""
    f = pipe.vae_scale_factor
    return pipe(**embeds.kwargs(), latents=latents, height=latents.shape[-2] * f, width=latents.shape[-1] * f,
                num_inference_steps=steps, guidance_scale=guidance, output_type=output_type,
                callback_on_step_end=callback, generator=torch.Generator().manual_seed(seed))


def _to_images(out, output_type: str):
    return out.images if output_type != "np" else np.asarray(out.images)


@torch.no_grad()
def render_batch(pipe, bends=(), *, prompts: Sequence[str] | None = None, embeds: Embeddings | None = None,
                 latents: torch.Tensor, steps: int | None = None, guidance: float | None = None, start: int = 0,
                 output_type: str = "pil", seed: int = 0):
    """Text-to-image for a batch: one latent per item (B, 4, h, w), prompts or `encode_prompts` embeddings per
    item (with embeddings, `prompts` may still be given: their text finds a text bend's token:WORD), and bends
    whose parameters may carry one value per item. Returns B images (PIL, or an array with
    output_type="np").
    steps, guidance: None -> the model's usual ones (`models.usual_settings`: 50 and 7.5 with DDIM)
    seed: the noise that stochastic samplers (LCM, ancestral) add at each step; unused by DDIM."""
    bends = as_bends(bends)
    steps, guidance = models.Model.of(pipe=pipe).usual(steps, guidance)
    check_settings(steps, guidance)
    check_bends(pipe, bends, steps, tuple(latents.shape))
    if prompts is not None:
        prompts = list(prompts)
        if len(prompts) != latents.shape[0]:
            raise ValueError(f"{len(prompts)} prompts for {latents.shape[0]} latents; accepted: one per latent")
    if embeds is None:
        embeds = encode_prompts(pipe, prompts)
    if start and models.is_stochastic(pipe.scheduler):
        raise ValueError(f"a {type(pipe.scheduler).__name__} adds fresh noise at every step, so a render cannot "
                         "start from another's intermediate latent; accepted: start=0 with this sampler")
    with bending(pipe, bends, start=start, prompts=prompts) as cb:
        out = denoise(pipe, embeds, latents, steps=steps, guidance=guidance, callback=cb, output_type=output_type,
                      seed=seed)
    return _to_images(out, output_type)


@torch.no_grad()
def render_img2img(pipe, image, bends=(), *, prompt: str | Sequence[str] = "", strength: float = 0.5,
                   seed: int = SEED, steps: int | None = None, guidance: float | None = None,
                   output_type: str = "pil"):
    """Image-to-image from `image` (PIL, path, or a list of them); layers count the steps actually run.
    steps, guidance: None -> the model's usual ones (`models.usual_settings`)."""
    steps, guidance = models.Model.of(pipe=pipe).usual(steps, guidance)
    check_settings(steps, guidance, seed, strength)
    bends = as_bends(bends)
    n = img2img_layers(steps, strength)
    images = image if isinstance(image, (list, tuple)) else [image]
    images = [load_image(im, pipe) for im in images]
    check_bends(pipe, bends, n, latent_shape(pipe, len(images)))
    i2i = img2img_pipeline(pipe)
    prompts = [prompt] * len(images) if isinstance(prompt, str) else list(prompt)
    with bending(i2i, bends, prompts=prompts) as cb:
        out = i2i(image=images, strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                  generator=torch.Generator().manual_seed(seed), output_type=output_type,
                  callback_on_step_end=cb, prompt=prompts)
    return _to_images(out, output_type)


def load_image(im, pipe=None) -> Image.Image:
    """A path or PIL image as an RGB PIL image (decoded now: a bad file fails before any model work), resized
    to the model's native size when `pipe` is given."""
    if isinstance(im, (str, Path)):
        p = Path(im)
        if not p.is_file():
            raise FileNotFoundError(f"init image {str(p)!r} does not exist")
        try:
            im = Image.open(p)
            im.load()
        except OSError as e:
            raise ValueError(f"init image {str(p)!r} is not a readable image ({e})") from None
    if not isinstance(im, Image.Image):
        raise ValueError(f"init image {type(im).__name__} is not a PIL image or a path")
    if pipe is None:
        return im.convert("RGB")
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return im.convert("RGB").resize((side, side), Image.LANCZOS) if im.size != (side, side) else im.convert("RGB")


def render(prompt: str = "", bends=(), *, model=None, pipe=None, device: str | None = None, seed: int = SEED,
           steps: int | None = None, guidance: float | None = None, negative_prompt: str | None = None, init_image=None,
           strength: float = 0.5, height: int | None = None, width: int | None = None, output_type: str = "pil"):
    """Render one prompt with a list of bends; returns a PIL image.

    The paper's defaults: DDIM, 50 steps, seed 46, guidance 7.5. With `init_image` it is image-to-image with
    that `strength` (layers then count the steps actually run). `model` is the shipped model by default and is
    loaded (on `device`) only after every input has been checked. steps/guidance None: the model's usual
    ones (`models.usual_settings`: 50 and 7.5 with DDIM, 4 steps for LCM, 1 step and guidance 0 for Turbo).

    Notebook: notebooks/01_operators.ipynb
    """
    if not isinstance(prompt, str):
        raise ValueError(f"prompt {prompt!r} is not a string")
    if negative_prompt is not None and not isinstance(negative_prompt, str):
        raise ValueError(f"negative prompt {negative_prompt!r} is not a string")
    check_pipe(pipe)
    m = models.Model.of(model, pipe)
    steps, guidance = m.usual(steps, guidance)
    check_settings(steps, guidance, seed, strength if init_image is not None else None, output_type)
    bends = as_bends(bends)
    shapes = m.shapes
    if pipe is None:
        models.check_device(device)
    n_layers = img2img_layers(steps, strength) if init_image is not None else steps
    if init_image is not None:
        init_image = load_image(init_image)
    if shapes is not None:
        check_bends(shapes, bends, n_layers, latent_shape(shapes, 1, height, width))
    check_token_words(m, bends, [prompt])
    pipe = m.load(device)
    if init_image is not None:
        return render_img2img(pipe, init_image, bends, prompt=prompt, strength=strength, seed=seed, steps=steps,
                              guidance=guidance, output_type=output_type)[0]
    embeds = encode_prompts(pipe, [prompt], negative_prompt)
    x = initial_noise(pipe, seed, 1, height, width)
    return render_batch(pipe, bends, embeds=embeds, prompts=[prompt], latents=x, steps=steps,
                        guidance=guidance, output_type=output_type, seed=seed)[0]


@torch.no_grad()
def render_grid(prompt: str, op: str, params: Sequence[float], layers: Sequence[int], where="all",
                norm: str | None = None, *, base=(), model=None, pipe=None, seed: int = SEED,
                steps: int | None = None, guidance: float | None = None, branch: bool = True, output_type: str = "pil",
                progress: bool = False, height: int | None = None, width: int | None = None,
                target: str | None = None):
    """A grid of variations: rows = layers, columns = params, every image `op(param)` at that layer (after the
    optional `base` bends, which must all act before the smallest layer when branching; VAE bends among them
    act in every branch). `target`: what the swept bend acts on (`Bend`); a VAE target takes layers=[steps]
    (one row, the final layer), and branching then denoises once and decodes the final latent with each
    parameter, as one batch.

    With branch=True the first L steps, shared by every image of row L, are computed once (one prefix run
    captures every row's latent) and each row's parameters run as one batch from layer L; the images equal
    independent renders within float rounding (tested to 1e-5). Returns rows of images.
    """
    if op in operators.N_PARAMS:
        raise BendlabValueError(f"render_grid sweeps one number per column; {op} takes {operators.N_PARAMS[op]}; "
                                f"accepted: a one-parameter operator, or render_batch with a (B, "
                                f"{operators.N_PARAMS[op]}) param (one set per image)")
    check_numbers("params", params, min_len=0)  # a list, not a string or a number
    check_list("layers", layers)
    check_pipe(pipe)
    m = models.Model.of(model, pipe)
    steps, guidance = m.usual(steps, guidance)
    check_settings(steps, guidance, seed, output_type=output_type)
    params, layers = list(params), list(layers)
    if not params or not layers:
        raise ValueError(f"render_grid needs at least one parameter and one layer (got params={params}, "
                         f"layers={layers}); accepted: non-empty lists")
    if any(not isinstance(L, int) or isinstance(L, bool) for L in layers):
        raise ValueError(f"layers {layers} are not all integers; accepted: layers 0..{steps}")
    base = as_bends(base)
    sweep = [Bend(op, torch.tensor(params, dtype=torch.float64), L, where, norm, target=target) for L in layers]
    shapes = m.shapes
    if shapes is not None:
        check_bends(shapes, base + sweep, steps, latent_shape(shapes, len(params), height, width))
    check_token_words(m, base + sweep, [prompt])
    pipe = m.load()
    if shapes is None:  # a hub id: its shapes are known only now
        check_bends(pipe, base + sweep, steps, latent_shape(pipe, len(params), height, width))
    embeds = encode_prompts(pipe, [prompt])
    x0 = initial_noise(pipe, seed, 1, height, width)
    rows = []
    shared = branch and not models.is_stochastic(pipe.scheduler) and all(
        b.kind == "vae" or (b.kind == "latent" and max(b.layers) < min(layers)) for b in base)
    at_decode = [b for b in base if b.kind == "vae"]  # not in the prefix (it never decodes): in every branch
    bar = _progress(len(layers), progress, "rows")
    if shared:
        prefix = sorted(set(layers))
        captured = {}
        if prefix[-1] > 0:
            with bending(pipe, [b for b in base if b.kind != "vae"], capture=prefix, stop=prefix[-1]) as cb:
                denoise(pipe, embeds, x0.clone(), steps=steps, guidance=guidance, callback=cb)
            captured = cb.captured
        for L, b in zip(layers, sweep):
            start = captured.get(L, x0).expand(len(params), -1, -1, -1).clone()
            rows.append(render_batch(pipe, at_decode + [b], embeds=embeds.expand(len(params)),
                                     prompts=[prompt] * len(params), latents=start,
                                     steps=steps, guidance=guidance, start=L, output_type=output_type))
            bar.update()
    else:
        for b in sweep:
            row = []
            for p in params:
                one = Bend(op, p, b.layer, b.where, b.norm, target=b.target)
                row.append(render_batch(pipe, base + [one], embeds=embeds, prompts=[prompt],
                                        latents=x0.clone(), steps=steps, guidance=guidance,
                                        output_type=output_type, seed=seed)[0])
            rows.append(row)
            bar.update()
    bar.close()
    return rows


def _progress(total: int, enabled: bool, unit: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, disable=not enabled, unit=unit)
