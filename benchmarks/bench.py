"""bendlab benchmarks: every number is measured side by side in this one run and printed as a ratio or a time.

    python benchmarks/bench.py            # all, on the shipped model, 1 torch thread
    python benchmarks/bench.py --only render bend
    python benchmarks/bench.py --device cuda --only render bend branch   # the float16 CUDA path

render   one 50-step image with guidance 7.5 (seconds, median)          goal: <= 1 s on 1 CPU thread
bend     bent / unbent render time (add at layer 40)                    goal: <= 1.03
branch   8 parameter values at layer 40: branched / independent time  goal: <= 0.35 (limit 0.30), max |diff| <= 1e-5
batch    video frames: batched throughput / sequential throughput      goal: >= 2
explorer one slider move in notebooks/01 (bent image + layer strip, cache miss), median s   goal: <= 1 s
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (float32) or cuda (float16)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", nargs="*", default=["render", "bend", "branch", "batch", "explorer"])
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    from bendlab import Bend, load_pipeline, render, render_grid
    pipe = load_pipeline(a.model, device=a.device)
    where = torch.cuda.get_device_name() if a.device.startswith("cuda") else f"cpu, {a.threads} thread(s)"
    print(f"model {a.model or 'bendlab-tiny-sd'}, {where}, {pipe.unet.dtype}, torch {torch.__version__}")
    render("warm up", pipe=pipe, steps=5)

    if "render" in a.only or "bend" in a.only:
        plain, bent = [], []
        for _ in range(a.repeat):  # interleaved, so drift in machine load hits both alike
            plain += timed(lambda: render("a floating orb", pipe=pipe), 1)
            bent += timed(lambda: render("a floating orb", [Bend("add", 1.0, 40)], pipe=pipe), 1)
        p, b = statistics.median(plain), statistics.median(bent)
        if "render" in a.only:
            print(f"render   50 steps, guidance 7.5: median {p:.3f} s (min {min(plain):.3f})   goal <= 1 s")
        if "bend" in a.only:
            print(f"bend     bent/unbent: {b:.3f} / {p:.3f} s = {b / p:.3f}   goal <= 1.03")

    if "branch" in a.only:
        params = [k * 2 * math.pi / 8 for k in range(8)]
        kw = dict(pipe=pipe, output_type="np")
        t_branch = timed(lambda: render_grid("a gorgeous landscape", "rotate1", params, [40], **kw), 3)
        t_indep = timed(lambda: render_grid("a gorgeous landscape", "rotate1", params, [40], branch=False, **kw), 3)
        fast = np.asarray(render_grid("a gorgeous landscape", "rotate1", params, [40], **kw))
        slow = np.asarray(render_grid("a gorgeous landscape", "rotate1", params, [40], branch=False, **kw))
        r = statistics.median(t_branch) / statistics.median(t_indep)
        print(f"branch   8 params @ layer 40: {statistics.median(t_branch):.2f} / {statistics.median(t_indep):.2f} s"
              f" = {r:.3f}   goal <= 0.35 (limit 0.30); max |diff| {np.abs(fast - slow).max():.2e} (<= 1e-5)")

    if "batch" in a.only:
        from bendlab import audio
        from bendlab.video import Mapping, VideoSpec, render_frames
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "a.wav"
            import soundfile as sf
            sf.write(wav, audio.synth_piano()[: int(0.8 * 22050)], 22050)  # 16 frames at 20 fps
            times = {}
            for batch in (1, 8):
                spec = VideoSpec(audio=str(wav), mappings=[Mapping("rms", "rotate1", 40)], batch=batch)
                out = Path(tmp) / f"b{batch}.mp4"  # a fresh render folder each
                t0 = time.perf_counter()
                render_frames(spec, out, pipe=pipe, progress=False)
                times[batch] = time.perf_counter() - t0
            print(f"batch    16 frames: sequential {times[1]:.2f} s, batch of 8 {times[8]:.2f} s: throughput "
                  f"ratio {times[1] / times[8]:.2f}   goal >= 2")

    if "explorer" in a.only:
        from bendlab.widgets import explorer
        box = explorer(pipe, prompt="a gorgeous landscape", op="rotate1", param=0.5, layer=20, strip=True)
        moves = []
        for k in range(a.repeat):
            t0 = time.perf_counter()
            box.controls["param"].value = 1.0 + 0.37 * k  # a new value: nothing cached
            moves.append(time.perf_counter() - t0)
        t_strip = statistics.median(moves)
        box = explorer(pipe, prompt="a gorgeous landscape", op="rotate1", param=0.5, layer=20)
        moves = []
        for k in range(a.repeat):
            t0 = time.perf_counter()
            box.controls["param"].value = 3.0 + 0.29 * k  # values not rendered above
            moves.append(time.perf_counter() - t0)
        print(f"explorer slider move: {statistics.median(moves):.3f} s without the layer strip, {t_strip:.3f} s "
              "with it (median)   goal <= 1 s")


if __name__ == "__main__":
    sys.exit(main())
