"""Bad input, as a hostile new user gives it: each case one line naming the value and what is accepted, exit
code 2, and no model loaded (load_pipeline is replaced by a function that fails the test if called).

Table: argv (or an API call) -> a fragment of the expected one-line message."""

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bendlab import Bend, audio, render, render_grid
from bendlab.bend import insides
from bendlab.ui import recipe
from bendlab.ui.cli import main
from bendlab.session import SessionWriter, read_session
from bendlab.mapping import Mapping
from bendlab.video import VideoSpec, check_spec
from bendlab.video import session_spec

PIANO = "PIANO"  # replaced by the shipped clip's path
R = ["render", "x"]
RO = R + ["--out", "o.png"]
V = ["video", PIANO, "--op", "rotate1", "--out", "v.mp4"]
LIVE = ["live", "--play", PIANO, "--output-device", "none", "--op", "rotate1"]
F = ["features", PIANO, "--out", "f.csv"]
ATTN1, ATTN2 = (f"attn:mid_block.attentions.0.transformer_blocks.0.attn{k}" for k in (1, 2))

FILES = {
    "bend5.toml": 'prompt = "x"\nbend = 5\n',
    "bendlist.toml": 'prompt = "x"\nbend = [5]\n',
    "unknown.toml": 'prompt = "x"\ncolour = "red"\n',
    "mapping.toml": 'prompt = "x"\n[[mapping]]\nfeature = "rms"\n',
    "types.toml": 'prompt = "x"\nsteps = "50"\n',
    "bendtype.toml": 'prompt = "x"\n[[bend]]\nop = "add"\nparam = "big"\n',
    "bomb.yaml": 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
                 'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nprompt: *d\n',
    "list.yaml": "- 1\n- 2\n",
    "video_unknown.toml": 'colour = "red"\n',
    "video_mapkey.toml": '[[mapping]]\nfeature = "rms"\ncolour = "red"\n',
    "video_type.toml": 'fps = "fast"\n[[mapping]]\nfeature = "rms"\n',
    "video_bend.toml": '[[bend]]\nop = "add"\n',
    "video_keyframes.toml": 'prompts = ["a", "b"]\nkeyframes = 5\n[[mapping]]\nfeature = "rms"\n',
    "notimage.png": "this is not a PNG",
    # hostile input (issue 18)
    "map.toml": '[[mapping]]\nfeature = "rms"\n',
    "dup.yaml": "prompt: x\nsteps: 10\nsteps: 20\n",
    "dupmap.yaml": "mapping:\n  - feature: rms\n    op: add\n    op: rotate1\n",
    "deep.yaml": "prompt: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep.toml": "prompt = " + "[" * 5000 + "]" * 5000 + "\n",
    "matrix15.toml": 'prompt = "x"\n[[bend]]\nop = "matrix"\nparam = [' + ", ".join(["1"] * 15) + "]\n",
}

