"""Live sessions (issue 19, part 3): the session folder written and read back, a kill at any moment, and the
re-render `bendlab video --session DIR` through the same path as every video (plan -> FrameRenderer -> render
folder -> mux), frame by frame against the same bends rendered directly."""

import json
import math
import random
import signal
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bendlab import audio
from bendlab.bend import Bend
from bendlab.ui.cli import main
from bendlab.bend import latent_shape, render_batch
from bendlab.video import frames_dir
from bendlab.mapping import Mapping
from bendlab.session import SessionWriter, fit_layers, read_session
from bendlab.video import make_video, plan, video_info
from bendlab.video import session_spec
from conftest import CLIP_STEPS, assert_frames_close, frame_path

SR = 22050
LIVE_FPS = 8  # frames shown live; the re-render runs at another rate
PROMPTS = ["a floating orb", "mice"]


def meta(**kw) -> dict:
    return {"model": None, "steps": CLIP_STEPS, "guidance": None, "seed": 46, "fps": LIVE_FPS, "sr": SR,
            "prompts": PROMPTS[:1], "mappings": [Mapping("rms", "rotate1", 3, 0, math.pi)], "bpm": 120.0, **kw}


def perform(folder, seconds: float = 1.5, switch: float = 0.75, layer_change: float = 1.0) -> Path:
    """A performance as the live loop records it: the piano in 1/LIVE_FPS s blocks, after each block one row
    (the parameter a ramp with a wobble, the prompt switched at `switch` s, the layer 3 then 2)."""
    y = audio.synth_piano([(0.0, 60, 1.0, 0.6), (0.7, 67, 0.8, 0.6)], sr=SR, tail=0.5)[: int(seconds * SR)]
    block = SR // LIVE_FPS
    with SessionWriter(folder, meta()) as w:
        w.event({"time": 0.0, "kind": "start"})
        for k in range(0, len(y), block):
            w.audio(y[k:k + block])
            t = w.seconds
            if t >= switch and len(w.meta["prompts"]) == 1:
                w.prompts(PROMPTS)
                w.event({"time": t, "kind": "prompt", "index": 1, "text": PROMPTS[1]})
            w.row(t, int(t >= switch), [(t * 2 + 0.3 * math.sin(9 * t), 0, math.pi, 3 if t < layer_change else 2)])
        w.event({"time": w.seconds, "kind": "stop"})
    return Path(folder)


def test_writer_and_reader_round_trip(tmp_path):
    folder = tmp_path / "s"
    y = (0.5 * np.sin(np.arange(SR) / 7)).astype(np.float32)
    w = SessionWriter(folder, meta(take=3))
    assert json.loads((folder / "session.json").read_text())["prompts"] == PROMPTS[:1]
    w.audio(y[:1000])
    w.row(w.seconds, 0, [(0.25, 0.0, 1.0, 3)])
    w.audio(np.r_[y[1000:], 2.0, -3.0][:, None])  # (n, 1) and out-of-range samples: clipped
    w.prompts(PROMPTS)
    w.row(w.seconds, 1, [(0.75, 0.5, 1.5, 2)])
    w.event({"time": w.seconds, "kind": "osc", "address": "/bendlab/prompt", "args": ["mice"]})
    with pytest.raises(ValueError, match="goes back"):
        w.row(0.01, 0, [(0.0, 0.0, 1.0, 3)])
    with pytest.raises(ValueError, match="do not extend"):
        w.prompts(["other"])
    w.close()
    w.close()  # idempotent
    s = read_session(folder)
    assert s.meta["version"] == 1 and s.meta["take"] == 3 and s.meta["prompts"] == PROMPTS and "started" in s.meta
    assert s.meta["mappings"][0]["op"] == "rotate1" and s.meta["mappings"][0]["layer"] == 3
    np.testing.assert_array_equal(s.times, [1000 / SR, (SR + 2) / SR])
    np.testing.assert_array_equal(s.prompt, [0, 1])
    np.testing.assert_array_equal(s.params, [[0.25, 0.75]])
    np.testing.assert_array_equal(s.lows, [[0.0, 0.5]])
    np.testing.assert_array_equal(s.highs, [[1.0, 1.5]])
    np.testing.assert_array_equal(s.layers, [[3, 2]])
    assert s.events == [{"time": (SR + 2) / SR, "kind": "osc", "address": "/bendlab/prompt", "args": ["mice"]}]
    assert s.duration == (SR + 2) / SR and s.audio == folder / "audio.wav"
    with wave.open(str(s.audio)) as f:
        pcm = np.frombuffer(f.readframes(f.getnframes()), "<i2")
    np.testing.assert_array_equal(pcm, np.round(np.clip(np.r_[y, 2.0, -3.0], -1, 1) * 32767).astype(np.int16))
    # sampled as plan samples it: parameters interpolated, prompt and layer held
    params, prompt, layers = s.at([0.0, (1000 / SR + s.times[1]) / 2, s.times[1], 5.0])
    np.testing.assert_allclose(params, [[0.25, 0.5, 0.75, 0.75]])
    np.testing.assert_array_equal(prompt, [0, 0, 1, 1])  # a row holds from its own time on
    np.testing.assert_array_equal(layers, [[3, 3, 2, 2]])


def test_a_partial_last_line_is_dropped_and_the_wav_header_counts(tmp_path):
    """What a kill mid-write leaves: half a CSV row, half a JSON line, samples the header does not count yet."""
    folder = perform(tmp_path / "s", seconds=0.5)
    whole = read_session(folder)
    with open(folder / "automation.csv", "a") as f:
        f.write("0.9,1,0.3")
    with open(folder / "events.jsonl", "a") as f:
        f.write('{"time": 0.9, "ki')
    with open(folder / "audio.wav", "ab") as f:
        f.write(b"\x01\x02" * 100)
    s = read_session(folder)
    assert s.rows == whole.rows and s.events == whole.events and s.duration == whole.duration


