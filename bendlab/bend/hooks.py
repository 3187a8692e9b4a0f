"""Installing bends on a stock diffusers pipeline for one call, only through diffusers' own extension points,
one small installer per target kind (`INSTALLERS`), each undone when the call ends (also on an error):

- the latent: layer 0 (the initial latent, or in image-to-image the noised init latent) by wrapping the pipeline's
  `prepare_latents`, so whatever it prepares is bent before the first denoiser evaluation; layers 1..N through
  `callback_on_step_end` (`BendCallback`), which receives the latent after step L-1, i.e. just before the
  evaluation of step L (layer N: just before the VAE decodes). The family's `Layout` views the latent as the
  canonical (N, C, H, W) tensor the operators act on, and puts it back;
- "unet:" module bends through forward hooks on the denoiser's blocks (a video transformer's tokens viewed one
  row per latent frame), "vae:" bends through forward hooks on the VAE decoder's blocks (they act when the
  pipeline decodes);
- "text" bends through one forward pre-hook on the denoiser that bends the positive half of its
  `encoder_hidden_states` (the pipelines concatenate [negative, positive] under classifier-free guidance);
- "attn:" bends through diffusers' attention processors: the `Attention` module at PATH gets an
  `AttnBendProcessor` (`Attention.set_processor`) wrapping the one it had, which is put back.

Branching: with start > 0 the scheduler's timesteps are truncated to the steps from `start` on, exactly as
diffusers' image-to-image pipeline starts part-way (`bend.render.shared_prefix` computes what the branches share).
Where the denoiser lives, its tokenizer and its latent layout come from the pipeline's `models.Family`.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Sequence

import torch
from diffusers.callbacks import PipelineCallback

from ..checks import BendlabValueError

from ..models.family import IMAGE, Layout, family_of
from .attention import AttnBendProcessor
from .bends import Bend, as_bends


# ------------------------------------------------------------------------------------------ installing bends
class NonFiniteLatentError(BendlabValueError):
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
    layout:  the family's latent `Layout`: bends act on its canonical view (N, C, H, W)
    grid:    the latent grid a packed video latent is unpacked with (LTX-Video: (F', H', W')); `bending` sets it
             from the pipeline's `prepare_latents` call (`models.Family.unpack_grid`)
    """

    tensor_inputs = ["latents"]

    def __init__(self, bends: Sequence[Bend] = (), start: int = 0, capture: Sequence[int] = (),
                 stop: int | None = None, layout: Layout = IMAGE):
        super().__init__()
        self.bends = [b for b in as_bends(bends) if b.kind == "latent"]
        self.layout = layout
        self.start, self.capture, self.stop = start, set(capture), stop
        self.step = start  # the step whose UNet evaluation comes next (module bends read it)
        self.latent_hw: tuple[int, int] | None = None  # the latent's (h, w) (attention bends read it)
        self.grid: tuple[int, ...] | None = None
        self.captured: dict[int, torch.Tensor] = {}

    def at(self, layer: int, x: torch.Tensor, guidance: float | None = None) -> torch.Tensor:
        self.latent_hw = tuple(self.grid[-2:] if self.grid else x.shape[-2:])
        if layer > self.start and not torch.isfinite(x).all():
            raise NonFiniteLatentError(
                f"the latent became NaN or infinite in denoising step {layer - 1} (before layer {layer}); "
                f"accepted: bends and guidance{f' (here {guidance:g})' if guidance is not None else ''} that keep "
                "it finite")
        active = [b for b in self.bends if layer in b.layers]
        if active:
            x = self.layout.restore(self._bend(layer, active, self.layout.canonical(x, self.grid)), x)
        if layer in self.capture:
            self.captured[layer] = x.clone()
        return x

    @staticmethod
    def _bend(layer: int, bends: Sequence[Bend], x: torch.Tensor) -> torch.Tensor:
        for b in bends:
            x = b.apply(x)
            if not torch.isfinite(x).all():
                raise NonFiniteLatentError(f"layer {layer}: {b.op}({_param_text(b.param)}) made the latent NaN "
                                           "or infinite; accepted: a parameter that keeps it finite")
        return x

    def step_callback(self, step_index: int, timestep, latents: torch.Tensor) -> None:
        """The same for the older per-step `callback(step, timestep, latents)` (family callback "step": Stable
        Audio), whose return value the pipeline ignores: the bent latent is written into `latents` in place."""
        layer = self.start + step_index + 1
        bent = self.at(layer, latents)
        if bent is not latents:
            latents.copy_(bent)
        self.step = layer

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
    callback_on_step_end. Each target kind has its installer (`INSTALLERS`); text and attention bends find a
    token:WORD in the batch's `prompts` (a word not in a prompt is refused here, before the denoiser runs). With
    start > 0 the scheduler starts at that layer. Everything is undone when the block ends, and nesting is safe
    (each level restores what it found)."""
    bends = as_bends(bends)
    fam = family_of(pipe)
    fam.check_targets(bends)
    cb = BendCallback(bends, start, capture, stop, fam.layout)
    with contextlib.ExitStack() as stack:
        install_latent(stack, pipe, cb, start)
        for kind, install in INSTALLERS.items():
            mine = [b for b in bends if b.kind == kind]
            if mine:
                install(stack, pipe, mine, cb, prompts)
        yield cb


def install_latent(stack: contextlib.ExitStack, pipe, cb: BendCallback, start: int) -> None:
    """Layer `start` through the pipeline's `prepare_latents` (the later layers are `cb`'s, as the call's
    callback_on_step_end); with start > 0, the scheduler's timesteps from `start` on. A packed video latent's grid
    is read from the same call (its clip's frames and size)."""
    original_prepare = pipe.prepare_latents
    fam = family_of(pipe)
    signature = inspect.signature(type(pipe).prepare_latents)  # the pipeline's own, also under an outer `bending`

    def prepare_latents(*args, **kwargs):
        call = signature.bind(pipe, *args, **kwargs)
        call.apply_defaults()
        cb.grid = fam.unpack_grid(pipe, call.arguments)
        if start:  # a branch: the latent given is already at layer `start`, not noise for the sampler to scale
            given = call.arguments["latents"]
            return cb.at(start, given.to(pipe.device, fam.denoiser_of(pipe).dtype))
        return cb.at(start, original_prepare(*args, **kwargs))

    stack.enter_context(_patched(pipe, "prepare_latents", prepare_latents))
    if not start:
        return
    scheduler = pipe.scheduler
    original_set_timesteps = scheduler.set_timesteps
    if fam.branch == "restart":
        def restart(*args, **kwargs):  # the schedule from `start` on, as if it were the whole of it
            original_set_timesteps(*args, **kwargs)
            scheduler.timesteps = scheduler.timesteps[start:]
            scheduler.sigmas = scheduler.sigmas[start:]
        stack.enter_context(_patched(scheduler, "set_timesteps", restart))
        return
    original_begin = getattr(scheduler, "set_begin_index", None)

    def set_timesteps(*args, **kwargs):  # as diffusers' image-to-image pipeline starts part-way
        original_set_timesteps(*args, **kwargs)
        scheduler.timesteps = scheduler.timesteps[start:]
        if original_begin is not None:
            original_begin(start)

    def set_begin_index(begin_index: int = 0):  # SDXL's pipeline sets 0: its steps count from `start`
        original_begin(start + begin_index)

    stack.enter_context(_patched(scheduler, "set_timesteps", set_timesteps))
    if original_begin is not None:
        stack.enter_context(_patched(scheduler, "set_begin_index", set_begin_index))


def _output_hook(b: Bend, cb: BendCallback, every_call: bool, patch: int = 0):
    """A forward hook bending a module's output at the bend's steps (every call: a VAE block's). patch > 0: the
    output is a video transformer's tokens, bent latent frame by latent frame (`_apply_frames`)."""
    def apply(x):
        return _apply_frames(b, x, cb.latent_hw, patch) if patch else _apply_nd(b, x)

    def hook(module, inputs, output):
        if not every_call and cb.step not in b.layers:
            return None
        if isinstance(output, tuple):
            return (apply(output[0]),) + tuple(output[1:])
        return apply(output)
    return hook


def _apply_frames(b: Bend, x: torch.Tensor, hw: tuple[int, int], patch: int) -> torch.Tensor:
    """A module bend on a video transformer's tokens (B, F' h w, D), frame-major and row-major within a frame (Wan
    patchifies (F', H', W') with patches 1 x p x p, LTX-Video packs one token per cell, both in that order): viewed
    as (B F', D, h, w), one row per latent frame (row b F' + f: item b's frame f), so a parameter per latent frame
    bends each frame's tokens with its value (and each item's under classifier-free guidance, as a module bend on
    an image bends both halves); where selects features (channel:c) and the token grid (row, column)."""
    B, T, D = x.shape
    h, w = hw[0] // patch, hw[1] // patch
    if T % (h * w):
        raise BendlabValueError(f"{b.target}: its output has {T} tokens, not latent frames of {h}x{w} tokens; "
                                "accepted: a module whose output is the clip's tokens (a transformer block)")
    F = T // (h * w)
    y = x.reshape(B, F, h, w, D).permute(0, 1, 4, 2, 3).reshape(B * F, D, h, w)
    return b.apply(y).reshape(B, F, D, h, w).permute(0, 1, 3, 4, 2).reshape(B, T, D)


def _apply_nd(b: Bend, x: torch.Tensor) -> torch.Tensor:
    """A module bend on an output of any rank: a 3-D one (an audio VAE block's (B, C, T), a transformer block's
    (B, T, D)) is bent as (B, C, 1, T), the operators' view."""
    return b.apply(x.unsqueeze(2)).squeeze(2) if x.ndim == 3 else b.apply(x)


def install_modules(stack: contextlib.ExitStack, pipe, bends: Sequence[Bend], cb: BendCallback, prompts=None) -> None:
    """"unet:PATH" bends: a forward hook on that block of the denoiser, acting at the bend's steps (on a video
    transformer's blocks, latent frame by latent frame: `_apply_frames`)."""
    fam = family_of(pipe)
    denoiser, patch = fam.denoiser_of(pipe), fam.patch_side(pipe) if fam.frame_blocks else 0
    for b in bends:
        hook = _output_hook(b, cb, False, patch)
        stack.callback(denoiser.get_submodule(b.path).register_forward_hook(hook).remove)


def install_vae(stack: contextlib.ExitStack, pipe, bends: Sequence[Bend], cb: BendCallback, prompts=None) -> None:
    """"vae:PATH" bends: a forward hook on that block of the VAE decoder, acting whenever it decodes in the call."""
    for b in bends:
        stack.callback(pipe.vae.get_submodule(b.path).register_forward_hook(_output_hook(b, cb, True)).remove)


def install_text(stack: contextlib.ExitStack, pipe, bends: Sequence[Bend], cb: BendCallback, prompts=None) -> None:
    """"text" bends: one forward pre-hook on the denoiser bending the positive half of its encoder_hidden_states
    (the selected tokens of each prompt) at the bends' steps."""
    text = [(b, token_mask(pipe, b, prompts)) for b in bends]
    tokens = family_of(pipe).tokenizer_of(pipe).model_max_length  # the prompt's positions in encoder_hidden_states

    def text_hook(module, args, kwargs):
        active = [(b, m) for b, m in text if cb.step in b.layers]
        if not active:
            return None
        h = kwargs["encoder_hidden_states"]
        half = h.shape[0] // 2 if pipe.do_classifier_free_guidance else 0  # [negative, positive]
        pos = h[half:]
        for b, m in active:
            if m is None and pos.shape[1] > tokens:  # Stable Audio appends its 2 duration tokens: the prompt's only
                m = torch.zeros(1, pos.shape[1], 1, dtype=torch.bool)
                m[:, :tokens] = True
            elif m is not None and pos.shape[1] > m.shape[1]:
                m = torch.cat([m, m.new_zeros(m.shape[0], pos.shape[1] - m.shape[1], 1)], 1)
            if m is not None and m.shape[0] not in (1, pos.shape[0]):
                raise BendlabValueError(f"{b.where} was found in {m.shape[0]} prompts for a batch of {pos.shape[0]}; "
                                        "accepted: one prompt per batch item")
            pos = b.apply(pos, None if m is None else m.to(pos.device))
        kwargs["encoder_hidden_states"] = torch.cat([h[:half], pos]) if half else pos
        return args, kwargs

    denoiser = family_of(pipe).denoiser_of(pipe)
    stack.callback(denoiser.register_forward_pre_hook(text_hook, with_kwargs=True).remove)


def install_attention(stack: contextlib.ExitStack, pipe, bends: Sequence[Bend], cb: BendCallback,
                      prompts=None) -> None:
    """"attn:PATH" bends: an `AttnBendProcessor` on each bent module (its bends together), the module's own
    processor put back when the call ends."""
    by_path: dict[str, list] = {}
    for b in bends:
        by_path.setdefault(b.path, []).append((b, token_mask(pipe, b, prompts)))
    denoiser = family_of(pipe).denoiser_of(pipe)
    for path, pairs in by_path.items():
        module = denoiser.get_submodule(path)
        stack.callback(module.set_processor, module.processor)
        fam = family_of(pipe)
        module.set_processor(AttnBendProcessor(module.processor, pairs, cb, lambda: pipe.do_classifier_free_guidance,
                                               fam.extra_tokens, bool(fam.across_frames) and
                                               fam.across_frames in path.split(".")))


# target kind -> its installer (the latent's is `install_latent`, always installed: it also starts a branch)
INSTALLERS = {"unet": install_modules, "vae": install_vae, "text": install_text, "attn": install_attention}


def token_mask(pipe, b: Bend, prompts: Sequence[str] | None = None) -> torch.Tensor | None:
    """The tokens a text (or cross-attention) bend selects as a boolean mask (P, T, 1) over the prompt embedding's
    T tokens, one row per prompt (None: every token); a one-line error for a token beyond T, a word not in a
    prompt, or a word given without the prompts."""
    if b.where.kind == "all":
        return None
    tok = family_of(pipe).tokenizer_of(pipe)
    if b.where.word is not None and prompts is None:
        raise BendlabValueError(f"where {b.where} needs the prompt's text to find the word; accepted: token:I, or "
                                "prompts= given to render_batch with the embeddings")
    rows = [b.where.token_positions(tok, p) for p in (prompts if b.where.word is not None else [""])]
    m = torch.zeros(len(rows), tok.model_max_length, 1, dtype=torch.bool)
    for i, r in enumerate(rows):
        m[i, r] = True
    return m


