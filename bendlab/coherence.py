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

`drift` measures a chain against its first frame, frame by frame: the LAB mean and spread of each channel and
the structural similarity (SSIM, kornia.metrics, 7-pixel window) to frame 0.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

COHERENCE = ("none", "lab", "rgb", "hsv")
SSIM_WINDOW = 7  # pixels: small, for the shipped model's 64 px frames


def _tensor(img) -> torch.Tensor:
    """(1, 3, H, W) float in [0, 1] from a PIL image or an (H, W, 3) uint8 array."""
    a = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img, dtype=np.float32) / 255.0
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def _image(t: torch.Tensor) -> Image.Image:
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
        raise ValueError(f"unknown colour coherence {mode!r}; accepted: {', '.join(COHERENCE)}")
    if mode == "none":
        return image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    x, ref = _to_space(_tensor(image), mode), _to_space(_tensor(reference), mode)
    channels = (1, 2) if mode == "hsv" else (0, 1, 2)  # hue is an angle: its mean is not matched
    out = x.clone()
    for c in channels:
        mu, sd = x[:, c].mean(), x[:, c].std()
        mu_r, sd_r = ref[:, c].mean(), ref[:, c].std()
        scale = sd_r / sd if sd > 1e-6 else 1.0
        out[:, c] = (x[:, c] - mu) * scale + mu_r
    if mode == "hsv":
        out[:, 1:] = out[:, 1:].clamp(0, 1)
    return _image(_from_space(out, mode))


@dataclass
class Drift:
    """A chain against its first frame, per frame k: LAB mean and standard deviation of each channel (L*, a*,
    b*; L* in 0..100) and SSIM to frame 0 (1 = the same structure)."""

    lab_mean: np.ndarray  # (n, 3)
    lab_std: np.ndarray  # (n, 3)
    ssim: np.ndarray  # (n,)

    def change(self) -> np.ndarray:
        """(n,) the largest relative change of the lightness statistics from frame 0: max(|dL*|/L*0, |dsL|/sL0)."""
        m0, s0 = self.lab_mean[0, 0], self.lab_std[0, 0]
        return np.maximum(np.abs(self.lab_mean[:, 0] - m0) / max(m0, 1e-6),
                          np.abs(self.lab_std[:, 0] - s0) / max(s0, 1e-6))

    def summary(self, frames=(10, 20, 40, 60)) -> str:
        """One line: the lightness mean and spread, their change and SSIM at chosen frames."""
        n = len(self.ssim)
        parts = [f"frame {k}: L* {self.lab_mean[k, 0]:.1f} (sd {self.lab_std[k, 0]:.1f}), change "
                 f"{100 * self.change()[k]:.0f}%, SSIM {self.ssim[k]:.2f}" for k in frames if k < n]
        return (f"drift against frame 0 (L* {self.lab_mean[0, 0]:.1f}, sd {self.lab_std[0, 0]:.1f}): "
                + ("; ".join(parts) if parts else f"only {n} frames"))


def drift(frames) -> Drift:
    """The drift of a sequence of frames (PIL images or paths) against its first frame."""
    from kornia.color import rgb_to_lab
    from kornia.metrics import ssim
    frames = list(frames)
    if not frames:
        raise ValueError("no frames to measure")
    ts = [_tensor(Image.open(f) if not isinstance(f, Image.Image) else f) for f in frames]
    labs = [rgb_to_lab(t)[0].flatten(1) for t in ts]
    first = ts[0]
    sims = [float(ssim(t, first, SSIM_WINDOW).mean()) for t in ts]
    return Drift(np.stack([lab.mean(1).numpy() for lab in labs]), np.stack([lab.std(1).numpy() for lab in labs]),
                 np.asarray(sims))
