"""The command line: render, recipes, one-line errors before any model work."""

import numpy as np
import pytest
from PIL import Image

from bendlab import Bend, render
from bendlab.ui.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr()


def test_render_matches_python_api(pipe, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    out = tmp_path / "orb.png"
    code, io = run(capsys, "render", "a floating orb", "--op", "add", "--param", "1", "--layer", "3",
                   "--steps", "4", "--out", str(out))
    assert code == 0, io.err
    expected = render("a floating orb", [Bend("add", 1.0, 3)], pipe=pipe, steps=4)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))


def test_recipe_toml_and_yaml(pipe, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    toml = tmp_path / "r.toml"
    toml.write_text('prompt = "mice"\nsteps = 4\n[[bend]]\nop = "rotate1"\nparam = 3.1416\nlayer = 0\n'
                    '[[bend]]\nop = "add"\nparam = 0.5\nlayer = 2\nwhere = "row:8"\n')
    yaml = tmp_path / "r.yaml"
    yaml.write_text('prompt: mice\nsteps: 4\nbend:\n  - {op: rotate1, param: 3.1416, layer: 0}\n'
                    '  - {op: add, param: 0.5, layer: 2, where: "row:8"}\n')
    outs = []
    for r in (toml, yaml):
        out = tmp_path / (r.suffix[1:] + ".png")
        code, io = run(capsys, "render", "--recipe", str(r), "--out", str(out))
        assert code == 0, io.err
        outs.append(np.asarray(Image.open(out)))
    assert np.array_equal(*outs)


# bad input -> one line before the model loads: one harness, tests/test_inputs.py


def test_help_documents_ranges(capsys):
    for argv in (["--help"], ["render", "--help"], ["video", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
    text = capsys.readouterr().out
    for needle in ("0..STEPS", "fraction:P", "0 < s < 1", "radians", "rotate1", "@harmonic"):
        assert needle in text, needle
    from bendlab import audio
    for feature in audio.FEATURES + audio.PARAMETRIC:  # --feature lists every feature the library has
        assert feature in text.split() or f"{feature}," in text.split(), feature


def test_console_script_installed():
    import shutil
    import subprocess
    import sys
    from pathlib import Path
    exe = shutil.which("bendlab") or str(Path(sys.executable).parent / "bendlab")
    r = subprocess.run([exe, "operators"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "rotate1" in r.stdout and "1/r - x" in r.stdout


def test_video_recipe_mappings(tmp_path):
    from bendlab.ui.cli import build_parser
    from bendlab.ui.commands.video import video_spec_from_args
    r = tmp_path / "v.toml"
    r.write_text('prompts = ["a floating orb", "mice"]\n[[mapping]]\nfeature = "onset"\nop = "add"\nlayer = 10\n'
                 'low = 0.0\nhigh = 2.0\n[[mapping]]\nfeature = "centroid"\nop = "rotate1"\nlayer = 40\n')
    a = build_parser().parse_args(["video", "bendlab/data/piano.ogg", "--recipe", str(r), "--out", "v.mp4"])
    spec = video_spec_from_args(a)
    assert [m.feature for m in spec.mappings] == ["onset", "centroid"] and spec.prompts == ["a floating orb", "mice"]
