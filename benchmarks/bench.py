"""bendlab benchmarks: every number is measured side by side in this one run and printed as a ratio or a time.

    python benchmarks/bench.py            # all, on the shipped model, 1 torch thread
    python benchmarks/bench.py --only render bend
    python benchmarks/bench.py --device cuda --only render bend branch   # the float16 CUDA path

render   one 50-step image with guidance 7.5 (seconds, median)          goal: <= 1 s on 1 CPU thread
bend     bent / unbent render time (add at layer 40)                    goal: <= 1.03
branch   8 parameter values at layer 40: branched / independent time  goal: <= 0.35 (limit 0.30), max |diff| <= 1e-5
vaesweep 8 values of a VAE bend (multiply on vae:decoder.up_blocks.1): one denoising + 8 decodes / 8 independent
         renders   goal <= 0.2
batch    video frames: batched throughput / sequential throughput      goal: >= 2
explorer a parameter move at layer 40 / a full render (cache miss)   goal: <= 0.35 and <= 0.3 s; back to a shown
         value with the layer strip on   goal: <= 0.1 s
prefix   40 fixed-noise frames, R1 at layer 40: shared / unshared render time  goal: <= 0.30 (UNet-call limit 0.22)
workers  40 sincos frames on 2 Ray workers / 1 worker (1 thread each): throughput ratio, goal >= 1.7, frames equal
startup  `bendlab video` of 40, 80 and 160 frames as a whole process: in-process, --workers 1, --workers 2 (local
         worker processes): seconds to the first frame and in all; 2 workers / 1 worker whole-process ratio
         goal > 1 at every length, >= 1.4 at 160; what the workers add before the first frame   goal <= 10 s
memory   peak RSS of the render process, 2000-frame render (2 steps) / 200-frame render   goal: <= 1.2
analysis audio analysis of a 60 s track / its render time (1200 frames at 20 fps)       goal: <= 2%
checks   check once, then run: a video batch (4 frames, 10 steps, a latent and an attention mapping) and a live frame
         (10 steps from layer 8) run through render_batch (checks and resolution on every call, as before) and
         through run_batch (checked once, as video and live now run): seconds per call and the share the checks took
live     `bendlab live` on the shipped piano (silent clock), 10 steps bent at layer 8, 8 s: achieved fps, audio-to-
         frame latency p50/p95, a live frame's cost / a full 50-step render   goal: >= 15 fps, p95 <= 150 ms,
         cost <= 0.06; with --live-fps 0 the loop runs unpaced (the most frames this machine can show)
cli      `bendlab --help`, `bendlab operators`, `bendlab targets` as whole processes, and `import torch` alone for
         scale: median seconds of --repeat runs   goal <= 1 s for each (none imports torch; targets reads the shipped
         model's table, bend_targets.json)

music    the shipped music model (bendlab-tiny-music; --music-model for another): seconds of audio generated per
         second of compute (50 steps, guidance 7), bent / unbent time (rotate1 at layer 40)   goal <= 1.03, and a
         sweep of 8 angles at layer 40 sharing its first 40 DiT evaluations / 8 independent renders

Real architectures with random weights (no download; benchmarks/archs.py holds their published configs):

    python benchmarks/bench.py --device cuda --arch sd14   # SD v1.4 at 512 px, float16, 50 steps
    python benchmarks/bench.py --device cuda --arch sdxl   # SDXL at 1024 px, float16, 50 steps
    python benchmarks/bench.py --arch sd14                 # CPU smoke: the same script at 64 px, 4 steps

    python benchmarks/bench.py --device cuda --arch stable-audio-open   # Stable Audio Open: 47.55 s stereo at 44.1 kHz

frame    one frame (median), frames/s batched and its ratio to one at a time, peak memory,
         bent/unbent, branched/independent (8 values at layer 40 of 50), and the UNet's FLOPs per step
         (counted by torch on the meta device) as achieved FLOP/s against the card's dense float16 peak

Video models, random weights (benchmarks/archs.py `VIDEO_ARCHS`): one window through bendlab's video code path
(AnimateDiff as `video.joint` renders a window, Wan and LTX-Video by `video.clip.render_clip`), plain and with a
latent bend per frame at every layer, interleaved:

    python benchmarks/bench.py --device cuda --arch animatediff-sd15  # 16 frames, 512 px, 50 steps, float16
    python benchmarks/bench.py --device cuda --arch wan-1.3b          # 33 frames, 480x832, 25 steps, bfloat16
    python benchmarks/bench.py --device cuda --arch ltx-video         # 121 frames, 512x768, 50 steps, bfloat16
    python benchmarks/bench.py --arch wan-1.3b                        # CPU smoke: 2 latent frames, 64 px, 2 steps

window   each render: seconds in all, in the denoiser (timed by CUDA events around its calls) and outside it (text
         encoding, VAE decode, copy to the host); frames/s (median render) at the steps run and, from the seconds
         per step, at 50; peak memory; bent/plain (multiply, one value per frame, or per latent frame where the VAE
         compresses time: `video.latent_frames.per_latent_frame`); the denoiser's FLOPs a step (torch's
         FlopCounterMode on one call with the window's own inputs) as FLOP/s achieved against the card's peak
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
    sys.path.insert(0, str(Path(__file__).parent))
    import archs
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (float32) or cuda (float16)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--only", nargs="*", default=["render", "bend", "branch", "vaesweep", "batch", "explorer", "prefix",
                                                  "workers", "memory", "analysis", "interpolate", "checks",
                                                  "live", "startup", "cli", "music", "methods"])
    ap.add_argument("--music-model", default=None, help="music: default the shipped bendlab-tiny-music")
    ap.add_argument("--motion-adapter", default=None, help="methods: a MotionAdapter folder (default: the shipped "
                    "model's)")
    ap.add_argument("--live-fps", type=float, default=20.0, help="live: the target frame rate (0: unpaced)")
    ap.add_argument("--arch", choices=[*archs.ARCHS, "stable-audio-open", *archs.VIDEO_ARCHS], help="a random-weight "
                    "pipeline with this model's exact architecture instead of --model (see below)")
    ap.add_argument("--size", type=int, help="--arch: image side in pixels (default: the model's native size on "
                    "CUDA, 64 on CPU; a video model's window: its height x width on CUDA)")
    ap.add_argument("--frames", type=int, help="--arch, a video model: frames in the window (default: its window on "
                    "CUDA, two latent frames on CPU)")
    ap.add_argument("--steps", type=int, help="--arch: denoising steps (default 50 on CUDA, 4 on CPU); methods: "
                    "default the model's usual")
    ap.add_argument("--batch", type=int, help="--arch: frames per batch (default 8 on CUDA, 2 on CPU)")
    ap.add_argument("--peak-tflops", type=float, help="--arch: the card's dense float16 peak, when its name is not "
                    "in benchmarks/archs.py")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.arch == "stable-audio-open":
        return music_benchmark(a, arch=True)
    if a.arch in archs.VIDEO_ARCHS:
        return video_arch_benchmark(a, archs.VIDEO_ARCHS[a.arch])
    if a.arch:
        return arch_benchmark(a)
    if "cli" in a.only:
        cli_benchmark(a.repeat)
    if "music" in a.only:
        music_benchmark(a)
    if set(a.only) <= {"cli", "music"}:
        return  # no image model to load
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

    if "vaesweep" in a.only:
        values = [0.5 + k * 0.25 for k in range(8)]
        kw = dict(pipe=pipe, output_type="np", target="vae:decoder.up_blocks.1")
        t_sweep = statistics.median(timed(lambda: render_grid("a gorgeous landscape", "multiply", values, [50],
                                                              **kw), 3))
        t_indep = statistics.median(timed(lambda: [render("a gorgeous landscape", [Bend(
            "multiply", v, None, target=kw["target"])], pipe=pipe) for v in values], 3))
        print(f"vaesweep 8 values of a VAE bend: {t_sweep:.2f} / {t_indep:.2f} s (8 independent renders) = "
              f"{t_sweep / t_indep:.3f}   goal <= 0.2")

    if "batch" in a.only:
        from bendlab import audio
        from bendlab.mapping import Mapping
        from bendlab.video import VideoSpec, render_frames
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
        from bendlab.ui.widgets import explorer
        full = statistics.median(timed(lambda: render("a gorgeous landscape", [Bend("rotate1", 0.3, 40)], pipe=pipe),
                                       3))
        box = explorer(pipe, prompt="a gorgeous landscape", op="rotate1", param=0.5, layer=40)
        moves = []
        for k in range(a.repeat):
            t0 = time.perf_counter()
            box.controls["param"].value = 1.0 + 0.37 * k  # a new value: nothing cached
            moves.append(time.perf_counter() - t0)
        move = statistics.median(moves)
        box = explorer(pipe, prompt="a gorgeous landscape", op="rotate1", param=0.5, layer=40, strip=True)
        t0 = time.perf_counter()
        box.controls["param"].value = 2.0  # a new value: the bent image and 7 strip panels
        t_strip = time.perf_counter() - t0
        t0 = time.perf_counter()
        box.controls["param"].value = 0.5  # back to a value already shown
        t_back = time.perf_counter() - t0
        print(f"explorer parameter move at layer 40: {move:.3f} s = {move / full:.3f} of a full render ({full:.3f} s)"
              f"   goal <= 0.35 and <= 0.3 s; with the strip {t_strip:.2f} s; back to a shown value (strip on) "
              f"{t_back:.3f} s   goal <= 0.1 s")

    if "interpolate" in a.only:
        interpolate_benchmark(pipe)

    if {"prefix", "workers", "memory", "analysis"} & set(a.only):
        video_benchmarks(a, pipe)

    if "checks" in a.only:
        checks_benchmark(a, pipe)

    if "live" in a.only:
        live_benchmark(a, pipe)

    if "startup" in a.only:
        startup_benchmark()

    if "methods" in a.only:
        methods_benchmark(a, pipe)


def methods_benchmark(a, pipe, seconds: float = 4.0, fps: float = 10.0) -> None:
    """The three ways to a video on the same song, prompt, mapping, seed and steps (`video.compare`), each rendered
    from scratch in one run: flicker (mean and 95th percentile of consecutive-frame differences), neighbour SSIM,
    seconds per frame; then the video method's p95 against method A's and its cost per frame against A's."""
    from bendlab import models
    from bendlab.mapping import Mapping
    from bendlab.ui.figures import METHODS_VIDEO, METHODS_WINDOW, PIANO_FILE
    from bendlab.video import VideoSpec, compare_methods
    v = METHODS_VIDEO
    steps = a.steps or models.usual_steps(a.model)
    spec = VideoSpec(audio=str(PIANO_FILE), prompts=[v["prompt"]], fps=fps, steps=steps,
                     model=a.model or models.DEFAULT_MODEL,
                     mappings=[Mapping(v["feature"], v["op"], None, v["low"], v["high"])])
    video_pipe = models.load_pipeline(a.model, a.device, motion_adapter=a.motion_adapter or
                                      models.default_motion_adapter(a.model))
    with tempfile.TemporaryDirectory() as tmp:
        runs = compare_methods(spec, tmp, frames=int(seconds * fps), window=METHODS_WINDOW[0],
                               overlap=METHODS_WINDOW[1], pipe=pipe, video_pipe=video_pipe)
    print(f"methods  \"{v['prompt']}\" on the piano, first {seconds:g} s at {fps:g} fps, {steps} steps, "
          f"{v['op']} <- {v['feature']}:")
    for r in runs.values():
        print(f"         {r.summary()}")
    a_run, video = runs["A: txt2img, walk"], runs["video: AnimateDiff"]
    print(f"methods  video p95 / A p95 = {video.p95:.2f} / {a_run.p95:.2f} = {video.p95 / a_run.p95:.2f}   goal "
          f"<= 0.5; cost per frame video / A = {video.seconds / a_run.seconds:.2f}")


