"""The figure spec, savefig's manifest, and the committed figures/ folder."""

import json
import re

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from bendlab.ui import figures  # noqa: E402
from bendlab.bend import Bend  # noqa: E402

README = figures.REPO_FIGURES / "README.md"


def test_spec_covers_the_paper():
    f = figures.FIGURES
    fig1 = {p.label: p for p in f["fig1-pointwise"].panels}
    assert fig1["(b) add 1, layer 40"].bends == [{"op": "add", "param": 1.0, "layer": 40, "where": "all"}]
    assert fig1["(c) add 1, layer 0, 5%"].bends[0]["where"] == "fraction:0.05"
    assert [p.bends[0]["layer"] for p in f["fig1-pointwise"].panels if "invert" in p.label] == [0, 3, 6, 9, 49]
    assert len(f["fig2-rotation-sweep"].sweeps[0].params) >= 8
    assert {p.prompt for p in f["fig3-semantic-shift"].panels} == set(figures.HOMOGRAPHS)
    assert any(b["layer"] == 50 for p in f["disc-morphology"].panels for b in p.bends)
    for op in figures.SWEEP_PARAMS:
        assert f[f"sweep-{op}"].sweeps[0].layers == [0, 10, 20, 30, 40, 49, 50]


def test_every_bend_in_the_spec_is_valid():
    for fig in figures.FIGURES.values():
        for p in fig.panels:
            for b in p.bends:
                Bend.from_dict(b).check(50, (1, 4, 16, 16))
        for s in fig.sweeps:
            for L in s.layers:
                for prm in s.params:
                    Bend(s.op, prm, L, s.where, s.norm).check(50, (1, 4, 16, 16))


def test_fit_layer():
    assert figures.fit_layer(40, 50) == 40 and figures.fit_layer(40, 10) == 8 and figures.fit_layer(50, 10) == 10


def test_savefig_writes_png_and_manifest(tmp_path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    p = figures.savefig(fig, "fig2-rotation-sweep", tmp_path, {"steps": 3})
    m = json.loads((tmp_path / "manifest.json").read_text())
    assert p.is_file() and m["fig2-rotation-sweep"]["spec_hash"] == figures.FIGURES["fig2-rotation-sweep"].spec_hash()
    assert m["fig2-rotation-sweep"]["steps"] == 3


def test_readme_table_is_generated_from_the_spec():
    assert figures.readme_table() in README.read_text(), "regenerate figures/README.md from figures.readme_table()"


def test_every_listed_figure_exists_and_matches_the_current_spec():
    listed = re.findall(r"\(([\w-]+\.png)\)", README.read_text())
    assert len(listed) == len(figures.FIGURES)
    manifest = json.loads((figures.REPO_FIGURES / "manifest.json").read_text())
    for fname in listed:
        name = fname[:-4]
        assert (figures.REPO_FIGURES / fname).is_file(), fname
        assert manifest[name]["spec_hash"] == figures.FIGURES[name].spec_hash(), f"{fname} is stale: make figures"
        assert manifest[name]["steps"] == 50 and manifest[name]["seed"] == 46  # committed at full settings


@pytest.mark.parametrize("name", ["fig1-pointwise", "fig2-rotation-sweep"])
def test_render_figure_panels(pipe, name):
    panels = figures.render_figure(name, pipe, steps=5, progress=False)
    fig = figures.FIGURES[name]
    assert len(panels) == len(fig.panels) + sum(len(s.params) * len(s.layers) for s in fig.sweeps)
    import numpy as np
    first, second = np.asarray(panels[0][1], float), np.asarray(panels[1][1], float)
    assert np.abs(first - second).mean() > 0.5  # the operator changed the image


def test_figure_positions_are_relative_to_the_latent():
    """Rows and columns in the spec are relative (row:mid), so a figure means the same at any model size: row 8
    of the teaching model's 16, row 32 of SD v1.4's 64 (the authors' row)."""
    from bendlab.bend import Where
    wheres = {b["where"] for fig in figures.FIGURES.values() for p in fig.panels for b in p.bends}
    wheres |= {s.where for fig in figures.FIGURES.values() for s in fig.sweeps}
    assert not [w for w in wheres if w.split(":")[0] in ("row", "column") and w.split(":")[1].isdigit()], wheres
    mid = Where.parse("row:mid")
    assert mid.position((1, 4, 16, 16)) == 8 and mid.position((1, 4, 64, 64)) == 32
    assert str(mid) == "row:mid" and str(Where.parse("column:0.25")) == "column:0.25"
    assert Where.parse("column:0.25").mask((1, 4, 64, 64))[0, 0, 0].nonzero().flatten().tolist() == [16]
    with pytest.raises(ValueError, match=r"accepted: row or column at a fraction in \[0, 1\)"):
        Where(kind="row", rel=1.5)


def test_labels_say_the_layer_actually_used(pipe):
    panels = figures.render_figure("fig2-rotation-sweep", pipe, steps=5, progress=False)
    assert panels[0][0] == "0.00 rad, layer 2"  # layer 20 of 50 is layer 2 of 5


def test_a_notebook_run_never_writes_the_committed_figures(tmp_path, monkeypatch):
    """A notebook opened and run as a user does (no $BENDLAB_FIGURES, its folder as working folder) saves into
    out/figures/ beside it; the repository's figures/ and its manifest are left as they are."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    monkeypatch.delenv("BENDLAB_FIGURES", raising=False)
    monkeypatch.chdir(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in figures.REPO_FIGURES.iterdir()}
    fig = plt.figure(figsize=(1, 1))
    path = figures.savefig(fig, "fig1-pointwise")
    plt.close(fig)
    assert path.resolve() == (tmp_path / "out" / "figures" / "fig1-pointwise.png").resolve()
    assert (tmp_path / "out" / "figures" / "manifest.json").is_file()
    assert {p.name: p.stat().st_mtime_ns for p in figures.REPO_FIGURES.iterdir()} == before
