"""Hostile input of issue 18, section 2: each case was a traceback, a hang, a silent drop or a late error, and is
now refused in one line (exit code 2 on the command line) before any model loads, or accepted as documented.

Table: argv (or an API call) -> a fragment of the expected one-line message."""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bendlab import audio, recipe, render, render_grid
from bendlab.cli import main

PIANO = "PIANO"  # replaced by the shipped clip's path
F = ["features", PIANO, "--out", "f.csv"]
V = ["video", PIANO, "--op", "rotate1", "--out", "v.mp4"]
R = ["render", "x", "--out", "o.png"]

FILES = {
    "map.toml": '[[mapping]]\nfeature = "rms"\n',
    "dup.yaml": "prompt: x\nsteps: 10\nsteps: 20\n",
    "dupmap.yaml": "mapping:\n  - feature: rms\n    op: add\n    op: rotate1\n",
    "deep.yaml": "prompt: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep.toml": "prompt = " + "[" * 5000 + "]" * 5000 + "\n",
}

CASES = [
    # features checks what video checks: the same values, the same rules
    (F + ["--fps", "0"], "fps 0.0 is outside (0, 240]"),
    (F + ["--fps", "1e6"], "fps 1000000.0 is outside (0, 240]"),
    (F + ["--sr", "0"], "sample rate 0 is not an integer in 8000..192000"),
    (F + ["--sr", "1000000000"], "sample rate 1000000000 is not an integer in 8000..192000"),
    # mapping flags without --op are refused, not dropped
    (F + ["--feature", "centroid"], "--feature given without --op"),
    (F + ["--median", "5", "--gate", "0.5"], "--gate, --median given without --op"),
    (["video", PIANO, "--recipe", "map.toml", "--curve", "2", "--out", "v.mp4"], "--curve given without --op"),
    # unbounded sizes
    (F + ["--op", "add", "--median", "1000000001"], "median 1000000001 is not an integer in 1.."),
    (V + ["--median", "1000000001"], "median 1000000001 is not an integer in 1.."),
    (V + ["--workers", "1000"], "workers 1000 is more than"),
    # silent drops
    (V + ["--prompts", "a", "b", "--keyframe", "0:00 c"], "--keyframe gives the prompts"),
    (V + ["--prompt", "a", "--keyframe", "0:00 c"], "--keyframe gives the prompts"),
    (R + ["--recipe", "dup.yaml"], "duplicate key 'steps'"),
    (V + ["--recipe", "dupmap.yaml"], "duplicate key 'op'"),
    # tracebacks
    (R + ["--recipe", "deep.yaml"], "nested deeper than"),
    (R + ["--recipe", "deep.toml"], "nested deeper than"),
    # late errors made early
    (R + ["--model", "pickled"], "has no .safetensors weights in unet"),
    (R + ["--model", "models/nope"], "model 'models/nope' does not exist"),
    (R + ["--model", "models/loop"], "model 'models/loop' does not exist"),
    (R + ["--model", "./nope"], "model './nope' does not exist"),
    (F + ["--op", "add", "--feature", "midi_cc:74"], "needs a MIDI file"),
    # leftovers
    (["video", PIANO, "--op", "rotate1", "--out", "taken.mp4"], "is not a folder"),
]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working folder with the files the cases name; loading a model (or analysing audio, where a case must
    fail before it) fails the test."""
    import shutil
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    piano = tmp_path / "piano.ogg"
    shutil.copy("bendlab/data/piano.ogg", piano)
    shipped = Path("bendlab/models/bendlab-tiny-sd").resolve()
    pickled = tmp_path / "pickled"
    shutil.copytree(shipped, pickled, ignore=shutil.ignore_patterns("*.safetensors", "*.png"))
    (pickled / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    (tmp_path / "models").mkdir()
    os.symlink("loop", tmp_path / "models" / "loop")
    (tmp_path / "taken.frames").write_text("a file where the render folder goes")

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the input was checked")
    monkeypatch.setattr("bendlab.models.load_pipeline", no_model)
    monkeypatch.setattr("bendlab.models._load", no_model)
    monkeypatch.chdir(tmp_path)
    return piano


def run_one_line(argv, piano, capsys):
    code = main([str(piano) if a == PIANO else a for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv,msg", CASES, ids=[" ".join(a[2:])[:60] for a, _ in CASES])
def test_cli_refuses_hostile_input_in_one_line(sandbox, capsys, argv, msg):
    assert msg in run_one_line(argv, sandbox, capsys)


def test_midi_feature_without_midi_is_refused_before_the_analysis(sandbox, capsys, monkeypatch):
    def no_analysis(*a, **k):
        raise AssertionError("the audio was analysed before the input was checked")
    monkeypatch.setattr("bendlab.audio.audio_features", no_analysis)
    assert "needs a MIDI file" in run_one_line(F + ["--op", "add", "--feature", "midi_cc:74"], sandbox, capsys)


def test_cuda_workers_without_a_gpu_are_refused_before_ray(sandbox, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("bendlab.cluster._ray", lambda: pytest.fail("Ray was started"))
    assert "no CUDA GPU is available" in run_one_line(V + ["--workers", "1", "--device", "cuda"], sandbox, capsys)


def test_ray_address_with_nothing_listening_fails_in_seconds(sandbox, capsys, monkeypatch):
    monkeypatch.setattr("bendlab.cluster._ray", lambda: pytest.fail("Ray was started"))
    t = time.monotonic()
    line = run_one_line(V + ["--ray-address", "127.0.0.1:1"], sandbox, capsys)
    assert time.monotonic() - t < 10
    assert "could not join Ray at '127.0.0.1:1'" in line


def test_read_only_render_folder_is_refused_before_the_model(sandbox, capsys, monkeypatch):
    folder = sandbox.parent / "v.frames"
    folder.mkdir()
    (folder / "render.lock").write_text("")
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p).resolve() == folder else real(p, mode, **k))
    assert "is not writable" in run_one_line(V, sandbox, capsys)


API_CASES = [
    (lambda: audio.smooth(np.zeros(10), 20, median=11), "median 11 is longer than the track's 10 frames"),
    (lambda: render_grid("x", "add", "abc", layers=[10]), "params 'abc'"),
    (lambda: render_grid("x", "add", 5, layers=[10]), "params 5"),
    (lambda: render_grid("x", "add", [1.0], layers=5), "layers 5"),
    (lambda: render("x", guidance=True), "guidance True"),
    (lambda: render("x", steps=10, output_type="foo"), "output_type 'foo'"),
    (lambda: render("x", steps=10, height=100), "height 100 is not a positive multiple of 4 and of 8"),
]


@pytest.mark.parametrize("call,msg", API_CASES, ids=[m[:40] for _, m in API_CASES])
def test_api_refuses_hostile_input_before_the_model(sandbox, call, msg):
    with pytest.raises(ValueError) as e:
        call()
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_null_steps_and_guidance_mean_the_models_usual(tmp_path):
    from bendlab.video import VideoSpec
    (tmp_path / "r.yaml").write_text("prompt: x\nsteps: null\nguidance: null\n")
    assert recipe.read_render(tmp_path / "r.yaml") == {"prompt": "x", "steps": None, "guidance": None, "bends": []}
    (tmp_path / "v.yaml").write_text("steps: null\nguidance: null\nmapping:\n  - feature: rms\n")
    spec = VideoSpec("bendlab/data/piano.ogg", **recipe.read_video(tmp_path / "v.yaml"))
    assert (spec.steps, spec.guidance) == (None, None)  # resolved to the model's usual when the model is known


def test_a_field_of_any_type_has_a_rule():
    for text in ("dict[str, int]", "Path", "int | None", "list[float] | None"):
        ok, words = recipe.field_rule(text)
        assert isinstance(words, str)
    assert recipe.field_rule("int | None")[0](None) and not recipe.field_rule("int")[0](None)


def test_short_track_leaves_out_the_features_it_cannot_have(tmp_path, capsys):
    import soundfile as sf
    t = np.arange(441) / 44100
    sf.write(tmp_path / "short.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 44100)  # 10 ms
    code = main(["features", str(tmp_path / "short.wav"), "--fps", "100", "--out", str(tmp_path / "f.csv")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "left out" in out and "pca:2" in out
    header = (tmp_path / "f.csv").read_text().splitlines()[0].split(",")
    assert "pca:1" in header and "pca:2" not in header


def test_a_killed_mux_leaves_no_temporary_audio_beside_the_video(tmp_path, monkeypatch):
    from PIL import Image

    from bendlab import video
    frames = []
    for i in range(4):
        frames.append(tmp_path / f"frame_{i}.png")
        Image.new("RGB", (16, 16), (i * 60, 0, 0)).save(frames[-1])
    out_dir = tmp_path / "out"
    out_dir.mkdir()

    def killed(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr("moviepy.video.VideoClip.ffmpeg_write_video", killed)
    with pytest.raises(KeyboardInterrupt):
        video.mux(frames, "bendlab/data/piano.ogg", out_dir / "v.mp4", 20)
    assert os.listdir(out_dir) == []