def startup_benchmark(lengths=(40, 80, 160), fps: float = 20.0) -> None:
    """Three whole `bendlab video` processes on the same clip, one after the other, at each length: what a user
    waits for. `--workers 2` on a CPU is this process plus one spawned worker process (`video/processes.py`)."""
    import os
    import subprocess
    for frames in lengths:
        with tempfile.TemporaryDirectory() as tmp:
            wav = _clip(Path(tmp), frames / fps)
            runs = {}
            for label, extra in (("in-process", ["--threads", "1"]), ("1 worker", ["--workers", "1"]),
                                 ("2 workers", ["--workers", "2"])):
                out = Path(tmp) / f"{label.replace(' ', '-')}.mp4"
                frames_dir = out.with_suffix(".frames")
                t0 = time.perf_counter()
                proc = subprocess.Popen([sys.executable, "-m", "bendlab.ui.cli", "video", str(wav), "--op",
                                         "rotate1", "--fps", str(fps), "--out", str(out), *extra],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        env={**os.environ, "OMP_NUM_THREADS": "1"})
                first = None
                while proc.poll() is None:
                    if first is None and frames_dir.is_dir() and any(frames_dir.glob("*.png")):
                        first = time.perf_counter() - t0
                    time.sleep(0.05)
                if proc.returncode:
                    raise SystemExit(f"startup: bendlab video {' '.join(extra)} failed ({proc.returncode})")
                runs[label] = (first, time.perf_counter() - t0)
            line = ", ".join(f"{k} first frame {f:.1f} s, all {t:.1f} s" for k, (f, t) in runs.items())
            print(f"startup  {frames} frames: {line}; whole process 2 workers / 1: "
                  f"{runs['1 worker'][1] / runs['2 workers'][1]:.2f}   goal > 1 at every length, >= 1.4 at 160; "
                  f"workers before the first frame +{runs['2 workers'][0] - runs['in-process'][0]:.1f} s   "
                  "goal <= 10 s", flush=True)


