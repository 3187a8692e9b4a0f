"""The three ways bendlab makes a video, side by side on one song: the same prompt, mapping, seed and steps through
method A (text-to-image per frame, the sin/cos noise walk: the paper's), method B (each frame from the previous one
by image-to-image, with LAB colour coherence) and the video method (a video model's windows: AnimateDiff on the
model with a motion adapter). Each is rendered into its own render folder (resumable, reused when run again) and
measured the same way: how much consecutive frames differ (mean and 95th percentile, 8-bit levels), how alike
neighbouring frames are (SSIM, 1 = the same), and the wall-clock seconds per frame.

`bendlab/ui/figures.py` draws the frames as a figure, `ui.plots.plot_flicker` the differences along the song, and
`benchmarks/bench.py --only methods` prints the table.

Notebook: notebooks/10_video_models.ipynb
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .quality import consecutive_diffs, neighbour_ssim

# label -> the VideoSpec settings that make that method from a text-to-image spec
METHODS = {
    "A: txt2img, walk": {},
    "B: img2img, LAB": {"method": "img2img", "color_coherence": "lab"},
    "video: AnimateDiff": {"method": "video"},
}


@dataclass
class MethodRun:
    """One method's frames of the song and what they measure."""

    label: str
    frames: list  # paths of the frames, in order
    seconds: float  # wall-clock seconds this call spent rendering (0 when every frame was already in its folder)
    diffs: np.ndarray  # (n - 1,) consecutive-frame mean absolute differences, 8-bit levels
    ssim: np.ndarray  # (n - 1,) SSIM of each frame with the next

    @property
    def mean(self) -> float:
        return float(self.diffs.mean())

    @property
    def p95(self) -> float:
        return float(np.percentile(self.diffs, 95))

    def summary(self) -> str:
        per = f"{self.seconds / len(self.frames):.2f} s/frame" if self.seconds else "frames reused"
        return (f"{self.label:20s} flicker mean {self.mean:5.2f}, p95 {self.p95:5.2f} levels; neighbour SSIM "
                f"{self.ssim.mean():.3f}; {per}")


def compare_methods(spec, folder, *, frames: int | None = None, motion_adapter: str | None = None,
                    methods=tuple(METHODS), window: int | None = None, overlap: int | None = None, pipe=None,
                    video_pipe=None, device: str | None = None, progress: bool = False) -> dict[str, MethodRun]:
    """Render the first `frames` frames (None: all) of `spec` (a text-to-image `VideoSpec`: prompt, mapping, seed,
    steps, fps) by each of `methods` (labels of METHODS) into render folders under `folder` (made if
    missing), and measure them.
    The video method uses `motion_adapter` (None: the spec's own, or the shipped model's default) in windows of
    `window` frames overlapping by `overlap` (None: the spec's, else the adapter's window and a quarter). pipe,
    video_pipe: the loaded pipelines (the model, and it with the adapter), or None to load them on `device` before
    any timing. Every input is checked before anything loads; a folder already holding a method's frames is
    reused (its seconds are then only what was missing)."""
    from .. import models
    from .make import check_spec, render_frames
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fields = spec.__dataclass_fields__
    specs = {}
    for label in methods:
        extra = dict(METHODS[label])
        if extra.get("method") == "video":  # the txt2img-only settings back to their defaults
            extra.update({n: fields[n].default for n in ("walk", "batch")},
                         motion_adapter=motion_adapter or spec.motion_adapter,
                         window=window or spec.window, overlap=spec.overlap if overlap is None else overlap)
        specs[label] = replace(spec, **extra)
        check_spec(specs[label])
    runs = {}
    for k, (label, s) in enumerate(specs.items()):
        if s.method == "video":
            video_pipe = video_pipe or models.load_pipeline(s.model, device, motion_adapter=s.motion_adapter)
        else:
            pipe = pipe or models.load_pipeline(s.model, device)
        t0 = time.perf_counter()
        path = render_frames(s, folder / f"method{k}.mp4", pipe=video_pipe if s.method == "video" else pipe,
                             limit=frames, progress=progress)
        seconds = time.perf_counter() - t0
        files = sorted(path.glob("frame_*.png"))[:frames]
        runs[label] = MethodRun(label, files, seconds, consecutive_diffs(files), neighbour_ssim(files))
    return runs
