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


def test_render_upscale_repeats_each_pixel(pipe, tmp_path, capsys, monkeypatch):
    """--upscale 4: the 64x64 render saved as 256x256, each pixel a crisp 4x4 block (nearest neighbour)."""
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    out = tmp_path / "orb.png"
    code, io = run(capsys, "render", "a floating orb", "--steps", "4", "--upscale", "4", "--out", str(out))
    assert code == 0, io.err
    small = np.asarray(render("a floating orb", pipe=pipe, steps=4))
    big = np.asarray(Image.open(out))
    assert small.shape[:2] == (64, 64) and big.shape[:2] == (256, 256), (small.shape, big.shape)
    assert np.array_equal(big, small.repeat(4, axis=0).repeat(4, axis=1))


# ------------------------------------------------------------------------------------------ the listing commands
def assert_table(lines: list[str]) -> None:
    """A header row, then rows whose every column starts where its header does (columns are two or more spaces
    apart in the header); a line blank up to the last column continues the row above it there."""
    import re
    header, rows = lines[0], lines[1:]
    starts = [m.end() for m in re.finditer(r"  +", header)]
    assert starts and rows, lines
    for line in rows:
        if not line[:starts[-1]].strip():  # the last column, wrapped
            assert line[starts[-1]] != " ", line
            continue
        for s in starts:
            assert line[s - 1] == " " and line[s] != " ", f"column at {s} of {header!r} not aligned in {line!r}"


def test_operators_prints_an_aligned_table_with_a_header(capsys, monkeypatch):
    from bendlab.bend.operators import OPERATORS
    monkeypatch.setenv("COLUMNS", "100")  # the terminal's width, as shutil.get_terminal_size reads it
    assert main(["operators"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["operator", "parameter"] and "formula" in lines[0]
    assert_table(lines)
    assert [line.split()[0] for line in lines[1:] if not line.startswith(" ")] == list(OPERATORS)
    assert max(map(len, lines)) <= 100


def test_targets_prints_aligned_tables_with_headers(capsys, monkeypatch):
    """One table per kind of target (UNet, attention, VAE decoder), each under a title saying how a bend names
    them; the shipped model's fit a 100-column terminal."""
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["targets"]) == 0
    sections = capsys.readouterr().out.strip().split("\n\n")
    assert [s.split()[0] for s in sections] == ["The", "UNet", "VAE"]
    for section in sections:
        lines = section.splitlines()
        header = next(i for i, line in enumerate(lines) if line.split() == ["target", "what", "shape", "status"])
        assert_table(lines[header:])
        assert max(map(len, lines)) <= 100


def loaded_modules(code: str) -> set[str]:
    """The modules a fresh Python has imported after running `code`."""
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(' '.join(sys.modules))"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_the_package_imports_torch_only_when_asked():
    """`import bendlab` is light (PEP 562: `from bendlab import render` imports bend, and torch, on first use)."""
    assert "torch" not in loaded_modules("import bendlab, bendlab.checks, bendlab.paper")
    assert "torch" in loaded_modules("from bendlab import render, Bend, load_pipeline")
    import bendlab
    assert all(getattr(bendlab, name) is not None for name in bendlab.__all__)


def test_the_parser_and_the_listing_commands_import_no_torch():
    """`bendlab --help`, `bendlab operators` and `bendlab targets` start at once: declaring every command's flags
    reads only modules that do not import torch (the operators' `catalogue`, the settings' dataclasses), and the
    listings print from the catalogue and the shipped model's table (`benchmarks/bench.py --only cli` times them)."""
    parser = loaded_modules("import bendlab.ui.cli as c\nc.build_parser()")
    assert "torch" not in parser and {"bendlab.video.spec", "bendlab.live.loop"} <= parser  # the flags read them
    for command in ("operators", "targets"):
        loaded = loaded_modules(f"import contextlib, io\nfrom bendlab.ui.cli import main\n"
                                f"with contextlib.redirect_stdout(io.StringIO()):\n    assert main([{command!r}]) == 0")
        assert not {"torch", "diffusers"} & loaded, command