def cli_benchmark(repeat: int) -> None:
    """Whole `bendlab` processes that only print: what a user waits for before the help or a table appears."""
    import os
    import subprocess
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {"import torch": ["-c", "import torch"]}  # for scale: what any command that imports torch pays
    runs.update({f"bendlab {c}": ["-m", "bendlab.ui.cli", c] for c in ("--help", "operators", "targets")})
    for label, argv in runs.items():
        cmd = [sys.executable, *argv]
        times = timed(lambda cmd=cmd: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env), repeat)
        goal = "" if label == "import torch" else "   goal <= 1 s"
        print(f"cli      {label:17s} median {statistics.median(times):.2f} s (min {min(times):.2f}){goal}", flush=True)


def interpolate_benchmark(pipe, seconds: float = 4.0, fps: float = 10.0, out_fps: float = 40.0) -> None:
    """The two ways `--interpolate` fills a 4x higher rate, side by side on the same rendered frames (txt2img and
    the img2img chain with lab colour coherence): the flicker of the mp4's own frames (mean, 95th percentile and
    max of consecutive differences, 8-bit levels) and the seconds each adds after the render."""
    import os

    from bendlab.video import consecutive_diffs, mp4_frames
    from bendlab.mapping import Mapping
    from bendlab.video import VideoSpec, make_video
    with tempfile.TemporaryDirectory() as tmp:
        wav = _clip(Path(tmp), seconds)
        for name, kw in (("txt2img", dict(mappings=[Mapping("rms", "rotate1", 40)])),
                         ("img2img", dict(method="img2img", color_coherence="lab", strength=0.5, steps=20,
                                          mappings=[Mapping("rms", "rotate1", 5)]))):
            spec, out = VideoSpec(audio=str(wav), fps=fps, **kw), Path(tmp) / f"{name}.mp4"
            make_video(spec, out, pipe=pipe, upscale=1, progress=False)
            # none: each rendered frame shown out_fps / fps times, what the screen shows without interpolation
            rows = {"none": consecutive_diffs(np.repeat(np.stack(mp4_frames(out)), round(out_fps / fps), axis=0))}
            secs = {}
            for method in ("minterpolate", "latent"):
                t0 = time.perf_counter()
                make_video(spec, out, pipe=pipe, upscale=1, interpolate=out_fps, interpolate_method=method,
                           progress=False)
                secs[method] = time.perf_counter() - t0
                rows[method] = consecutive_diffs(mp4_frames(out))
                os.replace(out, out.with_name(f"{name}-{method}.mp4"))
            line = "; ".join(f"{k} mean {d.mean():.2f} p95 {np.percentile(d, 95):.2f} max {d.max():.2f}"
                             + (f" ({secs[k]:.1f} s)" if k in secs else "") for k, d in rows.items())
            print(f"interpolate {name} {int(seconds * fps)} frames at {fps:g} -> {out_fps:g} fps, flicker of the "
                  f"mp4 (levels): {line}")