CASES = [
    # operators and bends
    (R + ["--op", "erode", "--param", "1000000", "--out", "o.png"], "kernel size 1000000.0 is larger than the 16x16"),
    (R + ["--op", "dilate", "--param", "2000", "--out", "o.png"], "accepted: 1..16"),
    (R + ["--op", "multiply", "--param", "1e308", "--out", "o.png"], "beyond the float32 range"),
    (R + ["--op", "invert", "--param", "1e-300", "--out", "o.png"], "makes 1/r overflow float32"),
    (R + ["--op", "add", "--param", "-inf", "--out", "o.png"], "NaN or infinite"),
    (R + ["--op", "add", "--param", "-1e3", "--layer", "40-10", "--out", "o.png"], "layer range [40, 10] is reversed"),
    (R + ["--op", "add", "--param", "1", "--module", "", "--out", "o.png"], "module '' is not a UNet block name"),
    (R + ["--op", "add", "--param", "1", "--module", "nope", "--out", "o.png"], "UNet has no module 'nope'"),
    (R + ["--op", "add", "--param", "1", "--where", "fraction:0.05:seed=-1", "--out", "o.png"], "where seed -1"),
    (R + ["--op", "add", "--param", "1", "--where", f"fraction:0.05:seed={2**64}", "--out", "o.png"], "0..2**63-1"),
    (R + ["--op", "add", "--param", "1", "--where", "row:99", "--out", "o.png"], "row 99 is out of range for a 4x16"),
    (R + ["--op", "add", "--param", "1", "--where", "column:16", "--out", "o.png"], "accepted: 0..15"),
    (R + ["--seed", "-1", "--out", "o.png"], "seed -1 is not an integer in 0..2**63-1"),
    (R + ["--steps", "0", "--out", "o.png"], "steps 0 is not an integer in 1..1000"),
    # machine and model
    (R + ["--threads", "0", "--out", "o.png"], "threads 0 is outside 1.."),
    (R + ["--threads", "100000", "--out", "o.png"], "threads 100000 is outside 1.."),
    (R + ["--device", "tpu", "--out", "o.png"], "device 'tpu' is not a device; accepted: cpu, cuda, cuda:N, mps"),
    (R + ["--model", "badindex", "--out", "o.png"], "holds a list, not an object"),
    (R + ["--model", "/no/such/model", "--out", "o.png"], "does not exist"),
    (R + ["--model", "nobody/no-such-model", "--out", "o.png"], "could not read the scheduler config of model "
     "'nobody/no-such-model' to choose its steps"),  # offline: no --steps, a hub id not in the cache
    # outputs
    (R + ["--out", "folder"], "is a folder"),
    (R + ["--out", "noext"], "has suffix '(none)'; accepted: .png"),
    (R + ["--out", "o.xyz"], "has suffix '.xyz'"),
    (R + ["--out", "/no/such/folder/o.png"], "output folder '/no/such/folder' does not exist"),
    (["video", PIANO, "--op", "rotate1", "--out", "v.avi"], "has suffix '.avi'; accepted: .mp4"),
    (["video", PIANO, "--op", "rotate1", "--out", "folder"], "is a folder"),
    # image-to-image
    (R + ["--init-image", "missing.png", "--out", "o.png"], "init image 'missing.png' does not exist"),
    (R + ["--init-image", "notimage.png", "--out", "o.png"], "is not a readable image"),
    (R + ["--init-image", "init.png", "--strength", "0.01", "--out", "o.png"], "runs no denoising step"),
    (R + ["--init-image", "init.png", "--op", "add", "--param", "1", "--layer", "30", "--out", "o.png"],
     "outside 0..25"),
    # recipes
    (R + ["--recipe", "bend5.toml", "--out", "o.png"], "bend = 5 is not a list of tables"),
    (R + ["--recipe", "bendlist.toml", "--out", "o.png"], "bend entry 1 is 5, not a table"),
    (R + ["--recipe", "unknown.toml", "--out", "o.png"], "unknown key 'colour'"),
    (R + ["--recipe", "mapping.toml", "--out", "o.png"], "[[mapping]] belongs to the other kind of recipe"),
    (R + ["--recipe", "types.toml", "--out", "o.png"], "steps = '50' is not an integer"),
    (R + ["--recipe", "bendtype.toml", "--out", "o.png"], "bend entry 1: add: parameter 'big' is not a number"),
    (R + ["--recipe", "bomb.yaml", "--out", "o.png"], "YAML alias *a is not accepted"),
    (R + ["--recipe", "list.yaml", "--out", "o.png"], "holds a list; accepted: a table of settings"),
    (V + ["--recipe", "video_unknown.toml"], "unknown key 'colour'"),
    (V + ["--recipe", "video_mapkey.toml"], "mapping entry 1: unknown key(s) ['colour']"),
    (V + ["--recipe", "video_type.toml"], "fps = 'fast' is not a number"),
    (V + ["--recipe", "video_bend.toml"], "[[bend]] belongs to the other kind of recipe"),
    (V + ["--recipe", "video_keyframes.toml"], "keyframes = 5 is not a list of numbers"),
    # video settings
    (V + ["--median", "0"], "median 0 is not an odd number of frames >= 1"),
    (V + ["--median", "4"], "median 4 is not an odd number"),
    (V + ["--upscale", "0"], "upscale 0 is not an integer in 1..16"),
    (V + ["--upscale", "17"], "upscale 17 is not an integer in 1..16"),
    (RO + ["--upscale", "0"], "upscale 0 is not an integer in 1..16; accepted: 1 (the model's size) to 16"),
    (RO + ["--upscale", "17"], "upscale 17 is not an integer in 1..16"),
    (RO + ["--upscale", "2.5"], "upscale '2.5' is not an integer in 1..16; accepted: 1 (the model's size) to 16"),
    (V + ["--batch", "0"], "batch 0 is not an integer in 1..1024"),
    (V + ["--preview", "-2"], "preview -2.0 is not a number of seconds > 0"),
    (["video", PIANO, "--op", "invert", "--range", "-1", "1", "--out", "v.mp4"], "passes through r = 0"),
    (["video", PIANO, "--op", "erode", "--range", "1", "40", "--out", "v.mp4"], "larger than the 16x16 latent"),
    (["video", PIANO, "--op", "add", "--where", "row:16", "--out", "v.mp4"], "row 16 is out of range"),
    (["video", PIANO, "--op", "add", "--curve", "-1", "--out", "v.mp4"], "curve -1.0 is not > 0"),
    (V + ["--method", "img2img", "--layer", "10", "--init-image", "notimage.png"], "is not a readable image"),
    (V + ["--method", "img2img", "--layer", "40"], "layer 40 is outside 0..25"),
    (V + ["--fps", "0"], "fps 0.0 is outside (0, 240]"),
    (V + ["--workers", "0"], "workers 0 is not an integer >= 1"),
    (V + ["--feature", "loudness"], "unknown feature 'loudness'"),
    (V + ["--feature", "midi_velocity"], "needs a MIDI file"),
    (V + ["--midi", "notimage.png"], "MIDI file 'notimage.png' could not be read"),
    (V + ["--feature", "rms@nostem.wav"], "stem 'nostem.wav' of feature 'rms@nostem.wav' does not exist"),
    (V + ["--gate", "1.5"], "0 <= gate < 1"),
    (["features", PIANO, "--out", "f.txt"], "has suffix '.txt'; accepted: .csv"),
    (["features", PIANO, "--out", "f.csv", "--plot", "p.gif"], "has suffix '.gif'; accepted: .png, .pdf, .svg"),
    (["features", PIANO, "--out", "f.csv", "--feature", "pca:99", "--op", "add"], "pca:99 is not a component"),
    (V + ["--ray-address", " "], "ray address ' ' is not an address"),
    (V + ["--method", "img2img", "--layer", "10", "--workers", "2"], "img2img renders each frame from the previous"),
    # once in test_cli.py's harness (its `--model /no/such/model` and `--fps 0` cases are above)
    (R + ["--op", "invert", "--param", "0", "--out", "o.png"], "r = 0"),
    (R + ["--op", "add", "--param", "1", "--layer", "51", "--out", "o.png"], "outside 0..50"),
    (R + ["--op", "add", "--param", "1", "--where", "fraction:2", "--out", "o.png"], "(0, 1]"),
    (R + ["--op", "add", "--param", "nan", "--out", "o.png"], "NaN"),
    (R + ["--recipe", "missing.toml", "--out", "o.png"], "does not exist"),
    (["video", "missing.wav", "--op", "rotate1", "--out", "v.mp4"], "does not exist"),
    (V + ["--range", "1", "1"], "empty"),
    (V + ["--feature", "rms", "--keyframe", "0:00 a", "--keyframe", "9:00 b"], "beyond the audio"),
    # hostile input (issue 18): each was a traceback, a hang, a silent drop or a late error
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
    (RO + ["--recipe", "dup.yaml"], "duplicate key 'steps'"),
    (V + ["--recipe", "dupmap.yaml"], "duplicate key 'op'"),
    # tracebacks
    (RO + ["--recipe", "deep.yaml"], "nested deeper than"),
    (RO + ["--recipe", "deep.toml"], "nested deeper than"),
    # late errors made early
    (RO + ["--model", "pickled"], "has no .safetensors weights in unet"),
    (RO + ["--model", "models/nope"], "model 'models/nope' does not exist"),
    (RO + ["--model", "models/loop"], "model 'models/loop' does not exist"),
    (RO + ["--model", "./nope"], "model './nope' does not exist"),
    (F + ["--op", "add", "--feature", "midi_cc:74"], "needs a MIDI file"),
    # leftovers
    (["video", PIANO, "--op", "rotate1", "--out", "taken.mp4"], "is not a folder"),
    # operators with several parameters (issue 20): the count is checked before the model loads
    (R + ["--op", "matrix", "--param", ",".join(["1"] * 15), "--out", "o.png"],
     "matrix: 15 parameter values; accepted: 16 numbers"),
    (R + ["--op", "rotate6", "--param", "0.1,0.2", "--out", "o.png"],
     "rotate6: 2 parameter values; accepted: 6 angles"),
    (R + ["--op", "matrix", "--param", "1,x", "--out", "o.png"],
     "parameter '1,x' is not a number or comma-separated numbers"),
    (R + ["--recipe", "matrix15.toml", "--out", "o.png"], "bend entry 1: matrix: 15 parameter values"),
    # live session re-renders (issue 19): the folder and the flags checked before the model loads
    (["video", "--session", "nosuch", "--out", "v.mp4"], "session folder 'nosuch' does not exist"),
    (["video", "--session", "folder", "--out", "v.mp4"], "session folder 'folder' has no session.json"),
    (["video", PIANO, "--session", "folder", "--out", "v.mp4"], "given with session 'folder'; accepted: one of them"),
    (["video", "--op", "rotate1", "--out", "v.mp4"], "no audio; accepted: an audio file"),
    (["video", "--session", "folder", "--feature", "rms", "--out", "v.mp4"], "--feature given with --session"),
    (["video", "--session", "folder", "--keyframe", "0:00 a", "--out", "v.mp4"], "--keyframe given with --session"),
    (["video", "--session", "folder", "--recipe", "map.toml", "--out", "v.mp4"],
     "[[mapping]] in --recipe given with --session"),
    # bendlab live (issue 19): every flag checked before the model loads
    (["live", "--play", "nosuch.ogg", "--op", "rotate1"], "audio file 'nosuch.ogg' does not exist"),
    (LIVE + ["--feature", "pca:1"], "feature 'pca:1' needs the whole track (offline only); accepted live: rms"),
    (LIVE + ["--feature", "rms@percussive"], "needs the whole track; accepted live: the mix"),
    (LIVE + ["--cc", "1=0.high"], "--cc '1=0.high': high needs a range LO:HI"),
    (LIVE + ["--cc", "200=0.layer"], "CC 200 is not in 0..127"),
    (LIVE + ["--cc", "1=3.low:0:1"], "--cc '1=3.low:0:1'"),
    (LIVE + ["--osc", "99999"], "port '99999' is not in 0..65535"),
    (LIVE + ["--serve", "abc"], "--serve 'abc': port 'abc' is not in 0..65535"),
    (LIVE + ["--midi-in", "nosuchport"], "MIDI port 'nosuchport'"),
    (LIVE + ["--input-device", "1"], "--play and --input-device both given"),
    (["live", "--input-device", "99", "--op", "rotate1"], "input device 99"),
    (LIVE + ["--fps", "0"], "fps 0.0 is outside (0, 240]"),
    (LIVE + ["--halflife", "0"], "halflife 0.0 is not > 0"),
    (LIVE + ["--soundcheck", "-1"], "soundcheck -1.0"),
    (LIVE + ["--layer", "11"], "layer 11 is outside 0..10 (the live frames run 10 steps)"),
    (LIVE + ["--seconds", "-1"], "seconds -1.0"),
    (LIVE + ["--bpm", "0"], "bpm 0.0"),
    (LIVE + ["--range", "0", "1e309"], "range high inf is not a finite number"),
    (LIVE + ["--record", "recorded"], "session folder 'recorded' already holds a session"),
    # attention targets (issue 20): the module, the where, the word and the operator checked before the model loads
    (RO + ["--op", "add", "--param", "1", "--target", "attn:down_blocks.9.attn2"],
     "UNet has no module 'down_blocks.9.attn2'; accepted: the path of an attention module, e.g. attn:down_blocks.2"),
    (RO + ["--op", "add", "--param", "1", "--target", "attn:mid_block.attentions.0"],
     "UNet module 'mid_block.attentions.0' is a Transformer2DModel, not an attention module"),
    (RO + ["--op", "add", "--param", "1", "--target", ATTN1, "--where", "token:x"],
     "is self-attention (its keys are image positions)"),
    (RO + ["--op", "add", "--param", "1", "--target", ATTN2, "--where", "token:cat"],
     "token word 'cat' is not in the prompt 'x'"),
    (RO + ["--op", "add", "--param", "1", "--target", "text", "--where", "token:cat"],
     "token word 'cat' is not in the prompt 'x'"),
    (RO + ["--op", "attn_rotate", "--param", "1"], "attn_rotate transforms a token's attention map and cannot bend "
     "target latent"),
    (RO + ["--op", "attn_blur", "--param", "1", "--target", "vae:decoder.up_blocks.1"],
     "attn_blur transforms a token's attention map and cannot bend target vae:decoder.up_blocks.1"),
    (RO + ["--op", "erode", "--param", "2", "--target", ATTN2],
     "erode cannot bend attention probabilities; accepted for attn targets: add, multiply"),
    (RO + ["--op", "attn_flip", "--param", "2", "--target", ATTN2], "attn_flip: axis 2.0 is not 0 or 1"),
    (RO + ["--op", "attn_translate", "--param", "0.1", "--target", ATTN2],
     "attn_translate: 1 parameter value; accepted: 2 numbers dx,dy"),
    (RO + ["--op", "add", "--param", "1", "--layer", "50", "--target", ATTN2],
     "layer 50 is outside 0..49 (attn bends act on the UNet evaluations"),
    (V + ["--method", "img2img", "--flow", "-0.5"], "flow -0.5 is not >= 0 and <= 2; accepted: the fraction of the "
                                                   "last two frames' motion"),
    (V + ["--method", "img2img", "--flow", "nan"], "flow nan is not a finite number"),
    # bendlab live --loop (issue 30)
    (["live", "--loop", "--op", "rotate1"], "--loop given without --play; accepted: --loop with --play FILE"),
]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working folder with the files the cases name; loading a model fails the test."""
    import shutil
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "folder").mkdir()
    Image.new("RGB", (64, 64), "gray").save(tmp_path / "init.png")
    bad = tmp_path / "badindex"
    for c in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
        (bad / c).mkdir(parents=True)
    (bad / "model_index.json").write_text("[]")
    piano = tmp_path / "piano.ogg"
    shutil.copy("bendlab/data/piano.ogg", piano)
    shipped = Path("bendlab/weights/bendlab-tiny-sd").resolve()
    pickled = tmp_path / "pickled"  # a model folder with pickle weights only
    shutil.copytree(shipped, pickled, ignore=shutil.ignore_patterns("*.safetensors", "*.png"))
    (pickled / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    (tmp_path / "models").mkdir()
    os.symlink("loop", tmp_path / "models" / "loop")
    (tmp_path / "taken.frames").write_text("a file where the render folder goes")
    with SessionWriter(tmp_path / "recorded", {"sr": 22050, "fps": 10, "steps": 4, "prompts": ["a"],
                                               "mappings": [Mapping()]}) as w:
        w.audio(np.zeros(2205, np.float32))  # a take: it holds audio

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the input was checked")
    monkeypatch.setattr("bendlab.models.load_pipeline", no_model)
    monkeypatch.setattr("bendlab.models.Model.load", no_model)
    monkeypatch.chdir(tmp_path)
    return piano


def run_one_line(argv, piano, capsys) -> str:
    """Run the command line; it must exit 2 with exactly one line on stderr, which is returned."""
    try:
        code = main([str(piano) if a == PIANO else a for a in argv])
    except SystemExit as e:  # argparse's own errors (a --param that is not numbers) exit, also with 2
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv,msg", CASES, ids=[" ".join(a[2:] if a[0] == "video" else a[1:])[:60]
                                                  for a, _ in CASES])
def test_cli_refuses_bad_input_in_one_line_before_the_model(sandbox, capsys, argv, msg):
    assert msg in run_one_line(argv, sandbox, capsys)


def test_no_cuda_is_refused(sandbox, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the refusal is for machines without it")
    assert main(R + ["--device", "cuda", "--out", "o.png"]) == 2
    assert "no CUDA GPU is available" in capsys.readouterr().err


API_CASES = [
    (lambda: Bend("add", 1, layer=[40, 10]), "layer range [40, 10] is reversed"),
    (lambda: Bend("add", 1, layer=[10, 20, 30]), "is not an integer >= 0 or a [first, last] range"),
    (lambda: Bend("add", 1, layer=-1), "layer -1 is not an integer >= 0"),
    (lambda: Bend("add", 1, module=""), "module '' is not a UNet block name"),
    (lambda: Bend("add", 1, where="fraction:0.1:seed=-1"), "where seed -1"),
    (lambda: render("x", [1]), "bend 1 is not a Bend or a dict"),
    (lambda: render("x", "add"), "bends 'add' are not a Bend"),
    (lambda: render("x", height=0), "height 0 is not a positive multiple of 4"),
    (lambda: render("x", width=-8), "width -8 is not a positive multiple of 4"),
    (lambda: render("x", height=30), "height 30 is not a positive multiple of 4"),
    (lambda: render("x", pipe="abc"), "pipe 'abc' is not a supported pipeline"),
    (lambda: render("x", [Bend("erode", 2000, 3)]), "kernel size 2000 is larger than the 16x16 latent"),
    (lambda: render("x", [Bend("add", 1, 3, module="down_blocks.9")]), "UNet has no module 'down_blocks.9'"),
    (lambda: render("x", model=""), "model '' is not a folder or hub id"),
    (lambda: render("x", device="gpu"), "device 'gpu' is not a device"),
    (lambda: render_grid("x", "add", [1.0], layers=[]), "at least one parameter and one layer"),
    (lambda: render_grid("x", "add", [], layers=[10]), "at least one parameter and one layer"),
    (lambda: render_grid("x", "add", [1.0], layers=[1.5]), "are not all integers"),
    (lambda: Mapping(op="invert", low=-1, high=1), "passes through r = 0"),
    (lambda: Mapping(median=2), "median 2 is not an odd number"),
    (lambda: VideoSpec("song.wav", keyframes=5), "keyframes 5 are not a list"),
    (lambda: VideoSpec("song.wav", prompts="a floating orb"), "accepted: a list of one or more strings"),
    (lambda: VideoSpec("song.wav", batch=0), "batch 0 is not an integer in 1..1024"),
    # hostile input (issue 18)
    (lambda: audio.smooth(np.zeros(10), 20, median=11), "median 11 is longer than the track's 10 frames"),
    (lambda: render_grid("x", "add", "abc", layers=[10]), "params 'abc'"),
    (lambda: render_grid("x", "add", 5, layers=[10]), "params 5"),
    (lambda: render_grid("x", "add", [1.0], layers=5), "layers 5"),
    (lambda: render("x", guidance=True), "guidance True"),
    (lambda: render("x", steps=10, output_type="foo"), "output_type 'foo'"),
    (lambda: render("x", steps=10, height=100), "height 100 is not a positive multiple of 4 and of 8"),
    # attention targets (issue 20)
    (lambda: render("x", [Bend("add", 1, 0, target="attn:nope")]), "UNet has no module 'nope'"),
    (lambda: render("x", [Bend("add", 1, 0, target="attn:mid_block")]), "is a UNetMidBlock2DCrossAttn, not an "
     "attention module"),
    (lambda: Bend("add", 1, where="token:orb", target=ATTN1), "is self-attention"),
    (lambda: render("an orb", [Bend("multiply", 0, 0, "token:cat", target=ATTN2)]), "'cat' is not in the prompt"),
    (lambda: render_grid("an orb", "add", [1.0], [1], "token:cat", target=ATTN2), "'cat' is not in the prompt"),
    (lambda: Bend("attn_translate", [0.1, 0.2], module="mid_block"), "attn_translate transforms a token's attention"),
    (lambda: Bend("add", 1, norm="row", target=ATTN2), "norm 'row' has no meaning for attention probabilities"),
    (lambda: Bend("add", 1, where="region:0,0,0.5,0.5", target=ATTN2), "not among attention columns"),
    (lambda: Bend("attn_blur", -1, target=ATTN2), "attn_blur: sigma -1 is negative"),
    # live session re-renders (issue 19)
    (lambda: check_spec(session_spec(_session("s", rows=0))), "holds no automation rows"),
    (lambda: check_spec(session_spec(_session("s", prompt=1))),
     "prompt 1 is not an index of the session's 1 prompt(s)"),
    (lambda: session_spec(_session("s"), audio="song.wav"), "audio 'song.wav' given with session 's'"),
    (lambda: session_spec(_session("s"), mappings=[Mapping()]), "mappings given with session"),
    (lambda: VideoSpec("song.wav", session="s"), "audio 'song.wav' given with session 's'"),
    (lambda: VideoSpec(session="s", keyframes=[0.0]), "keyframes given with session"),
    (lambda: VideoSpec(session="s", method="img2img"), "method img2img given with session"),
    (lambda: VideoSpec("song.wav", method="img2img", flow="1"), "flow '1' is not a finite number"),
    (lambda: SessionWriter(_session("s"), {}), "already holds session.json"),
    (lambda: read_session(_session("s", header="time,prompt")), "does not start with the header of 1 mapping"),
    # what a model computes inside (issue 20 section 3)
    (lambda: insides.feature_maps(None, "x", "latent", 1), "target 'latent' has no feature maps"),
    (lambda: insides.feature_maps(None, "x", "attn:mid_block", 1), "target 'attn:mid_block' has no feature maps"),
    (lambda: insides.feature_maps(None, "x", "unet:nope", 1), "UNet has no module 'nope'"),
    (lambda: insides.feature_maps(None, "x", "unet:mid_block", 50), "layer 50 is not an integer in 0..49"),
    (lambda: insides.feature_maps(None, "x", "unet:mid_block", None), "layer None is not an integer in 0..49"),
    (lambda: insides.feature_maps(None, "x", "vae:decoder.up_blocks.1", 3), "the VAE decoder runs once"),
    (lambda: insides.feature_maps(None, "x", "vae:encoder.conv_in"), "runs when an image is encoded"),
    (lambda: insides.feature_maps(None, "x", "vae:decoder.nope"), "VAE has no module 'decoder.nope'"),
    (lambda: insides.latent_steps(None, 5), "prompt 5 is not a string"),
    (lambda: insides.latent_steps(None, "x", steps=0), "steps 0 is not an integer in 1..1000"),
    (lambda: insides.latent_steps(None, "x", [Bend("erode", 2000, 3)]), "kernel size 2000 is larger"),
    (lambda: insides.cross_attention(None, "x", "down_blocks.0", 1), "UNet module 'down_blocks.0' holds no "
     "cross-attention; accepted: a UNet module holding cross-attention (down_blocks.2, mid_block, up_blocks.0)"),
    (lambda: insides.cross_attention(None, "x", "nope", 1), "UNet has no module 'nope'"),
    (lambda: insides.cross_attention(None, "x", "mid_block", 50), "layer 50 is not an integer in 0..49"),
]


@pytest.mark.parametrize("call,msg", API_CASES, ids=[m[:40] for _, m in API_CASES])
def test_api_refuses_bad_input_before_the_model(sandbox, call, msg):
    with pytest.raises(ValueError) as e:
        call()
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_layer_pair_is_an_inclusive_range():
    assert Bend("add", 1, layer=[10, 12]).layers == (10, 11, 12)
    assert Bend("add", 1, layer=range(10, 13)).layers == (10, 11, 12)


@pytest.mark.parametrize("bend,guidance,msg", [
    (Bend("multiply", 3e38, 2), 7.5, "layer 2: multiply(3e+38) made the latent NaN or infinite"),
    (None, 1e30, "the latent became NaN or infinite in denoising step"),
])
def test_non_finite_latent_stops_with_the_layer(pipe, bend, guidance, msg):
    """Silent black images: an overflowing bend or guidance now stops, naming where."""
    with pytest.raises(ValueError) as e:
        render("x", [bend] if bend else [], pipe=pipe, steps=4, guidance=guidance)
    assert msg in str(e.value), e.value


def test_flag_beats_recipe_beats_default(pipe, tmp_path, monkeypatch, capsys):
    """The precedence rule: seed from the flag over the recipe's; steps from the recipe over the default."""
    import numpy as np
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    r = tmp_path / "r.toml"
    r.write_text('prompt = "mice"\nseed = 3\nsteps = 4\n[[bend]]\nop = "add"\nparam = 0.5\nlayer = 2\n')
    out = tmp_path / "o.png"
    assert main(["render", "--recipe", str(r), "--seed", "5", "--out", str(out)]) == 0, capsys.readouterr().err
    expected = render("mice", [Bend("add", 0.5, 2)], pipe=pipe, seed=5, steps=4)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))
    recipe_seed = render("mice", [Bend("add", 0.5, 2)], pipe=pipe, seed=3, steps=4)
    assert not np.array_equal(np.asarray(Image.open(out)), np.asarray(recipe_seed))  # so the flag's seed decided


