"""What a finished video is measured by: how far an img2img chain drifts from its first frame (`drift`), how
much consecutive frames flicker beside how much the bend parameter itself moved (`flicker`), and whether the
video method's window seams show (`seams`). `bendlab video` prints them at the end; the benchmark prints them too.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .coherence import to_tensor
from ..checks import BendlabValueError


SSIM_WINDOW = 7  # pixels: small, for the shipped model's 64 px frames


def _open(f):
    return f if isinstance(f, Image.Image) else Image.open(f)


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
        raise BendlabValueError("no frames to measure")
    ts = [to_tensor(_open(f)) for f in frames]
    labs = [rgb_to_lab(t)[0].flatten(1) for t in ts]
    first = ts[0]
    sims = [float(ssim(t, first, SSIM_WINDOW).mean()) for t in ts]
    return Drift(np.stack([lab.mean(1).numpy() for lab in labs]), np.stack([lab.std(1).numpy() for lab in labs]),
                 np.asarray(sims))


def _rgb(f) -> np.ndarray:
    return f.astype(np.float64) if isinstance(f, np.ndarray) else np.asarray(_open(f).convert("RGB"), np.float64)


def consecutive_diffs(frames) -> np.ndarray:
    """(n - 1,) the mean absolute difference of each frame from the one before (8-bit levels, 0..255); frames:
    PIL images, paths or (h, w, 3) arrays, e.g. an mp4's frames (`mp4_frames`)."""
    arrays = [_rgb(f) for f in frames]
    return np.asarray([np.abs(b - a).mean() for a, b in zip(arrays, arrays[1:])])


def neighbour_ssim(frames) -> np.ndarray:
    """(n - 1,) the SSIM of each frame with the next (kornia, window SSIM_WINDOW, on RGB in 0..1; 1 = the same
    structure): how alike neighbouring frames are, where `consecutive_diffs` says how far apart."""
    from kornia.metrics import ssim
    ts = [to_tensor(f if isinstance(f, np.ndarray) else _open(f)) for f in frames]
    return np.asarray([float(ssim(a, b, SSIM_WINDOW).mean()) for a, b in zip(ts, ts[1:])])


def max_frame_difference(a, b) -> int:
    """The largest pixel difference (8-bit levels) between the frames two render folders both hold (frame_*.png
    by name), e.g. a render on Ray workers against the same render in this process; a one-line error if they
    share no frame.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    from pathlib import Path
    a, b = Path(a), Path(b)
    shared = [f for f in sorted(a.glob("frame_*.png")) if (b / f.name).exists()]
    if not shared:
        raise BendlabValueError(f"render folders {str(a)!r} and {str(b)!r} share no frame; accepted: two render "
                                "folders of the same video")
    return max(int(np.abs(_rgb(f) - _rgb(b / f.name)).max()) for f in shared)


def mp4_frames(path) -> list[np.ndarray]:
    """The decoded frames of a video file, (h, w, 3) uint8 each (imageio's ffmpeg)."""
    import imageio.v3 as iio
    return list(iio.imiter(str(path)))


def flicker(frames, param: np.ndarray | None = None, low: float = 0.0, high: float = 1.0, label: str = "") -> str:
    """One line: the mean absolute difference of consecutive frames (8-bit levels, 0..255), with its 95th
    percentile and maximum (an interpolated video spreads a jump over several frames: the mean stays, the
    percentile falls), and beside it how much the bend parameter moved per frame (mean |change| as a percentage
    of its range low..high), so a flicker the music asks for can be told from one it does not."""
    diffs = consecutive_diffs(frames)
    if len(diffs) < 1:
        return f"flicker{label}: 1 frame, nothing to compare"
    line = (f"flicker{label}: consecutive frames differ by {np.mean(diffs):.2f} levels on average (95th percentile "
            f"{np.percentile(diffs, 95):.2f}, max {np.max(diffs):.2f})")
    if param is not None and len(param) > 1:
        moved = 100 * np.abs(np.diff(np.asarray(param, float))).mean() / abs(high - low)
        line += f"; the parameter moved {moved:.1f}% of its range per frame"
    return line


@dataclass
class Seams:
    """A video rendered in windows, its consecutive-frame differences split by where they fall: `diffs[i]` is
    the mean absolute difference of frames i and i + 1 (8-bit levels); `seam` the pairs where a blend between
    two windows starts or ends (the frame before an overlap and its first frame, its last frame and the one
    after; a cut where windows only touch); `within` the pairs inside one window, away from any overlap."""

    diffs: np.ndarray  # (n - 1,)
    seam: np.ndarray  # indices into diffs
    within: np.ndarray  # indices into diffs

    @property
    def across(self) -> float:
        """The mean difference across the seams (nan with no seam)."""
        return float(np.mean(self.diffs[self.seam])) if len(self.seam) else float("nan")

    @property
    def inside(self) -> float:
        """The mean difference within the windows (nan if no pair is)."""
        return float(np.mean(self.diffs[self.within])) if len(self.within) else float("nan")

    def summary(self) -> str:
        """One line: the two means, their ratio and the largest seam."""
        if not len(self.seam):
            return "seams: one window, no seam"
        return (f"seams: frames differ by {self.across:.2f} levels across the {len(self.seam)} seam pairs (max "
                f"{self.diffs[self.seam].max():.2f}) against {self.inside:.2f} within the windows (ratio "
                f"{self.across / self.inside:.2f})")


def seams(frames, windows) -> Seams:
    """How much a video's windows show: `frames` (PIL images, paths or arrays, in order; the first ones of a clip
    will do) and `windows`, the clip's (start, end) pairs (`video.joint.plan_windows`). Pairs beyond the frames
    given are left out."""
    diffs = consecutive_diffs(frames)
    shared = np.zeros(len(diffs) + 1, bool)  # frames in more than one window
    edges = set()
    for (_, end), (start, _) in zip(windows, windows[1:]):
        shared[start:end] = True
        edges.update({start - 1, end - 1})  # pairs (start - 1, start) and (end - 1, end)
    seam = np.array(sorted(i for i in edges if 0 <= i < len(diffs)), dtype=int)
    within = np.array([i for i in range(len(diffs)) if i not in edges and not shared[i] and not shared[i + 1]],
                      dtype=int)
    return Seams(diffs, seam, within)