def checks_benchmark(a, pipe) -> None:
    """Per call: render_batch (as video and live called it before: settings, bends and model resolved and checked
    every batch or frame) against run_batch (what they call now, having checked once), side by side, interleaved."""
    from bendlab import Bend
    from bendlab.bend import (as_bends, attention_modules, check_bends, check_settings, encode_prompts, initial_noise,
                              render_batch, run_batch, shared_prefix)
    from bendlab.models import Model
    attn = next(n for n, m in attention_modules(pipe.unet) if m.is_cross_attention)
    cases = {}
    x = initial_noise(pipe, 46, 4)
    e4 = encode_prompts(pipe, ["3D mesh geometry"] * 4)
    batch = [Bend("rotate1", torch.linspace(0, 3, 4, dtype=torch.float64), 8),
             Bend("multiply", torch.linspace(0.5, 2, 4, dtype=torch.float64), (0, 9), target=f"attn:{attn}")]
    cases["video batch (4 frames, 10 steps)"] = (batch, e4, x, 0, 4)
    e1 = encode_prompts(pipe, ["3D mesh geometry"])
    prefix = shared_prefix(pipe, e1, initial_noise(pipe, 46), [8], steps=10, guidance=7.5)[8]
    cases["live frame (10 steps from layer 8)"] = ([Bend("rotate1", 1.0, 8)], e1, prefix, 8, 1)
    for name, (bends, embeds, latents, start, n) in cases.items():
        before, after = [], []
        kw = dict(steps=10, guidance=7.5, start=start, prompts=["3D mesh geometry"] * n)
        for _ in range(a.repeat):  # interleaved
            before += timed(lambda b=bends, e=embeds, x=latents, k=kw: render_batch(pipe, b, embeds=e,
                                                                                     latents=x.clone(), **k), 1)
            after += timed(lambda b=bends, e=embeds, x=latents, k=kw: run_batch(pipe, b, e, x.clone(), **k), 1)
        b, f = statistics.median(before), statistics.median(after)
        # the checks alone, as render_batch ran them on every call (timed on their own: a few ms vanish in a
        # render's noise)
        shape = tuple(latents.shape)
        alone = statistics.median(timed(lambda b=bends, s=shape: (
            Model.of(pipe=pipe).usual(10, 7.5), check_settings(10, 7.5), check_bends(pipe, as_bends(b), 10, s)), 50))
        print(f"checks   {name}: checked every call {b * 1000:.1f} ms, checked once {f * 1000:.1f} ms; the checks "
              f"alone {alone * 1000:.2f} ms a call = {alone / f:.1%} of it")


def live_benchmark(a, pipe, seconds: float = 8.0) -> None:
    """The live loop as `bendlab live --play` runs it, and a full render measured beside it."""
    from bendlab import Bend, render
    from bendlab.live import Player
    from bendlab.live import Live, LiveSpec
    from bendlab.mapping import Mapping
    piano = Path(__file__).resolve().parents[1] / "bendlab" / "data" / "piano.ogg"
    costs = []

    class Timed(Live):
        def frame(self):
            t0 = time.perf_counter()
            out = super().frame()
            costs.append(time.perf_counter() - t0)
            return out

    fps = a.live_fps or 240.0  # 0: as fast as it goes (240 fps is bendlab's ceiling)
    spec = LiveSpec(mappings=[Mapping("rms", "rotate1", 8)], fps=fps)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the silent clock's notice
        live = Timed(spec, Player(piano, spec.sr, device="none"), pipe=pipe, status=False)
        live.run(seconds=seconds)
    st = live.stats
    full = statistics.median(timed(lambda: render("3D mesh geometry", [Bend("rotate1", 1.0, 40)], pipe=pipe), 3))
    cost = statistics.median(costs)
    print(f"live     {live.spec.steps} steps, R1 at layer {live.spec.mappings[0].layer}, target {a.live_fps:g} fps: "
          f"{st.frames / st.elapsed:.1f} fps over {st.elapsed:.1f} s ({st.dropped} dropped), latency p50 "
          f"{st.latency(50) * 1000:.0f} ms p95 {st.latency(95) * 1000:.0f} ms; a frame {cost * 1000:.1f} ms = "
          f"{cost / full:.3f} of a 50-step render ({full:.3f} s)   goal >= 15 fps, p95 <= 150 ms, <= 0.06")


