"""Keeping an image-to-image chain's picture: colour coherence and the drift it is measured by.

The paper's method B makes each frame from the previous one. Each pass of the img2img pipeline pulls the colours
a little towards the model's average, so a chain drifts: with the shipped model, strength 0.5, 20 steps, the
mean brightness halves within ten frames and the picture turns to a uniform speckle. Deforum's answer, which
bendlab follows (its `color_coherence`), is to match every frame's colours to the first frame's before it
seeds the next: per channel, the mean and the spread (standard deviation) are moved to the first frame's, in
one of three colour spaces:

    lab   CIE L*a*b* (kornia.color): lightness and the two colour axes matched separately (the default to try)
    rgb   the red, green and blue channels
    hsv   hue, saturation and value (hue is circular: only saturation and value are matched)

`video.quality.drift` measures a chain against its first frame.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from ..checks import BendlabValueError

if TYPE_CHECKING:  # annotations: `COHERENCE` is read without torch (the command line's help)
    import torch

COHERENCE = ("none", "lab", "rgb", "hsv")


def to_tensor(img) -> torch.Tensor:
    """(1, 3, H, W) float in [0, 1] from a PIL image or an (H, W, 3) uint8 array."""
    import torch
    a = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img, dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def to_image(t: torch.Tensor) -> Image.Image:
    """The PIL image of a (1, 3, H, W) tensor in [0, 1] (clamped, rounded to 8 bits): `to_tensor`'s inverse."""
    a = (t[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(a)


def _to_space(t: torch.Tensor, mode: str) -> torch.Tensor:
    from kornia.color import rgb_to_hsv, rgb_to_lab
    return rgb_to_lab(t) if mode == "lab" else rgb_to_hsv(t) if mode == "hsv" else t


def _from_space(t: torch.Tensor, mode: str) -> torch.Tensor:
    from kornia.color import hsv_to_rgb, lab_to_rgb
    return lab_to_rgb(t, clip=True) if mode == "lab" else hsv_to_rgb(t) if mode == "hsv" else t


def match_colors(image, reference, mode: str = "lab") -> Image.Image:
    """`image` with each channel's mean and standard deviation moved to `reference`'s, in the colour space `mode`
    (see the module docstring; "none" returns the image unchanged). A flat channel (std 0) is only shifted."""
    if mode not in COHERENCE:
        raise BendlabValueError(f"unknown colour coherence {mode!r}; accepted: {', '.join(COHERENCE)}")
    if mode == "none":
        return image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    x, ref = _to_space(to_tensor(image), mode), _to_space(to_tensor(reference), mode)
    channels = (1, 2) if mode == "hsv" else (0, 1, 2)  # hue is an angle: its mean is not matched
    out = x.clone()
    for c in channels:
        mu, sd = x[:, c].mean(), x[:, c].std()
        mu_r, sd_r = ref[:, c].mean(), ref[:, c].std()
        scale = sd_r / sd if sd > 1e-6 else 1.0
        out[:, c] = (x[:, c] - mu) * scale + mu_r
    if mode == "hsv":
        out[:, 1:] = out[:, 1:].clamp(0, 1)
    return to_image(_from_space(out, mode))