def test_midi_feature_without_midi_is_refused_before_the_analysis(sandbox, capsys, monkeypatch):
    def no_analysis(*a, **k):
        raise AssertionError("the audio was analysed before the input was checked")
    monkeypatch.setattr("bendlab.audio.audio_features", no_analysis)
    assert "needs a MIDI file" in run_one_line(F + ["--op", "add", "--feature", "midi_cc:74"], sandbox, capsys)


def test_cuda_workers_without_a_gpu_are_refused_before_ray(sandbox, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "ray", None)  # importing Ray fails the command
    assert "no CUDA GPU is available" in run_one_line(V + ["--workers", "1", "--device", "cuda"], sandbox, capsys)


def test_ray_address_with_nothing_listening_fails_in_seconds(sandbox, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # importing Ray fails the command
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

    from bendlab.video import make as video
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


def _session(name: str, rows: int = 2, prompt: int = 0, header: str | None = None) -> str:
    """A small recorded session in the working folder (one mapping, rotate1 at layer 3 of 4 steps)."""
    from bendlab.session import AUTOMATION
    with SessionWriter(name, {"steps": 4, "fps": 10, "sr": 22050, "prompts": ["a"],
                              "mappings": [Mapping("rms", "rotate1", 3, 0, 1)]}) as w:
        w.audio(np.zeros(22050, np.float32))
        for k in range(rows):
            w.row(w.seconds * k / max(rows - 1, 1), prompt, [(0.5, 0.0, 1.0, 3)])
    if header is not None:
        Path(name, AUTOMATION).write_text(header + "\n")
    return name


@pytest.mark.parametrize("argv", [F + ["--op", "matrix", "--feature", "encodec16", "--range", "-0.3", "0.3"],
                                  V[:2] + ["--op", "matrix", "--feature", "encodec16", "--range", "-0.3", "0.3",
                                           "--out", "v.mp4"]])
def test_encodec16_without_its_weights_is_refused_before_the_analysis(sandbox, capsys, monkeypatch, argv):
    def no_analysis(*a, **k):
        raise AssertionError("the audio was analysed before the EnCodec folder was checked")
    monkeypatch.setattr("bendlab.audio.audio_features", no_analysis)
    monkeypatch.delenv("BENDLAB_ENCODEC", raising=False)
    assert "BENDLAB_ENCODEC is not set" in run_one_line(argv, sandbox, capsys)
    monkeypatch.setenv("BENDLAB_ENCODEC", str(sandbox.parent / "no-such-encodec"))
    assert "no-such-encodec" in run_one_line(argv, sandbox, capsys)


# ------------------------------------------------------------------------------------------ checked once, then run
def test_a_controller_value_the_render_cannot_take_is_refused_when_it_arrives():
    """Live renders its frames unchecked (`run_batch`), so a low or high from MIDI, OSC or a slider is checked
    against the render's latent when it arrives: an erode kernel larger than the 16x16 latent, in one line
    naming the mapping, and the session keeps its range."""
    from bendlab.checks import BendlabValueError
    from bendlab.live import Controls
    c = Controls([Mapping("rms", "erode", 3, 1, 2)], ["x"], 4, clock=lambda: 0.0, latent_shape=(1, 4, 16, 16))
    with pytest.raises(BendlabValueError, match=r"^mapping 0: erode: kernel size 1000") as e:
        c.set(0, "high", 1000)
    assert "\n" not in str(e.value)
    assert c.snapshot().mappings[0].high == 2
    c.set(0, "high", 16)  # as large as the latent: accepted
    with pytest.raises(BendlabValueError, match=r"^mapping 0: layer 4 is outside 0..3"):
        Controls([Mapping("rms", "erode", 3, 1, 2, target="unet:mid_block")], ["x"], 4, clock=lambda: 0.0).set(
            0, "layer", 4)


def test_a_frame_renderer_checks_every_bend_its_frames_can_carry_before_the_first(pipe, clip):
    """The frame renderer (in this process and on each Ray worker) checks the curves against its own pipeline
    once, when it is built: a model known only once loaded (a hub id) gets the same one-line refusal."""
    from bendlab.checks import BendlabValueError
    from bendlab.video import FrameRenderer, plan
    p = plan(VideoSpec(audio=str(clip), steps=4, mappings=[Mapping("rms", "erode", 3, 1, 3)]))
    p.curves[0, -1] = 1000.0  # as a model with a smaller latent would find it
    with pytest.raises(BendlabValueError, match="kernel size 1000") as e:
        FrameRenderer(p, pipe)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------ no value dropped
@pytest.mark.parametrize("argv,msg", [
    (V + ["--prompt", ""], "prompt '' is empty"),
    (V + ["--prompts", "a", " "], "prompt ' ' is empty"),
    (LIVE + ["--prompt", ""], "prompt '' is empty"),
    (LIVE + ["--record", ""], "--record '' is empty"),
    (V + ["--flow", "0.5"], "flow 0.5: only the img2img method reads it"),
    (V + ["--color-coherence", "lab"], "color_coherence 'lab': only the img2img method reads it"),
    (V + ["--img2img-prompt", "x", "--strength", "0.7"], "strength 0.7, img2img_prompt 'x': only the img2img"),
    (V + ["--interpolate-method", "latent"], "--interpolate-method latent without --interpolate"),
    (V[:2] + ["--op", "hadamard", "--out", "v.mp4"], "hadamard has no parameter for feature 'rms' to drive"),
    (RO + ["--op", "hadamard", "--param", "2"], "hadamard: parameter 2.0 would be ignored"),
    (RO + ["--op", "add", "--param", "1", "--target", "vae:nosuch"], "VAE has no module 'nosuch'"),
    (V[:2] + ["--op", "attn_translate", "--target", ATTN2, "--out", "v.mp4"],
     "attn_translate in render and recipes (no feature gives 2 values per frame)"),
    (RO + ["--op", "add", "--param", "1", "--target", "text", "--where", "token:99"],
     "token 99 is out of range for 77 prompt tokens"),
    (V[:2] + ["--op", "add", "--out", "v.mp4", "--prompt", "a floating orb", "--target", "text", "--where",
              "token:cat"],
     "token word 'cat' is not in the prompt 'a floating orb'"),
    (V[:2] + ["--op", "add", "--out", "v.mp4", "--prompt", "a floating orb", "--target", ATTN2, "--where",
              "token:99"],
     "token 99 is out of range for 77 prompt tokens"),
])
def test_a_value_that_would_change_nothing_is_refused_in_one_line(sandbox, capsys, argv, msg):
    """A flag the command would otherwise drop (the picture unchanged, exit 0) is refused before any work, in
    one line that names what was written (a token of the prompt checked against the model's tokenizer before the
    model loads, and before a video's render folder exists)."""
    assert msg in run_one_line(argv, sandbox, capsys)
    assert not Path("v.frames").exists()


def test_the_python_api_names_what_it_was_given():
    from bendlab.checks import BendlabValueError
    from bendlab.live import Live, LiveSpec, Player
    from bendlab.video import make_video
    with pytest.raises(BendlabValueError, match="audio input None is not an audio input") as e:
        Live(LiveSpec(), None)
    assert "\n" not in str(e.value)
    with pytest.raises(BendlabValueError, match="fps 0.25 analyses 8 s of audio a frame, more than the input keeps"):
        Live(LiveSpec(fps=0.25), Player("bendlab/data/piano.ogg", LiveSpec().sr, device="none"))
    with pytest.raises(BendlabValueError, match="prompt 5 is not a string"):
        insides.token_labels(None, 5)
    with pytest.raises(BendlabValueError, match="interpolate_method 'latent' without interpolate"):
        make_video(VideoSpec(audio=PIANO), "v.mp4", interpolate_method="latent")
    with pytest.raises(BendlabValueError, match="hadamard: parameter 2 would be ignored"):
        Bend("hadamard", 2)


# ------------------------------------------------------------------------------------------ a start that fails


SHIPPED_PIANO = "bendlab/data/piano.ogg"


def test_a_start_that_fails_on_a_busy_port_leaves_no_session_and_the_next_take_runs(pipe, tmp_path):
    """`live --record DIR --osc PORT` with the port taken: one line, nothing left in DIR; the same command once
    the port is free records there. A folder an earlier start left without audio is no reason to refuse."""
    import socket as socket_

    from bendlab.checks import BendlabValueError
    from bendlab.live import Live, LiveSpec, Player
    from bendlab.session import SessionWriter, read_session
    busy = socket_.socket(socket_.AF_INET, socket_.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    port = busy.getsockname()[1]
    spec, take = LiveSpec(steps=2, fps=10), tmp_path / "take"
    try:
        live = Live(spec, Player(SHIPPED_PIANO, spec.sr, device="none"), pipe=pipe, record=take,
                    osc=f"127.0.0.1:{port}", status=False)
        with pytest.raises(BendlabValueError, match=f"OSC address 127.0.0.1:{port} cannot be served") as e:
            live.run(seconds=0.5)
        assert "\n" not in str(e.value)
        assert not (take / "session.json").exists()  # nothing was begun
    finally:
        busy.close()
    Live(spec, Player(SHIPPED_PIANO, spec.sr, device="none"), pipe=pipe, record=take, osc=f"127.0.0.1:{port}",
         status=False).run(seconds=0.5)
    assert read_session(take).duration > 0
    empty = tmp_path / "empty"  # what a start killed before any audio leaves: session.json and empty files
    SessionWriter(empty, {"sr": spec.sr, "fps": 10, "steps": 2, "prompts": ["x"], "mappings": [Mapping()]}).close()
    Live(spec, Player(SHIPPED_PIANO, spec.sr, device="none"), pipe=pipe, record=empty, status=False).run(seconds=0.5)
    assert read_session(empty).duration > 0
    with pytest.raises(BendlabValueError, match="already holds a session"):  # a take is never overwritten
        Live(spec, Player(SHIPPED_PIANO, spec.sr, device="none"), pipe=pipe, record=empty, status=False)


def test_live_checks_its_prompt_and_record_folder_before_the_model(tmp_path, monkeypatch):
    from bendlab.checks import BendlabValueError
    from bendlab.live import Live, LiveSpec, Player
    with pytest.raises(BendlabValueError, match="prompt of 1001 characters is too long"):
        LiveSpec(prompts=["x" * 1001])
    with pytest.raises(BendlabValueError, match="not a non-empty string"):
        LiveSpec(prompts=[""])
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.access  # root writes anywhere: the folder is made read-only as the check sees it
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if Path(p) == locked else real(p, mode, **k))
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(BendlabValueError, match="cannot be written") as e:
        Live(LiveSpec(), Player(SHIPPED_PIANO, 44100, device="none"), record=locked / "s").run(seconds=0.5)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------ a session that adds up
def _edit(folder, name, old, new):
    p = Path(folder) / name
    text = p.read_text()
    assert old in text, (name, old, text[:200])
    p.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("edit,msg", [
    (lambda f: _edit(f, "automation.csv", "\n0.0,", "\nnan,"), "time nan is not a finite number"),
    (lambda f: _edit(f, "automation.csv", "\n0.0,", "\ninf,"), "time inf is not a finite number"),
    (lambda f: _edit(f, "automation.csv", ",3\n", ",2.7\n"), "m0.layer 2.7 is not a layer of the session's 4 steps"),
    (lambda f: _edit(f, "automation.csv", "\n0.0,0,", "\n0.0,-1,"), "prompt -1 is not an index of the session's 1"),
    (lambda f: _edit(f, "session.json", '"steps": 4', '"steps": -1'), "steps -1 is not an integer in 1..1000"),
    (lambda f: _edit(f, "session.json", '"steps": 4', '"steps": 0'), "steps 0 is not an integer in 1..1000"),
    (lambda f: _edit(f, "session.json", '"sr": 22050', '"sr": 44100'), "is at 22050 Hz but session.json says sr 44100"),
])
def test_a_session_that_does_not_add_up_is_refused_naming_the_file_the_row_and_the_value(sandbox, edit, msg):
    from bendlab.checks import BendlabValueError
    folder = _session("bad")
    edit(folder)
    with pytest.raises(BendlabValueError, match=msg.replace("(", r"\(").replace(".", r"\.")) as e:
        read_session(folder)
    assert "\n" not in str(e.value)
    with pytest.raises(BendlabValueError, match=msg.replace("(", r"\(").replace(".", r"\.")):
        check_spec(session_spec(folder))  # what `bendlab video --session` does before any frame


def test_extra_prompts_for_a_session_and_a_nan_row_are_refused(sandbox, capsys):
    from bendlab.checks import BendlabValueError
    folder = _session("one")
    assert "2 prompt(s) given for a session that recorded 1" in run_one_line(
        ["video", "--session", folder, "--prompts", "x", "y", "--out", "v.mp4"], sandbox, capsys)
    with SessionWriter("w", {"steps": 4, "fps": 10, "sr": 22050, "prompts": ["a"],
                             "mappings": [Mapping("rms", "rotate1", 3, 0, 1)]}) as w:
        with pytest.raises(BendlabValueError, match="automation time nan is not finite"):
            w.row(float("nan"), 0, [(0.5, 0.0, 1.0, 3)])
        with pytest.raises(BendlabValueError, match="m0.layer 9 is not a layer of the session's 4 steps"):
            w.row(0.0, 0, [(0.5, 0.0, 1.0, 9)])


def test_live_honours_scaling_and_clip():
    """`bendlab live --scaling percentile --clip P_LOW P_HIGH` normalises between those percentiles of the recent
    values, as offline: one loud outlier no longer squashes everything after it (min-max, the default, does)."""
    from types import SimpleNamespace

    from bendlab.live.causal import LiveMapping
    control = SimpleNamespace(low=0.0, high=1.0, param=None)
    values = [float(v) for v in np.tile(np.linspace(0, 1, 11), 6)]
    values[30] = 100.0  # one outlier
    out = {}
    for scaling in ("minmax", "percentile"):
        lm = LiveMapping(Mapping(feature="rms", op="add", low=0, high=1, scaling=scaling, clip=[10, 90]), fps=10)
        out[scaling] = np.array([lm(v, control) for v in values])
    after = slice(31, None)
    assert out["minmax"][after].max() < 0.05  # squashed by the outlier
    assert out["percentile"][after].max() == 1.0 and out["percentile"][after].min() == 0.0
    window = values[:34]  # the clip percentiles of what was heard so far (2 x halflife s: all of it)
    lo, hi = np.percentile(window, [10, 90])
    assert out["percentile"][33] == pytest.approx(min(max((values[33] - lo) / (hi - lo), 0), 1))