def arch_benchmark(a) -> None:
    """A real architecture with random weights: frame time, batched throughput, memory, bending overheads and
    the UNet's achieved FLOP/s against the card's peak."""
    import resource

    import archs

    from bendlab import Bend, load_pipeline, render, render_grid
    from bendlab.bend import encode_prompts, initial_noise, render_batch
    from bendlab.models import quiet_loading
    cuda = a.device.startswith("cuda")
    size = a.size or (archs.ARCHS[a.arch]["size"] if cuda else 64)
    steps = a.steps or (50 if cuda else 4)
    batch = a.batch or (8 if cuda else 2)
    repeat = a.repeat if cuda else 2
    dtype = torch.float16 if cuda else torch.float32
    t0 = time.perf_counter()
    with quiet_loading():
        pipe = archs.build(a.arch, a.device, dtype, load_pipeline(device="cpu").tokenizer)
    params = sum(p.numel() for p in pipe.unet.parameters())
    where = torch.cuda.get_device_name() if cuda else f"cpu, {a.threads} thread(s)"
    print(f"arch {a.arch} (random weights, UNet {params / 1e6:.1f}M params), {size}x{size} px, {steps} steps, "
          f"{where}, {dtype}, torch {torch.__version__}; built in {time.perf_counter() - t0:.1f} s")
    kw = dict(pipe=pipe, steps=steps, height=size, width=size, output_type="np")
    layer = round(0.8 * steps)  # the paper's layer 40 of 50
    render("warm up", **kw)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    plain, bent = [], []
    for _ in range(repeat):  # interleaved, so drift in machine load hits both alike
        plain += timed(lambda: render("a floating orb", **kw), 1)
        bent += timed(lambda: render("a floating orb", [Bend("add", 1.0, layer)], **kw), 1)
    one, b = statistics.median(plain), statistics.median(bent)
    mem_one = torch.cuda.max_memory_allocated() / 2**30 if cuda else None
    embeds = encode_prompts(pipe, ["a floating orb"]).expand(batch)
    latents = initial_noise(pipe, 46, batch, size, size)

    t_batch = statistics.median(timed(lambda: render_batch(pipe, embeds=embeds, latents=latents.clone(), steps=steps,
                                                           output_type="np"), repeat))  # np: waits for the GPU
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    mem = torch.cuda.max_memory_allocated() / 2**30 if cuda else rss
    values = [k * 2 * math.pi / 8 for k in range(8)]
    t_branch = timed(lambda: render_grid("a landscape", "rotate1", values, [layer], **kw), 1)[0]
    t_indep = timed(lambda: render_grid("a landscape", "rotate1", values, [layer], branch=False, **kw), 1)[0]
    print(f"frame    {steps} steps: median {one:.3f} s (min {min(plain):.3f}); batch of {batch}: "
          f"{batch / t_batch:.2f} frames/s = {one * batch / t_batch:.2f}x one at a time")
    print(f"memory   peak {'GPU allocated' if cuda else 'RSS (incl. building)'}: {mem:.2f} GiB"
          + (f" (one frame {mem_one:.2f} GiB)" if cuda else ""))
    print(f"bend     bent/unbent: {b:.3f} / {one:.3f} s = {b / one:.3f}   goal <= 1.03")
    print(f"branch   8 values @ layer {layer}: branched {t_branch:.2f} / independent {t_indep:.2f} s = "
          f"{t_branch / t_indep:.3f}   (UNet-call limit {(steps - layer) / steps:.2f})")
    flops = archs.unet_flops(a.arch, size, batch=2)  # guidance 7.5: each step evaluates two latents
    achieved = flops * steps / one
    peak = a.peak_tflops * 1e12 if a.peak_tflops else (archs.card_peak(where) if cuda else None)
    print(f"flops    UNet {flops / 1e12:.3f} TFLOP per step (batch 2, CFG) x {steps} = {flops * steps / 1e12:.2f} "
          f"TFLOP per frame: {achieved / 1e12:.2f} TFLOP/s in the median frame"
          + (f" = {100 * achieved / peak:.1f}% of the card's {peak / 1e12:.0f} TFLOP/s dense fp16 peak" if peak
             else ("; card peak unknown (give --peak-tflops)" if cuda else "")))


class DenoiserClock:
    """The denoiser's share of a render, timed from the start of its first call to the end of its last (a forward
    pre-hook and a forward hook, removed on exit): on CUDA by events recorded in the stream, so nothing waits inside
    the loop; on a CPU by the clock. Keeps the number of calls and the first call's inputs (to count its FLOPs)."""

    def __init__(self, denoiser, cuda: bool):
        self.denoiser, self.cuda = denoiser, cuda
        self.calls, self.first, self.start, self.end = 0, None, None, None

    def _now(self):
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def _pre(self, module, args, kwargs):
        if self.first is None:
            self.first, self.start = (args, kwargs), self._now()
        self.calls += 1

    def _post(self, module, args, output):
        self.end = self._now()

    def __enter__(self):
        self._hooks = [self.denoiser.register_forward_pre_hook(self._pre, with_kwargs=True),
                       self.denoiser.register_forward_hook(self._post)]
        return self

    def __exit__(self, *exc):
        for h in self._hooks:
            h.remove()

    def seconds(self) -> float:
        if not self.cuda:
            return self.end - self.start
        torch.cuda.synchronize()
        return self.start.elapsed_time(self.end) / 1000


