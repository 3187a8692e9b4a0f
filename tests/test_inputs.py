"""Bad input, as a hostile new user gives it: each case one line naming the value and what is accepted, exit
code 2, and no model loaded (load_pipeline is replaced by a function that fails the test if called).

Table: argv (or an API call) -> a fragment of the expected one-line message."""

import pytest
import torch
from PIL import Image

from bendlab import Bend, render, render_grid
from bendlab.cli import main
from bendlab.video import Mapping, VideoSpec

PIANO = "PIANO"  # replaced by the shipped clip's path
R = ["render", "x"]
V = ["video", PIANO, "--op", "rotate1", "--out", "v.mp4"]

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

    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the input was checked")
    monkeypatch.setattr("bendlab.models.load_pipeline", no_model)
    monkeypatch.setattr("bendlab.models._load", no_model)
    monkeypatch.chdir(tmp_path)
    return piano


@pytest.mark.parametrize("argv,msg", CASES, ids=[" ".join(a[2:] if a[0] == "video" else a[1:])[:60]
                                                  for a, _ in CASES])
def test_cli_refuses_bad_input_in_one_line_before_the_model(sandbox, capsys, argv, msg):
    argv = [str(sandbox) if a == PIANO else a for a in argv]
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and msg in lines[0], err


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
    monkeypatch.setattr("bendlab.models.load_pipeline", lambda *a, **k: pipe)
    r = tmp_path / "r.toml"
    r.write_text('prompt = "mice"\nseed = 3\nsteps = 4\n[[bend]]\nop = "add"\nparam = 0.5\nlayer = 2\n')
    out = tmp_path / "o.png"
    assert main(["render", "--recipe", str(r), "--seed", "5", "--out", str(out)]) == 0, capsys.readouterr().err
    expected = render("mice", [Bend("add", 0.5, 2)], pipe=pipe, seed=5, steps=4)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))
    recipe_seed = render("mice", [Bend("add", 0.5, 2)], pipe=pipe, seed=3, steps=4)
    assert not np.array_equal(np.asarray(Image.open(out)), np.asarray(recipe_seed))  # so the flag's seed decided