KILLED = """
import math, sys, time
import numpy as np
from bendlab.session import SessionWriter
w = SessionWriter(sys.argv[1], {"steps": 4, "fps": 8, "sr": 22050, "prompts": ["a floating orb"],
                                "mappings": [{"feature": "rms", "op": "rotate1", "layer": 3, "low": 0.0, "high": 3.0}]})
k = 0
while True:
    w.audio(0.3 * np.sin(np.arange(k * 300, (k + 1) * 300) / 5.0))
    w.row(w.seconds, 0, [(w.seconds % 3.0, 0.0, 3.0, 3)])
    w.event({"time": w.seconds, "kind": "midi", "cc": 74, "value": k % 128})
    k += 1
    time.sleep(0.001)
"""


def test_a_session_killed_at_a_random_moment_reads_and_re_renders(pipe, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(folder)])
    try:
        deadline = time.monotonic() + 60
        csv = folder / "automation.csv"
        while not (csv.is_file() and csv.read_text().count("\n") >= 40) and time.monotonic() < deadline:
            time.sleep(0.02)
        moment = random.uniform(0, 0.3)
        time.sleep(moment)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    s = read_session(folder)
    assert s.rows >= 39 and s.duration > 0, moment
    assert s.times[-1] <= s.duration + 300 / SR  # the row of a block follows its samples
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    out = tmp_path / "killed.mp4"
    assert main(["video", "--session", str(folder), "--fps", "5", "--upscale", "1", "--out", str(out)]) == 0, \
        capsys.readouterr().err
    n = math.ceil(s.duration * 5 - 1e-9)
    assert video_info(out)["frames"] == n and f"{n} frames" in capsys.readouterr().out


def test_the_re_render_carries_the_recorded_performance(pipe, tmp_path):
    """Frames: ceil(duration x fps); frame k's parameter np.interp of the recorded curve at k/fps, its prompt and
    layer those in effect then; each frame equals the same bend rendered directly; the mp4 has the recorded
    audio."""
    folder = perform(tmp_path / "s")
    s = read_session(folder)
    fps = 10
    spec = session_spec(folder, fps=fps, batch=4)
    p = plan(spec)
    n = math.ceil(s.duration * fps - 1e-9)
    t = np.arange(n) / fps
    assert p.n_frames == n == 15
    np.testing.assert_allclose(p.curves[0], np.interp(t, s.times, s.params[0]), rtol=0, atol=1e-12)
    switch = int(np.argmax(p.weights[:, 1]))
    assert switch == math.ceil(s.times[s.prompt.argmax()] * fps)  # the first frame at or after the recorded switch
    np.testing.assert_array_equal(p.weights.argmax(axis=1), np.arange(n) >= switch)
    layer_at = np.where(t >= s.times[np.argmax(s.layers[0] == 2)], 2, 3)
    np.testing.assert_array_equal(p.layers[0], layer_at)
    out = make_video(spec, tmp_path / "perf.mp4", pipe=pipe, progress=False)
    noise = torch.randn(latent_shape(pipe, 1), generator=torch.Generator().manual_seed(spec.seed))
    for k in range(n):
        direct = render_batch(pipe, [Bend("rotate1", float(p.curves[0, k]), int(layer_at[k]))],
                              prompts=[PROMPTS[int(k >= switch)]], latents=noise.clone(), steps=CLIP_STEPS,
                              guidance=p.spec.guidance)[0]
        assert_frames_close(Image.open(frame_path(frames_dir(out), k)), direct)
    info = video_info(out)
    assert info["frames"] == n and info["audio"] and abs(info["duration"] - s.duration) <= 1 / fps
    again = []
    make_video(spec, tmp_path / "perf.mp4", pipe=pipe, progress=False, on_frame=again.append)
    assert again == []  # resumed: every frame verified, none rendered


def test_more_steps_carry_the_layers_to_the_same_depth(tmp_path):
    folder = perform(tmp_path / "s", seconds=1.2)
    spec = session_spec(folder, steps=8)
    assert spec.mappings[0].layer == 6 and (spec.steps, spec.walk, spec.fps) == (8, "none", LIVE_FPS)
    p = plan(spec)
    assert set(p.layers[0].tolist()) == {6, 4}  # 3 and 2 of 4 steps
    assert fit_layers(40, 50, 4) == 3 and fit_layers(3, 4, 4) == 3


def test_the_session_is_in_the_manifest_and_other_videos_are_not(tmp_path, clip):
    from conftest import spec_for
    folder = perform(tmp_path / "s", seconds=0.5)
    identity = session_spec(folder).identity()
    assert set(identity["session"]) == {"session.json", "automation.csv"}
    assert identity["audio"]["sha256"]
    assert "session" not in spec_for(clip).identity()  # every other video's render folder resumes as before


def test_a_session_renders_the_same_frames_on_ray_workers(pipe, tmp_path, ray_alone):
    """The per-frame prompts and layers travel with the plan to a Ray worker: its frames are byte-identical."""
    pytest.importorskip("ray", reason="ray is installed by `make install`")
    from bendlab.video import cluster
    from bendlab.video import render_frames
    from conftest import same_frames
    spec = session_spec(perform(tmp_path / "s"), fps=10, batch=4)
    local = render_frames(spec, tmp_path / "local.mp4", pipe=pipe, progress=False)
    try:
        ray = render_frames(spec, tmp_path / "ray.mp4", source=cluster.RaySource(1, threads=1, overlap=False),
                           progress=False)
    finally:
        cluster.shutdown()
    assert same_frames(local, ray, 15)