class VideoWindow:
    """One window of a video pipeline through bendlab's code path, prepared once (prompt, noise, bends checked),
    then rendered: AnimateDiff as `video.joint` renders a window (the clip's noise frame by frame, `ClipNoise`; the
    stock pipeline call with the bends installed, `run_batch`; decoded by the pipeline), Wan and LTX-Video by
    `video.clip.render_clip`. `bends(steps)`: a latent bend per frame at every layer 0..steps, multiply by 1 to
    1.05 along the window (one value per latent frame where the VAE compresses time, the mean over the frames each
    holds: `video.latent_frames.per_latent_frame`), the most a latent bend asks of the loop."""

    prompt, seed = "a floating orb", 46

    def __init__(self, pipe, frames: int, height: int, width: int):
        from bendlab.bend import encode_prompts, latent_shape
        from bendlab.models import Model
        from bendlab.models.family import ANIMATEDIFF, family_of
        from bendlab.video.joint import ClipNoise
        from bendlab.video.latent_frames import check_frames, per_latent_frame
        self.pipe, self.frames, self.height, self.width = pipe, frames, height, width
        fam = family_of(pipe)
        self.joint, self.layout = fam is ANIMATEDIFF, fam.layout
        self.denoiser = fam.denoiser_of(pipe)
        curve = np.linspace(1.0, 1.05, frames)
        if self.joint:  # the model's usual guidance, as a video plan resolves it (DDIM: 7.5)
            self.guidance = Model.of(pipe=pipe).usual(None, None)[1]
            self.embeds = encode_prompts(pipe, [self.prompt])
            shape = latent_shape(pipe, 1, height, width)[1:]
            self.noise = ClipNoise(self.seed, shape).frames(0, frames).to(pipe.device, self.denoiser.dtype)
            self.values, self.rows = curve, frames
        else:
            r = fam.temporal_ratio_of(pipe)
            self.rows = check_frames(frames, r)
            self.values = per_latent_frame(curve, r)

    def bends(self, steps: int) -> list:
        from bendlab.bend import Bend
        from bendlab.bend.fit import check_bends
        bends = [Bend("multiply", torch.tensor(self.values, dtype=torch.float64), (0, steps))]
        if self.joint:  # run_batch runs what was checked once, against the per-frame view (render_clip checks its
            check_bends(self.pipe, bends, steps, tuple(self.layout.canonical(self.noise).shape))  # clip on each call)
        return bends

    def render(self, bends, steps: int) -> np.ndarray:
        """The window's (F, H, W, 3) frames in 0..1."""
        from bendlab.bend.render import run_batch
        from bendlab.video.clip import render_clip
        if self.joint:
            return run_batch(self.pipe, bends, self.embeds, self.noise.clone(), steps=steps, guidance=self.guidance,
                             prompts=[self.prompt], output_type="np", seed=self.seed)
        return render_clip(self.pipe, bends, prompt=self.prompt, n_frames=self.frames, height=self.height,
                           width=self.width, steps=steps, seed=self.seed, output_type="np")


def video_arch_benchmark(a, arch) -> None:
    """A video model's architecture with random weights (`archs.VideoArch`): one window, plain and with a latent bend
    per frame, interleaved `--repeat` times after a two-step warm-up; each render's seconds, then frames/s, seconds
    per step, peak memory, bent/plain and the denoiser's FLOP/s. On a CPU: two latent frames at 64 px, 2 steps."""
    import resource

    import archs
    from torch.utils.flop_counter import FlopCounterMode

    from bendlab import load_pipeline
    from bendlab.models import quiet_loading
    cuda = a.device.startswith("cuda")
    dtype = arch.dtype if cuda else torch.float32
    frames = a.frames or (arch.frames if cuda else arch.tiny_frames)
    height, width = (a.size, a.size) if a.size else ((arch.height, arch.width) if cuda else (64, 64))
    steps = a.steps or (arch.steps if cuda else 2)
    repeat = a.repeat if cuda else 1
    t0 = time.perf_counter()
    with quiet_loading():
        tokenizer = load_pipeline(device="cpu").tokenizer if arch is archs.ANIMATEDIFF_SD15 else None
        pipe = archs.build_video(arch, a.device, dtype, tokenizer)
    built = time.perf_counter() - t0
    weights = torch.cuda.memory_allocated() / 2**30 if cuda else None
    where = torch.cuda.get_device_name() if cuda else f"cpu, {a.threads} thread(s)"
    window = VideoWindow(pipe, frames, height, width)
    denoiser = window.denoiser
    n = sum(p.numel() for p in denoiser.parameters())
    print(f"arch {arch.name}: {arch.title}, random weights ({type(denoiser).__name__} {n / 1e6:.1f}M params, "
          f"{arch.counted} {arch.params / 1e6:.1f}M as published), {frames} frames at {height}x{width}, {steps} steps, "
          f"{where}, {dtype}{f' (VAE {arch.vae_dtype})' if arch.vae_dtype and cuda else ''}, torch {torch.__version__};"
          f" built in {built:.1f} s" + (f", weights {weights:.2f} GiB" if cuda else ""))

    with DenoiserClock(denoiser, cuda) as warm:  # kernels, and the window's own inputs to count FLOPs with
        t0 = time.perf_counter()
        window.render([], 2)  # 2 steps: LTX-Video's schedule (shift_terminal) is undefined for one
        calls = warm.calls // 2
        print(f"warm-up  2 steps and the decode: {time.perf_counter() - t0:.2f} s, {calls} denoiser call(s) a step")
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        denoiser(*warm.first[0], **warm.first[1])
    step_flops = counter.get_total_flops() * calls
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    bends = window.bends(steps)
    outside_it = "VAE decode, to the host" if window.joint else "the prompt's encoding, VAE decode, to the host"
    runs = {"plain": [], "bent": []}
    finite, last = {}, {}
    for _ in range(repeat):  # interleaved, so drift in the machine's speed hits both alike
        for label, b in (("plain", []), ("bent", bends)):
            with DenoiserClock(denoiser, cuda) as clock:
                t0 = time.perf_counter()
                out = window.render(b, steps)  # frames on the host: the GPU's work is done
                total = time.perf_counter() - t0
            inside = clock.seconds()
            runs[label].append((total, inside))
            finite[label], last[label] = bool(np.isfinite(out).all()) and finite.get(label, True), out
            print(f"{label:8} {total:.2f} s: denoiser {inside:.2f} s ({inside / steps:.3f} s/step), outside it "
                  f"{total - inside:.2f} s ({outside_it})")
    mem = torch.cuda.max_memory_allocated() / 2**30 if cuda else resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 2**20
    plain = statistics.median(t for t, _ in runs["plain"])
    bent = statistics.median(t for t, _ in runs["bent"])
    per_step = statistics.median(d for _, d in runs["plain"]) / steps
    outside = statistics.median(t - d for t, d in runs["plain"])
    at50 = "" if steps == 50 else (f"; at 50 steps {frames / (outside + 50 * per_step):.2f} frames/s (from the "
                                   "seconds per step)")
    print(f"frames   {frames} frames in {plain:.2f} s (median of {repeat}) = {frames / plain:.2f} frames/s at {steps} "
          f"steps{at50}; {per_step:.3f} s/step, {outside:.2f} s outside the denoiser")
    print(f"memory   peak {'GPU allocated' if cuda else 'RSS (incl. building)'}: {mem:.2f} GiB"
          + (f" (weights {weights:.2f} GiB)" if cuda else ""))
    print(f"bend     multiply per {'frame' if window.joint else 'latent frame'} ({window.rows} values) at every layer: "
          f"bent/plain {bent:.2f} / {plain:.2f} s = {bent / plain:.3f}   goal <= 1.03; frames finite: plain "
          f"{finite['plain']}, bent {finite['bent']}; the bend changed them by up to "
          f"{np.nanmax(np.abs(last['bent'] - last['plain'])):.3f}")
    achieved = step_flops / per_step
    peak = a.peak_tflops * 1e12 if a.peak_tflops else (archs.card_peak(where) if cuda else None)
    print(f"flops    {type(denoiser).__name__} {step_flops / 1e12:.2f} TFLOP a step ({calls} call(s)) x {steps}: "
          f"{achieved / 1e12:.2f} TFLOP/s in the denoiser"
          + (f" = {100 * achieved / peak:.1f}% of the card's {peak / 1e12:.0f} TFLOP/s dense 16-bit peak" if peak
             else ("; card peak unknown (give --peak-tflops)" if cuda else " (CPU: attention not counted)")))


