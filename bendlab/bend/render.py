"""Rendering with bends on the stock pipeline: the latent's shape and seeded noise, the prompts' embeddings, one
denoising call (`denoise`), and the entry points `render`, `render_batch`, `render_img2img`, `render_grid`.

Each entry point checks once, then runs (`bend.fit` checks settings and bends against the model before any
work; `run_batch` runs without checks, for loops that checked once: a video's batches, a live frame).
Branching: renders that share prompt, seed and every bend before layer L share their first L steps;
`shared_prefix` computes those once and `render_grid` runs the branches as one batch from layer L.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .bends import Bend, as_bends
from ..checks import BendlabValueError, check_list, check_numbers, is_int
from .. import models
from ..models.family import VIDEO, family_of
from . import operators
from ..models.load import img2img_pipeline
from ..paper import SEED
from .fit import STRENGTH, check_bends, check_pipe, check_settings, check_token_words, img2img_layers
from .hooks import BendCallback, bending


def latent_shape(pipe, batch: int = 1, height: int | None = None, width: int | None = None) -> tuple:
    """(B, 4, h, w) of the latent for an image of height x width pixels (default: the model's native size)."""
    f = pipe.vae_scale_factor
    fam = family_of(pipe)
    denoiser, side = fam.denoiser_of(pipe), fam.latent_size(pipe)
    step = math.lcm(f, 8)  # the latent's pixels, and diffusers' pipelines' check_inputs (multiples of 8)
    for name, v in (("height", height), ("width", width)):
        if v is not None and (not is_int(v) or not step <= v <= 8192 or v % step):
            raise BendlabValueError(f"{name} {v!r} is not a positive multiple of {f}{' and of 8' if step != f else ''}"
                                    f" pixels up to 8192; accepted: {step}, {2 * step}, ... (default "
                                    f"{side * f})")
    height = height or side * f
    width = width or side * f
    return (batch, denoiser.config.in_channels, height // f, width // f)


def initial_noise(pipe, seed: int = SEED, batch: int = 1, height=None, width=None) -> torch.Tensor:
    """Standard normal initial latent from a CPU generator (the same noise on CPU and GPU), on pipe's device."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(latent_shape(pipe, batch, height, width), generator=g)
    return x.to(pipe.device, family_of(pipe).denoiser_of(pipe).dtype)


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


# ------------------------------------------------------------------------------------------ rendering
def denoise(pipe, embeds: Embeddings, latents: torch.Tensor, *, steps: int, guidance: float, callback: BendCallback,
            output_type: str = "latent", seed: int = 0):
    """One call of the stock pipeline from `latents` with a `bending` callback: the image size is the latent's
    (SDXL conditions on it), and the fresh noise of stochastic samplers comes from `seed`. A video family's
    latent (1, C, F, h, w) is one clip of F frames (`num_frames`)."""
    f = pipe.vae_scale_factor
    clip = {"num_frames": latents.shape[2]} if family_of(pipe).layout is VIDEO else {}
    return pipe(**embeds.kwargs(), latents=latents, height=latents.shape[-2] * f, width=latents.shape[-1] * f,
                num_inference_steps=steps, guidance_scale=guidance, output_type=output_type,
                callback_on_step_end=callback, generator=torch.Generator().manual_seed(seed), **clip)


def _to_images(out, output_type: str):
    """The images of a pipeline's output: an image pipeline's `images`, a video pipeline's one clip's frames."""
    images = out.frames[0] if hasattr(out, "frames") else out.images
    return images if output_type != "np" else np.asarray(images)


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
            raise BendlabValueError(f"{len(prompts)} prompts for {latents.shape[0]} latents; accepted: one per latent")
    if embeds is None:
        embeds = encode_prompts(pipe, prompts)
    if start and models.is_stochastic(pipe.scheduler):
        raise BendlabValueError(f"a {type(pipe.scheduler).__name__} adds fresh noise at every step, so a render cannot "
                                "start from another's intermediate latent; accepted: start=0 with this sampler")
    return run_batch(pipe, bends, embeds, latents, steps=steps, guidance=guidance, start=start, prompts=prompts,
                     output_type=output_type, seed=seed)


@torch.no_grad()
def run_batch(pipe, bends: Sequence[Bend], embeds: Embeddings, latents: torch.Tensor, *, steps: int, guidance: float,
              start: int = 0, prompts: Sequence[str] | None = None, output_type: str = "pil", seed: int = 0):
    """`render_batch` without its checks and resolution, for a loop that checked once (prepare, then run): bends
    are `Bend`s already checked against this pipeline and render (`fit.check_bends`), steps and guidance
    resolved, one embedding row and prompt per latent, start 0 with a stochastic sampler. A video's batches
    (`video.renderer`), a live frame (`live.loop`) and the explorer's branches (`ui.widgets`) run here."""
    with bending(pipe, bends, start=start, prompts=prompts) as cb:
        out = denoise(pipe, embeds, latents, steps=steps, guidance=guidance, callback=cb, output_type=output_type,
                      seed=seed)
    return _to_images(out, output_type)


@torch.no_grad()
def shared_prefix(pipe, embeds: Embeddings, latents: torch.Tensor, layers: Sequence[int], *, steps: int,
                  guidance: float, bends: Sequence[Bend] = ()) -> dict[int, torch.Tensor]:
    """{layer: latent} at each of `layers` of one denoising of `latents` with `bends` (all acting before the
    last of those layers), the call stopped after the last: what every render branching at one of those layers
    shares, computed once (`render_grid`'s sweeps, a video's fixed-noise frames, live's prompts). A layer's
    latent is the one its bends (if any) made, before the next step; branch from it with `start=layer`."""
    layers = sorted(set(layers))
    with bending(pipe, bends, capture=layers, stop=layers[-1]) as cb:
        denoise(pipe, embeds, latents.clone(), steps=steps, guidance=guidance, callback=cb)
    return cb.captured


@torch.no_grad()
def render_img2img(pipe, image, bends=(), *, prompt: str | Sequence[str] = "", strength: float = STRENGTH,
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
            raise BendlabValueError(f"init image {str(p)!r} is not a readable image ({e})") from None
    if not isinstance(im, Image.Image):
        raise BendlabValueError(f"init image {type(im).__name__} is not a PIL image or a path")
    if pipe is None:
        return im.convert("RGB")
    side = family_of(pipe).latent_size(pipe) * pipe.vae_scale_factor
    return im.convert("RGB").resize((side, side), Image.LANCZOS) if im.size != (side, side) else im.convert("RGB")


def render(prompt: str = "", bends=(), *, model=None, pipe=None, device: str | None = None, seed: int = SEED,
           steps: int | None = None, guidance: float | None = None, negative_prompt: str | None = None, init_image=None,
           strength: float = STRENGTH, height: int | None = None, width: int | None = None, output_type: str = "pil"):
    """Render one prompt with a list of bends; returns a PIL image.

    The paper's defaults: DDIM, 50 steps, seed 46, guidance 7.5. With `init_image` it is image-to-image with
    that `strength` (layers then count the steps actually run). `model` is the shipped model by default and is
    loaded (on `device`) only after every input has been checked. steps/guidance None: the model's usual
    ones (`models.usual_settings`: 50 and 7.5 with DDIM, 4 steps for LCM, 1 step and guidance 0 for Turbo).

    Notebook: notebooks/01_operators.ipynb
    """
    if not isinstance(prompt, str):
        raise BendlabValueError(f"prompt {prompt!r} is not a string")
    if negative_prompt is not None and not isinstance(negative_prompt, str):
        raise BendlabValueError(f"negative prompt {negative_prompt!r} is not a string")
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
        raise BendlabValueError(f"render_grid needs at least one parameter and one layer (got params={params}, "
                                f"layers={layers}); accepted: non-empty lists")
    if any(not isinstance(L, int) or isinstance(L, bool) for L in layers):
        raise BendlabValueError(f"layers {layers} are not all integers; accepted: layers 0..{steps}")
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
            captured = shared_prefix(pipe, embeds, x0, prefix, steps=steps, guidance=guidance,
                                     bends=[b for b in base if b.kind != "vae"])
        for L, b in zip(layers, sweep):
            start = captured.get(L, x0).expand(len(params), -1, -1, -1).clone()
            rows.append(run_batch(pipe, at_decode + [b], embeds.expand(len(params)), start, steps=steps,
                                  guidance=guidance, start=L, prompts=[prompt] * len(params),
                                  output_type=output_type))
            bar.update()
    else:
        for b in sweep:
            row = []
            for p in params:
                one = Bend(op, p, b.layer, b.where, b.norm, target=b.target)
                row.append(run_batch(pipe, base + [one], embeds, x0.clone(), steps=steps, guidance=guidance,
                                     prompts=[prompt], output_type=output_type, seed=seed)[0])
            rows.append(row)
            bar.update()
    bar.close()
    return rows


def _progress(total: int, enabled: bool, unit: str):
    from tqdm.auto import tqdm
    return tqdm(total=total, disable=not enabled, unit=unit)
