"""Frames between the rendered ones, from the model's own VAE: the second way `--interpolate FPS` fills a higher
output rate (the first is ffmpeg's motion-compensated `minterpolate`, in `video.mux.mux`). No UNet runs.

Each rendered frame F_k is encoded once (the mean of the VAE's posterior, z_k); an output frame at
t seconds falls at s = t * fps on the rendered clock, between frames k = floor(s) and k + 1 at a = s - k, and is

    D((1 - a) z_k + a z_k+1) + (1 - a) (F_k - D(z_k)) + a (F_k+1 - D(z_k+1))

the decoded blend of the two latents plus the blend of what the VAE loses on each frame, so an output frame at
a rendered time (a = 0) is that rendered frame itself and the in-between frames run into it without a jump.
Cost: one encode and one decode per rendered frame, one decode per extra frame.

The in-between frames are written to the render folder (`video.frames/tweens-<FPS>fps/`) as they are made,
each named by its index and the hashes of the two frames it is made of: an interrupted pass resumes, and a
re-rendered frame's old in-betweens are never reused (they are deleted).

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from PIL import Image

from .coherence import to_image, to_tensor
from ..files import save_atomic


def output_times(n: int, fps: float, out_fps: float) -> list[tuple[int, float]]:
    """(k, a) for each output frame of an n-frame video at fps rewritten at out_fps: the frame lies a of the way
    from rendered frame k to k + 1 (a = 0: frame k itself). The output lasts n / fps s, as the rendered video:
    round(n * out_fps / fps) frames; past the last rendered frame it holds that frame."""
    m = max(1, round(n * out_fps / fps))
    times = []
    for j in range(m):
        s = j * fps / out_fps
        k = math.floor(s + 1e-9)
        a = s - k
        if k >= n - 1:
            k, a = n - 1, 0.0
        times.append((k, 0.0 if a < 1e-6 else a))
    return times


class _Coder:
    """A VAE in float32 on its device (a float16 VAE is copied up: SDXL's overflows in float16)."""

    def __init__(self, vae):
        import copy
        self.vae = vae if vae.dtype == torch.float32 else copy.deepcopy(vae).float()
        self.device = next(self.vae.parameters()).device

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(1, 4, h, w) latent of a (1, 3, H, W) image in [0, 1]: the posterior's mean."""
        return self.vae.encode((x * 2 - 1).to(self.device)).latent_dist.mean

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return ((self.vae.decode(z).sample + 1) / 2).float().cpu()


def tween_name(j: int, a_hash: str, b_hash: str) -> str:
    return f"tween_{j:06d}_{a_hash[:12]}_{b_hash[:12]}.png"


def latent_tweens(frames: list[Path], hashes: list[str], fps: float, out_fps: float, vae, folder: Path,
                  progress: bool = True) -> list[Path]:
    """The output frames at out_fps, in order: the rendered `frames` where an output frame falls on one, else the
    in-between frame (module docstring), made by `vae` and written to `folder` (reused when already there).
    hashes: each rendered frame's sha256 (`video.folder.RenderFolder.sha`), what names an in-between frame."""
    from tqdm.auto import tqdm
    times = output_times(len(frames), fps, out_fps)
    folder.mkdir(exist_ok=True)
    wanted = {j: folder / tween_name(j, hashes[k], hashes[k + 1]) for j, (k, a) in enumerate(times) if a}
    keep = set(wanted.values())
    for old in folder.glob("tween_*.png"):  # frames re-rendered since, or another pass's leftovers
        if old not in keep:
            old.unlink()
    todo = [j for j, p in wanted.items() if not p.is_file()]
    coder = _Coder(vae) if todo else None
    cache: dict[int, tuple] = {}

    def coded(k):  # (z_k, F_k - D(z_k)) of the frames the current in-betweens lie between (two kept)
        if k not in cache:
            if len(cache) > 2:
                cache.pop(min(cache))
            f = to_tensor(Image.open(frames[k]))
            z = coder.encode(f)
            cache[k] = (z, f - coder.decode(z))
        return cache[k]

    for j in tqdm(todo, unit="frame", disable=not progress, desc="in-between frames"):
        k, a = times[j]
        (z0, r0), (z1, r1) = coded(k), coded(k + 1)
        save_atomic(to_image(coder.decode(torch.lerp(z0, z1, a)) + (1 - a) * r0 + a * r1), wanted[j])
    return [wanted[j] if a else frames[k] for j, (k, a) in enumerate(times)]