def music_benchmark(a, arch: bool = False) -> None:
    """Seconds of audio per second of compute and a bend's overhead on a music model: the shipped one, or (arch)
    Stable Audio Open's architecture with random weights (its whole 47.55 s; 50 steps on CUDA, 2 on a CPU)."""
    from bendlab import Bend
    from bendlab.music import MusicConfig, load_music_pipeline, render_music
    cuda = a.device.startswith("cuda")
    if arch:
        import archs
        from bendlab.models import quiet_loading
        with quiet_loading():
            pipe = archs.build_stable_audio(a.device, torch.float16 if cuda else torch.float32)
        steps, repeat = (a.steps or 50, a.repeat) if cuda else (a.steps or 2, 1)
        name = "stable-audio-open (random weights)"
    else:
        pipe = load_music_pipeline(a.music_model, device=a.device)
        steps, repeat, name = a.steps or 50, a.repeat, a.music_model or "bendlab-tiny-music"
    config = MusicConfig.of(pipe)
    seconds = config.max_seconds
    layer = round(0.8 * steps)
    where = torch.cuda.get_device_name() if cuda else f"cpu, {a.threads} thread(s)"
    dit = sum(p.numel() for p in pipe.transformer.parameters())
    print(f"music    {name}: DiT {dit / 1e6:.1f}M params, {config.sampling_rate} Hz, {seconds:.2f} s per render, "
          f"{steps} steps, {where}")
    kw = dict(pipe=pipe, seconds=seconds, steps=steps)
    render_music("warm up", **{**kw, "steps": 2})
    plain, bent = [], []
    for _ in range(repeat):  # interleaved, so drift in machine load hits both alike
        plain += timed(lambda: render_music("a slow piano phrase", **kw), 1)
        bent += timed(lambda: render_music("a slow piano phrase", Bend("rotate1", 3.14, layer), **kw), 1)
    one, b = statistics.median(plain), statistics.median(bent)
    print(f"music    render median {one:.3f} s (min {min(plain):.3f}): {seconds / one:.2f} s of audio per second")
    print(f"music    bent/unbent (rotate1 @{layer}): {b:.3f} / {one:.3f} s = {b / one:.3f}   goal <= 1.03")
    from bendlab.music import render_music_grid
    sweep = [Bend("rotate1", 2 * math.pi * k / 8, layer) for k in range(8)]
    t_share = timed(lambda: render_music_grid("a slow piano phrase", sweep, **kw), 1)[0]
    t_alone = timed(lambda: render_music_grid("a slow piano phrase", sweep, share=False, **kw), 1)[0]
    print(f"music    8 angles @{layer}: shared {t_share:.2f} / independent {t_alone:.2f} s = {t_share / t_alone:.3f}   "
          f"(DiT-call limit {(steps + 7 * (steps - layer)) / (8 * steps):.2f}; the VAE decodes all 8)")


