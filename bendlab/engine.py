"""The bending engine: render a prompt with a list of bends on a stock diffusers SD v1.x pipeline.

Bends are installed only through diffusers' own extension points, for the duration of one call:
- layer 0 (the initial latent, or in image-to-image the noised init latent) by wrapping the pipeline's
  `prepare_latents` so whatever it prepares is bent before the first UNet evaluation;
- layers 1..N through `callback_on_step_end`, which receives the latent after step L-1, i.e. just before
  the UNet evaluation of step L (layer N: just before the VAE decodes);
- module bends through forward hooks on UNet blocks, removed when the call ends.

Branching sweeps: renders that share prompt, seed and every bend before layer L share their first L steps;
`render_grid` computes that prefix once and runs the branches as one batch from layer L, by truncating the
scheduler's timesteps exactly as diffusers' image-to-image pipeline does.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .bend import Bend, as_bends
from .models import img2img_pipeline, load_pipeline


# ------------------------------------------------------------------------------------------ validation
def check_settings(steps=50, guidance=7.5, seed=46, strength=None) -> None:
    """One-line errors for out-of-range render settings, raised before any model work."""
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 1000:
        raise ValueError(f"steps {steps!r} is not an integer in 1..1000 (the paper uses 50)")
    if not isinstance(guidance, (int, float)) or not math.isfinite(guidance) or guidance < 0:
        raise ValueError(f"guidance {guidance!r} is not a finite number >= 0 (the paper uses 7.5; <= 1 turns "
                         "classifier-free guidance off)")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
        raise ValueError(f"seed {seed!r} is not an integer in 0..2**63-1")
    if strength is not None and (not isinstance(strength, (int, float)) or not 0 < strength < 1):
        raise ValueError(f"strength {strength!r} is outside (0, 1); accepted: 0 < strength < 1 "
                         "(0 keeps the init image, 1 ignores it)")


def img2img_layers(steps: int, strength: float) -> int:
    """How many denoising steps image-to-image actually runs (its number of layers N)."""
    return min(int(steps * strength), steps)


def latent_shape(pipe, batch: int = 1, height: int | None = None, width: int | None = None) -> tuple:
    """(B, 4, h, w) of the latent for an image of height x width pixels (default: the model's native size)."""
    f = pipe.vae_scale_factor
    height = height or pipe.unet.config.sample_size * f
    width = width or pipe.unet.config.sample_size * f
    if height % f or width % f:
        raise ValueError(f"image size {width}x{height} is not a multiple of {f}; accepted: multiples of {f}")
    return (batch, pipe.unet.config.in_channels, height // f, width // f)


def initial_noise(pipe, seed: int = 46, batch: int = 1, height=None, width=None) -> torch.Tensor:
    """Standard normal initial latent from a CPU generator (the same noise on CPU and GPU), on pipe's device."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(latent_shape(pipe, batch, height, width), generator=g)
    return x.to(pipe.device, pipe.unet.dtype)


@torch.no_grad()
def encode_prompts(pipe, prompts: Sequence[str], negative_prompt: str | None = None):
    """Text embeddings (B, 77, D) for the prompts, and the matching negative (unconditional) embeddings."""
    pos, neg = pipe.encode_prompt(list(prompts), pipe.device, 1, True, negative_prompt=negative_prompt
                                  and [negative_prompt] * len(prompts))
    return pos, neg


# ------------------------------------------------------------------------------------------ installing bends
@contextlib.contextmanager
def bending(pipe, bends: Sequence[Bend], start: int = 0, capture: Sequence[int] = (), stop: int | None = None):
    """Install `bends` on `pipe` for one pipeline call; yields the callback to pass as callback_on_step_end.

    start:   first layer of this call (> 0 when branching from a latent computed earlier; txt2img only)
    capture: layers whose (bent) latent is stored in `callback.captured[layer]`
    stop:    interrupt the call after this layer (the remaining steps are skipped)
    """
    bends = as_bends(bends)
    latent_bends = [b for b in bends if b.module is None]
    module_bends = [b for b in bends if b.module is not None]
    state = {"step": start}  # the step whose UNet evaluation comes next
    captured: dict[int, torch.Tensor] = {}

    def at(layer: int, x: torch.Tensor) -> torch.Tensor:
        for b in latent_bends:
            if layer in b.layers:
                x = b.apply(x)
        if layer in capture:
            captured[layer] = x.clone()
        return x

    def prepare_latents(*args, **kwargs):
        return at(start, original_prepare(*args, **kwargs))

    def callback(p, i, t, kwargs):
        layer = start + i + 1
        kwargs["latents"] = at(layer, kwargs["latents"])
        state["step"] = layer
        if stop is not None and layer >= stop:
            p._interrupt = True
        return kwargs

    def hook_for(b: Bend):
        def hook(module, inputs, output):
            if state["step"] not in b.layers:
                return None
            if isinstance(output, tuple):
                return (b.apply(output[0]),) + tuple(output[1:])
            return b.apply(output)
        return hook

    callback.captured = captured
    original_prepare = pipe.prepare_latents
    original_set_timesteps = pipe.scheduler.set_timesteps

    def set_timesteps(*args, **kwargs):
        original_set_timesteps(*args, **kwargs)
        pipe.scheduler.timesteps = pipe.scheduler.timesteps[start:]

    handles = []
    try:
        pipe.prepare_latents = prepare_latents
        if start:
            pipe.scheduler.set_timesteps = set_timesteps
        for b in module_bends:
            handles.append(pipe.unet.get_submodule(b.module).register_forward_hook(hook_for(b)))
        yield callback
    finally:
        del pipe.prepare_latents  # the instance attribute shadowed the class method
        if start:
            del pipe.scheduler.set_timesteps
        for h in handles:
            h.remove()


def check_bends(pipe, bends: Sequence[Bend], n_layers: int, shape: tuple) -> None:
    """One-line errors for bends that do not fit this pipeline and render, before any model work."""
    for b in bends:
        b.check(n_layers, shape)
        if b.module is not None:
            try:
                pipe.unet.get_submodule(b.module)
            except AttributeError:
                names = [n for n, _ in pipe.unet.named_children() if "blocks" in n or n == "mid_block"]
                raise ValueError(f"UNet has no module {b.module!r}; accepted: {', '.join(names)} or a dotted "
                                 "child such as 'up_blocks.1'") from None


# ------------------------------------------------------------------------------------------ rendering
def _to_images(out, output_type: str):
    return out.images if output_type != "np" else np.asarray(out.images)


@torch.no_grad()
def render_batch(pipe, bends=(), *, prompts: Sequence[str] | None = None, prompt_embeds=None,
                 negative_embeds=None, latents: torch.Tensor, steps: int = 50, guidance: float = 7.5,
                 start: int = 0, output_type: str = "pil"):
    """Text-to-image for a batch: one latent per item (B, 4, h, w), prompts or embeddings per item, and bends
    whose parameters may carry one value per item. Returns B images (PIL, or an array with output_type="np")."""
    bends = as_bends(bends)
    check_settings(steps, guidance)
    check_bends(pipe, bends, steps, tuple(latents.shape))
    if prompt_embeds is None:
        prompts = list(prompts)
        if len(prompts) != latents.shape[0]:
            raise ValueError(f"{len(prompts)} prompts for {latents.shape[0]} latents; accepted: one per latent")
        prompt_embeds, negative_embeds = encode_prompts(pipe, prompts)
    with bending(pipe, bends, start=start) as cb:
        out = pipe(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds, latents=latents,
                   num_inference_steps=steps, guidance_scale=guidance, output_type=output_type,
                   callback_on_step_end=cb)
    return _to_images(out, output_type)


@torch.no_grad()
def render_img2img(pipe, image, bends=(), *, prompt: str | Sequence[str] = "", strength: float = 0.5,
                   seed: int = 46, steps: int = 50, guidance: float = 7.5, prompt_embeds=None,
                   negative_embeds=None, output_type: str = "pil"):
    """Image-to-image from `image` (PIL, path, or a list of them); layers count the steps actually run."""
    check_settings(steps, guidance, seed, strength)
    bends = as_bends(bends)
    n = img2img_layers(steps, strength)
    if n < 1:
        raise ValueError(f"strength {strength} with {steps} steps runs no denoising step; accepted: "
                         f"strength >= {1 / steps:.3g}")
    images = image if isinstance(image, (list, tuple)) else [image]
    images = [_load_image(im, pipe) for im in images]
    check_bends(pipe, bends, n, latent_shape(pipe, len(images)))
    i2i = img2img_pipeline(pipe)
    kwargs = dict(prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_embeds)
    if prompt_embeds is None:
        kwargs = dict(prompt=[prompt] * len(images) if isinstance(prompt, str) else list(prompt))
    with bending(i2i, bends) as cb:
        out = i2i(image=images, strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                  generator=torch.Generator().manual_seed(seed), output_type=output_type,
                  callback_on_step_end=cb, **kwargs)
    return _to_images(out, output_type)


def _load_image(im, pipe) -> Image.Image:
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
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    return im.convert("RGB").resize((side, side), Image.LANCZOS) if im.size != (side, side) else im.convert("RGB")


def render(prompt: str = "", bends=(), *, model=None, pipe=None, seed: int = 46, steps: int = 50,
           guidance: float = 7.5, negative_prompt: str | None = None, init_image=None, strength: float = 0.5,
           height: int | None = None, width: int | None = None, output_type: str = "pil"):
    """Render one prompt with a list of bends; returns a PIL image.

    The paper's defaults: DDIM, 50 steps, seed 46, guidance 7.5. With `init_image` it is image-to-image with
    that `strength` (layers then count the steps actually run). `model` is the shipped model by default.
    """
    if not isinstance(prompt, str):
        raise ValueError(f"prompt {prompt!r} is not a string")
    check_settings(steps, guidance, seed, strength if init_image is not None else None)
    bends = as_bends(bends)
    pipe = pipe or load_pipeline(model)
    if init_image is not None:
        return render_img2img(pipe, init_image, bends, prompt=prompt, strength=strength, seed=seed, steps=steps,
                              guidance=guidance, output_type=output_type)[0]
    shape = latent_shape(pipe, 1, height, width)
    check_bends(pipe, bends, steps, shape)
    embeds, neg = encode_prompts(pipe, [prompt], negative_prompt)
    x = initial_noise(pipe, seed, 1, height, width)
    return render_batch(pipe, bends, prompt_embeds=embeds, negative_embeds=neg, latents=x, steps=steps,
                        guidance=guidance, output_type=output_type)[0]


@torch.no_grad()
def render_grid(prompt: str, op: str, params: Sequence[float], layers: Sequence[int], where="all",
                norm: str | None = None, *, base=(), model=None, pipe=None, seed: int = 46, steps: int = 50,
                guidance: float = 7.5, branch: bool = True, output_type: str = "pil", progress: bool = False):
    """A grid of variations: rows = layers, columns = params, every image `op(param)` at that layer (after the
    optional `base` bends, which must all act before the smallest layer when branching).

    With branch=True the first L steps, shared by every image of row L, are computed once (one prefix run
    captures every row's latent) and each row's parameters run as one batch from layer L; the images equal
    independent renders within float rounding (tested to 1e-5). Returns rows of images.
    """
    check_settings(steps, guidance, seed)
    pipe = pipe or load_pipeline(model)
    base = as_bends(base)
    params, layers = list(params), list(layers)
    sweep = [Bend(op, torch.tensor(params, dtype=torch.float64), L, where, norm) for L in layers]
    shape = latent_shape(pipe, len(params))
    check_bends(pipe, base + sweep, steps, shape)
    embeds, neg = encode_prompts(pipe, [prompt])
    x0 = initial_noise(pipe, seed)
    rows = []
    shared = branch and all(max(b.layers) < min(layers) and b.module is None for b in base)
    bar = _progress(len(layers), progress, "rows")
    if shared:
        prefix = sorted(set(layers))
        captured = {}
        if prefix[-1] > 0:
            with bending(pipe, base, capture=prefix, stop=prefix[-1]) as cb:
                pipe(prompt_embeds=embeds, negative_prompt_embeds=neg, latents=x0.clone(), num_inference_steps=steps,
                     guidance_scale=guidance, output_type="latent", callback_on_step_end=cb)
            captured = cb.captured
        for L, b in zip(layers, sweep):
            start = captured.get(L, x0).expand(len(params), -1, -1, -1).clone()
            rows.append(render_batch(pipe, [b], prompt_embeds=embeds.expand(len(params), -1, -1),
                                     negative_embeds=neg.expand(len(params), -1, -1), latents=start, steps=steps,
                                     guidance=guidance, start=L, output_type=output_type))
            bar.update()
    else:
        for b in sweep:
            row = []
            for p in params:
                one = Bend(op, p, b.layer, b.where, b.norm)
                row.append(render_batch(pipe, base + [one], prompt_embeds=embeds, negative_embeds=neg,
                                        latents=x0.clone(), steps=steps, guidance=guidance,
                                        output_type=output_type)[0])
            rows.append(row)
            bar.update()
    bar.close()
    return rows


def _progress(total: int, enabled: bool, unit: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, disable=not enabled, unit=unit)
