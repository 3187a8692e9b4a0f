"""The video method's ways of joining windows, measured side by side on one song (docs/video.md, "Tried and
measured"): the piano's first 40 frames at 10 fps, "a floating orb", R1 <- RMS over 0..pi (and with no bend),
windows of 16 overlapping by 4, the shipped model with its shipped adapter.

  noise shuffle / random   bendlab's windows as `bendlab video --method video --noise ...` renders them
  fusion S                 diffusers' FreeNoise fusion inside the motion modules (`enable_free_noise`, windows S
                           frames apart, pyramid weights) over the whole clip in one call, from the random noise
  pixel                    random noise, the windows' decoded frames cross-faded instead of their latents
  walk                     method A's sin/cos walk as every frame's noise (neighbouring frames' noise nearly equal)

For each: flicker mean and p95 of consecutive-frame differences (8-bit levels), neighbour SSIM, the mean difference
across the seams and within the windows, and seconds per frame. Run: `OMP_NUM_THREADS=1 .venv/bin/python
benchmarks/video_seams.py [--steps 50] [--only noise,fusion,pixel,walk]`.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import torch

from bendlab import models
from bendlab.mapping import Mapping
from bendlab.paper import SEED
from bendlab.ui.figures import METHODS_VIDEO as V, PIANO_FILE
from bendlab.video import VideoSpec, check_spec
from bendlab.video.joint import WindowRenderer, blend_weights, plan_windows
from bendlab.video.quality import consecutive_diffs, neighbour_ssim, seams
from bendlab.video.renderer import noise_walk

N, WINDOW, OVERLAP = 40, 16, 4


def plan(steps: int, bend: bool, noise: str, window: int = WINDOW, overlap: int = OVERLAP):
    spec = VideoSpec(audio=str(PIANO_FILE), prompts=[V["prompt"]], fps=V["fps"], steps=steps, seed=SEED,
                     method="video", window=window, overlap=overlap, noise=noise,
                     mappings=[Mapping(V["feature"], V["op"], None, V["low"], V["high"] if bend else 1e-6)])
    p = check_spec(spec)
    return replace(p, curves=p.curves[:, :N]), p.n_frames


def report(label: str, frames, seconds: float) -> None:
    frames = [np.asarray(f, np.float64) for f in frames]
    d, s = consecutive_diffs(frames), seams(frames, plan_windows(N, WINDOW, OVERLAP))
    print(f"{label:30s} flicker mean {d.mean():6.2f} p95 {np.percentile(d, 95):6.2f}  SSIM "
          f"{neighbour_ssim(frames).mean():.3f}  seams {s.across:5.1f} within {s.inside:5.1f}  "
          f"{seconds / N:.2f} s/frame", flush=True)


def windows(pipe, steps, bend, noise):
    p, _ = plan(steps, bend, noise)
    t0 = time.perf_counter()
    frames = [f for _, f in WindowRenderer(p, pipe).frames(range(N))]
    report(f"noise {noise}", frames, time.perf_counter() - t0)


def fusion(pipe, steps, bend, stride):
    """The whole clip as one window, FreeNoise's blocks in the motion modules; the pipeline's own prompt and noise
    path kept (FreeNoise's refuses prompt embeddings), so the noise is bendlab's random one."""
    p, _ = plan(steps, bend, "random")
    p = replace(p, spec=replace(p.spec, window=N, overlap=0))
    pipe.enable_free_noise(context_length=WINDOW, context_stride=stride, weighting_scheme="pyramid",
                           noise_type="random")
    pipe._free_noise_context_length = None  # the motion modules stay fused; the pipeline's call stays its own
    t0 = time.perf_counter()
    try:
        frames = [f for _, f in WindowRenderer(p, pipe).frames(range(N))]
    finally:
        pipe.disable_free_noise()
    report(f"fusion, windows {stride} apart", frames, time.perf_counter() - t0)


def pixel(pipe, steps, bend):
    p, _ = plan(steps, bend, "random")
    r = WindowRenderer(p, pipe)
    t0 = time.perf_counter()
    out = None
    for j, ((s, e), w) in enumerate(zip(r.windows, blend_weights(r.windows))):
        x = np.stack([np.asarray(f, np.float64) for f in r.decode(r.latents(j), "pil", range(s, e))])
        out = np.zeros((N, *x.shape[1:])) if out is None else out
        out[s:e] += w[:, None, None, None] * x
    report("pixel cross-fade", np.clip(np.rint(out), 0, 255), time.perf_counter() - t0)


def walk(pipe, steps, bend):
    p, n_song = plan(steps, bend, "random")
    r = WindowRenderer(p, pipe)
    z = noise_walk(pipe, SimpleNamespace(seed=p.spec.seed, walk="sincos"), n_song, range(N))  # (N, C, h, w)

    class Walk:
        def frames(self, s, e):
            return z[s:e].permute(1, 0, 2, 3).unsqueeze(0)
    r.noise = Walk()
    t0 = time.perf_counter()
    report("method A's walk as noise", [f for _, f in r.frames(range(N))], time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--only", default="noise,fusion,pixel,walk")
    a = ap.parse_args()
    torch.set_num_threads(1)
    pipe = models.load_pipeline(None, "cpu", motion_adapter=models.default_motion_adapter(None))
    only = a.only.split(",")
    for bend in (True, False):
        print(f"-- {V['op']} <- {V['feature']} over {V['low']}..{V['high']}" if bend else "-- no bend")
        if "noise" in only:
            for noise in ("shuffle", "random"):
                windows(pipe, a.steps, bend, noise)
        if "fusion" in only:
            for stride in (4, 12):
                fusion(pipe, a.steps, bend, stride)
        if "pixel" in only:
            pixel(pipe, a.steps, bend)
        if "walk" in only:
            walk(pipe, a.steps, bend)


if __name__ == "__main__":
    main()