def _clip(folder: Path, seconds: float) -> Path:
    import soundfile as sf

    from bendlab import audio
    wav = folder / f"clip{seconds:g}.wav"
    y = audio.synth_piano(tail=seconds)[: int(seconds * 22050)]
    sf.write(wav, np.pad(y, (0, max(0, int(seconds * 22050) - len(y)))), 22050)
    return wav


def video_benchmarks(a, pipe) -> None:
    from bendlab.video import FrameRenderer, aligned_batches
    from bendlab.mapping import Mapping
    from bendlab.video import VideoSpec, plan
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wav = _clip(tmp, 2.0)  # 40 frames at 20 fps
        if "prefix" in a.only:
            spec = VideoSpec(audio=str(wav), walk="none", mappings=[Mapping("rms", "rotate1", 40)])
            p = plan(spec)
            batches = aligned_batches(list(range(40)), spec.batch, 40)
            times = {}
            def video(share):  # one renderer per video, as render_frames: its prefix is computed in the timing
                r = FrameRenderer(p, pipe, share)
                return [r.render(b, "np") for b in batches]
            for share in (True, False):
                times[share] = timed(lambda s=share: video(s), 1)[0]
            print(f"prefix   40 frames, R1 @ layer 40: shared {times[True]:.2f} s / unshared {times[False]:.2f} s = "
                  f"{times[True] / times[False]:.3f}   goal <= 0.30 (UNet-call limit 0.22)")
        if "workers" in a.only:
            from bendlab.video import cluster
            # batches of 4: 10 batches share out evenly over 2 workers (5 batches of 8 cannot: limit 5/3 = 1.67)
            spec = VideoSpec(audio=str(wav), mappings=[Mapping("rms", "rotate1", 40)], batch=4)
            p = plan(spec)
            batches = aligned_batches(list(range(40)), spec.batch, 40)
            got, rate = {}, {}
            for n in (1, 2):
                pool = cluster.Pool(p, workers=n, threads=1)  # started (models loaded) before timing
                t0 = time.perf_counter()
                got[n] = dict(pool.render(batches))
                rate[n] = 40 / (time.perf_counter() - t0)
                pool.close()
            cluster.shutdown()
            print(f"workers  40 frames, batch 4: 1 worker {rate[1]:.2f}, 2 workers {rate[2]:.2f} frames/s: ratio "
                  f"{rate[2] / rate[1]:.2f}   goal >= 1.7; frames byte-identical: {got[1] == got[2]}")
        if "memory" in a.only:
            import subprocess
            code = ("import resource, sys, torch\ntorch.set_num_threads(1)\n"
                    "from bendlab.mapping import Mapping\nfrom bendlab.video import VideoSpec, render_frames\n"
                    "spec = VideoSpec(audio=sys.argv[1], steps=2, mappings=[Mapping('rms', 'rotate1', 1)])\n"
                    "render_frames(spec, sys.argv[2], progress=False)\n"
                    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n")
            peak = {}
            for frames in (200, 2000):
                wav = _clip(tmp, frames / 20)
                r = subprocess.run([sys.executable, "-c", code, str(wav), str(tmp / f"m{frames}.mp4")],
                                   capture_output=True, text=True, check=True)
                peak[frames] = int(r.stdout.split()[-1]) / 1024
            print(f"memory   peak RSS: 2000 frames {peak[2000]:.0f} MB / 200 frames {peak[200]:.0f} MB = "
                  f"{peak[2000] / peak[200]:.3f}   goal <= 1.2")

        if "analysis" in a.only:
            analysis_benchmark(tmp, pipe)


def analysis_benchmark(tmp: Path, pipe) -> None:
    """Audio analysis of a 60 s track (the paper's rms mapping, then four musical mappings: HPSS sources, beats,
    PCA) against the render time of its 1200 frames (per-frame time of 16 frames, batches of 8, x 1200)."""
    import soundfile as sf

    from bendlab import audio
    from bendlab.mapping import Mapping
    from bendlab.video import VideoSpec, plan, render_frames
    phrase = audio.synth_piano(sr=audio.DEFAULT_SR, tail=0.5)
    wav = tmp / "song60.wav"
    sf.write(wav, np.tile(phrase, math.ceil(60 * audio.DEFAULT_SR / len(phrase)))[: 60 * audio.DEFAULT_SR],
             audio.DEFAULT_SR)
    musical = [Mapping("rms@percussive", "add", 45), Mapping("centroid@harmonic", "rotate2", 40, 0, 1),
               Mapping("lfo:0.25", "rotate1", 40), Mapping("pca:1", "multiply", 48, 1, 1.5)]
    t_plain = timed(lambda: plan(VideoSpec(audio=str(wav))), 1)[0]
    t_music = timed(lambda: plan(VideoSpec(audio=str(wav), mappings=musical)), 1)[0]
    spec = VideoSpec(audio=str(wav))
    t16 = timed(lambda: render_frames(spec, tmp / "r16.mp4", pipe=pipe, limit=16, progress=False, overwrite=True),
                1)[0]
    render = (t16 - t_plain) / 16 * 1200  # render_frames analyses the track first: not render time
    print(f"analysis 60 s track: rms mapping {t_plain:.2f} s, four musical mappings {t_music:.2f} s; render "
          f"~{render:.0f} s (1200 frames): {100 * t_plain / render:.2f}% / {100 * t_music / render:.2f}%   "
          "goal <= 2%")


if __name__ == "__main__":
    sys.exit(main())
