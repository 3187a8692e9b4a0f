"""The video method: the frames of a window denoised jointly by a video pipeline (AnimateDiff: an SD v1.x model
with a motion adapter, `models.ANIMATEDIFF`), each frame bent by its own moment of the music.

The window is the whole clip for now (`video.spec.check_window` refuses a longer one before the model loads).
Its initial latent is one (1, C, F, h, w) tensor of seeded standard normal noise; the mappings' curves give one
parameter per video frame, and a bend acts on the family's canonical view of the latent, (F, C, h, w), one row
per frame, so frame k's slice along the frame axis is bent by the value of frame k (`bend.hooks.BendCallback`).
What follows from it: a bend at the last layer (after the last step, before the VAE decodes each frame on its
own) changes exactly the frames whose parameter is not the identity; at an earlier layer the motion modules
(temporal attention across the window's frames) carry part of a frame's bend to its neighbours in the steps left.
"""

from __future__ import annotations

import torch

from ..bend.render import encode_prompts, latent_shape, run_batch
from .spec import Plan, frame_bends


def window_noise(pipe, seed: int, n_frames: int) -> torch.Tensor:
    """(1, C, n_frames, h, w) standard normal initial latent of a window from a CPU generator seeded with `seed`
    (the same noise on CPU and GPU), on the pipeline's device: frame k's slice is the k-th (C, h, w) draw."""
    _, C, h, w = latent_shape(pipe, 1)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n_frames, C, h, w), generator=g).permute(1, 0, 2, 3).unsqueeze(0)
    return x.to(pipe.device, pipe.unet.dtype)


def render_window(plan: Plan, pipe, output_type: str = "pil") -> list:
    """Every frame of the plan as one window on a video pipeline: the stock pipeline call with the mappings'
    bends installed, each with one parameter per frame (`frame_bends` over all frames). Returns the frames in
    order (PIL images, or an (F, H, W, 3) array with output_type="np")."""
    spec, n = plan.spec, plan.n_frames
    frames = list(range(n))
    embeds = encode_prompts(pipe, spec.prompts[:1])
    return run_batch(pipe, frame_bends(spec, plan.curves, frames, plan.vectors), embeds,
                     window_noise(pipe, spec.seed, n), steps=spec.steps, guidance=spec.guidance,
                     prompts=spec.prompts[:1], output_type=output_type, seed=spec.seed)
