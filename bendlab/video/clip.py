"""One clip on a video transformer pipeline (Wan 2.x: `models.family.WAN`, LTX-Video: `models.family.LTX`), bent
per latent frame: the stock pipeline call with bends installed through `bend.hooks.bending`.

The clip's initial latent is seeded standard normal noise drawn on the CPU, one (C, h, w) draw per latent frame
(the same noise on CPU and GPU), handed to the pipeline in its own layout (Wan: (1, C, F', h, w); LTX: packed
tokens). A latent bend acts on the family's canonical view, (F', C, h, w), one row per latent frame, so a bend whose
parameter has F' values bends latent frame j by value j, as AnimateDiff's per-frame bends do
(`video.joint`); `video.latent_frames.per_latent_frame` makes those F' values from a curve over the F video frames.
Only the latent is a target here for now (`models.Family.check_targets`).
"""

from __future__ import annotations

import inspect
import math
from typing import Sequence

import torch

from ..bend.bends import Bend, as_bends
from ..bend.hooks import bending
from ..checks import BendlabValueError, check_int
from ..models.family import VIDEO_TRANSFORMERS, Family, family_of
from .latent_frames import check_frames


def _default(pipe, name: str):
    """The pipeline's own default for an argument of its call."""
    return inspect.signature(type(pipe).__call__).parameters[name].default


def _patch(fam: Family, pipe) -> int:
    """The transformer's spatial patch side (Wan: its patch_size (1, 2, 2); LTX: patch_size)."""
    p = fam.denoiser_of(pipe).config.patch_size
    return int(p[-1] if isinstance(p, (tuple, list)) else p)


def check_family(pipe) -> Family:
    """The pipeline's family; a one-line error unless it is a video transformer (`VIDEO_TRANSFORMERS`)."""
    fam = family_of(pipe)
    if fam not in VIDEO_TRANSFORMERS:
        accepted = ", ".join(f"{f.txt2img} ({f.name})" for f in VIDEO_TRANSFORMERS)
        raise BendlabValueError(f"render_clip renders a video transformer pipeline and this is {type(pipe).__name__} "
                                f"({fam.name}); accepted: {accepted}; AnimateDiff renders with "
                                "video.joint.render_window")
    return fam


def check_clip(pipe, bends: Sequence[Bend], n_frames: int, height: int, width: int, steps: int) -> Family:
    """One-line errors for a clip that cannot be rendered on this pipeline as asked (a pipeline of another family,
    a target not yet checked on it, frames that do not fill whole latent frames, a size the pipeline would round
    or refuse, a bend that does not fit: one parameter per video frame where one per latent frame is needed),
    before any model work. Returns the pipeline's family."""
    fam = check_family(pipe)
    fam.check_targets(bends)
    check_int("steps", steps, 1)
    r = fam.temporal_ratio_of(pipe)
    n = check_frames(n_frames, r)
    s = int(getattr(pipe, fam.spatial_ratio))
    side = math.lcm(s * _patch(fam, pipe), fam.size_multiple)
    for name, v in (("height", height), ("width", width)):
        check_int(name, v, side)
        if v % side:
            raise BendlabValueError(f"{name} {v} is not a multiple of {side} ({fam.name}'s VAE, patches and pipeline); "
                                    f"accepted: {v // side * side or side} or {(v // side + 1) * side}")
    _, h, w = fam.latent_grid(pipe, n_frames, height, width)
    shape = (n, fam.denoiser_of(pipe).config.in_channels, h, w)
    for b in bends:
        p = b.param
        if isinstance(p, torch.Tensor) and p.ndim and p.shape[0] == n_frames != n:
            raise BendlabValueError(f"{b.op}: one value per video frame ({n_frames}) where one per latent frame ({n}) "
                                    f"is needed (the VAE compresses time {r}x); accepted: "
                                    "video.latent_frames.per_latent_frame(curve, r) or a number")
        b.check(steps, shape)
    return fam


def clip_noise(pipe, seed: int, n_frames: int, height: int, width: int) -> torch.Tensor:
    """The clip's initial latent in the pipeline's layout: latent frame j is the j-th (C, h, w) standard normal draw
    of a CPU generator seeded with `seed`, on the pipeline's device, float32 (as the pipelines prepare theirs)."""
    fam = family_of(pipe)
    grid = fam.latent_grid(pipe, n_frames, height, width)
    channels = fam.denoiser_of(pipe).config.in_channels
    x = torch.randn((grid[0], channels, *grid[1:]), generator=torch.Generator().manual_seed(seed))
    like = torch.empty(fam.layout.shape(1, channels, grid), device="meta")
    return fam.layout.restore(x, like).contiguous().to(pipe.device)


@torch.no_grad()
def render_clip(pipe, bends=(), *, prompt: str, n_frames: int, height: int, width: int, steps: int | None = None,
                guidance: float | None = None, seed: int = 0, negative_prompt: str | None = None,
                output_type: str = "np"):
    """One clip of n_frames frames (1 + r k: r the VAE's temporal compression) at height x width from `prompt`,
    with `bends` (latent bends; a parameter is a number or one value per latent frame) installed on the stock
    pipeline call. steps, guidance: None -> the pipeline's own defaults (Wan: 50 and 5.0; LTX: 50 and 3.0). The
    prompt's tokens: the tokenizer's length or the pipeline's default, the shorter. Returns the frames: an (F, H, W,
    3) float array in 0..1 (output_type="np") or F PIL images ("pil"); with output_type="latent" the final latent,
    undecoded, in the pipeline's layout (without the batch axis)."""
    bends = as_bends(bends)
    check_family(pipe)
    steps = _default(pipe, "num_inference_steps") if steps is None else steps
    guidance = _default(pipe, "guidance_scale") if guidance is None else guidance
    check_clip(pipe, bends, n_frames, height, width, steps)
    tokens = min(pipe.tokenizer.model_max_length, _default(pipe, "max_sequence_length"))
    with bending(pipe, bends, prompts=[prompt]) as cb:
        out = pipe(prompt=prompt, negative_prompt=negative_prompt, num_frames=n_frames, height=height, width=width,
                   num_inference_steps=steps, guidance_scale=guidance, latents=clip_noise(pipe, seed, n_frames, height,
                                                                                          width),
                   generator=torch.Generator().manual_seed(seed), output_type=output_type, callback_on_step_end=cb,
                   max_sequence_length=tokens)
    return out.frames[0]
