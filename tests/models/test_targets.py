"""`bendlab targets` and `models.bend_targets`: what a bend can target, read from a model's configs (no weights)."""

import pytest

from bendlab import models, render
from bendlab.bend import Bend
from bendlab.ui.cli import main
from bendlab.bend import check_bends, latent_shape


@pytest.fixture
def no_weights(monkeypatch):
    """Loading a model's weights fails the test."""
    def no_model(*a, **k):
        raise AssertionError("weights were loaded to list the targets")
    monkeypatch.setattr("bendlab.models.load_pipeline", no_model)
    monkeypatch.setattr("bendlab.models.Model.load", no_model)


def test_shipped_model_lists_latent_and_unet_blocks(no_weights):
    targets = {t.name: t for t in models.bend_targets()}
    assert targets["latent"].shape == (4, 16, 16) and targets["latent"].bendable
    assert targets["text"].shape == (77, 96) and targets["text"].bendable  # tokens x the text encoder's width
    for name in ("conv_in", "down_blocks.0", "down_blocks.2.attentions.0", "mid_block", "mid_block.resnets.1",
                 "up_blocks.1.upsamplers.0", "conv_out"):
        assert targets[name].bendable, name
    assert targets["down_blocks.0"].shape == (32, 8, 8)  # after its downsampler
    assert targets["mid_block"].kind == "UNetMidBlock2DCrossAttn"
    assert "time_embedding" not in targets  # not a feature map: a bend of it is not offered
    vae = [t for t in targets.values() if t.name.startswith("vae:")]
    assert vae and all(t.bendable for t in vae)  # bent at decode (tests/bend/test_vae_target.py)
    assert targets["vae:decoder.up_blocks.2"].shape == (16, 64, 64)


def test_the_shipped_models_table_lists_what_its_modules_do(no_weights):
    """`bendlab targets` prints the shipped model from its table (no torch): it must be what building the modules
    lists. When this fails (a diffusers or bendlab change lists other modules), rewrite the table:
    python -c "from bendlab.models.targets import write_table; write_table()" """
    from bendlab.models.targets import built_targets, read_table
    path = models.resolve(None)
    tabled = read_table(path)
    assert tabled is not None, "the shipped model's table is missing or its configs changed: rewrite it"
    assert tabled == built_targets(path)
    assert models.bend_targets() == tabled


def test_a_table_is_read_only_while_its_configs_are_unchanged(tmp_path):
    """A model folder's table is what `bend_targets` lists while the configs it was written from are there; an
    edited config, or a table that is not one, lists from the modules."""
    import json
    import os
    import shutil

    from bendlab.models.targets import TABLE, read_table
    shipped = models.resolve(None)
    folder = tmp_path / "model"
    shutil.copytree(shipped, folder, copy_function=os.symlink)  # links: the shipped files are never written
    assert read_table(str(folder)) == read_table(shipped) is not None
    config = folder / "vae" / "config.json"
    text = config.read_text()
    config.unlink()
    config.write_text(json.dumps({**json.loads(text), "sample_size": 32}))
    assert read_table(str(folder)) is None
    (folder / TABLE).unlink()
    (folder / TABLE).write_text("not a table")
    assert read_table(str(folder)) is None
    assert models.bend_targets(folder)[0].name == "latent"  # from the modules


def test_every_listed_unet_module_is_accepted_by_a_module_bend(no_weights):
    skeleton = models.skeleton()
    shape = latent_shape(skeleton)
    names = [t.name for t in models.bend_targets() if t.bendable and t.name not in ("latent", "text")
             and not t.name.startswith("attn:")]
    unet = [n for n in names if not n.startswith("vae:")]
    assert len(unet) > 20 and len(names) - len(unet) > 10
    check_bends(skeleton, [Bend("add", 0.5, layer=1, module=n) for n in unet], 2, shape)
    check_bends(skeleton, [Bend("add", 0.5, target=n) for n in names if n.startswith("vae:")], 2, shape)
    with pytest.raises(ValueError, match="UNet has no module"):  # the check can fail
        check_bends(skeleton, [Bend("add", 0.5, layer=1, module="down_blocks.9")], 2, shape)


@pytest.mark.parametrize("kind", ["Transformer2DModel", "Upsample2D"])
def test_a_listed_module_bends_a_render(pipe, kind):
    module = next(t.name for t in models.bend_targets() if t.kind == kind)
    kw = dict(steps=2, seed=1, output_type="np")
    plain = render("an orb", pipe=pipe, **kw)
    bent = render("an orb", [Bend("add", 1.0, layer=(0, 1), module=module)], pipe=pipe, **kw)
    assert abs(bent - plain).max() > 1 / 255


def test_cli_prints_the_table(no_weights, capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any(line.split()[:2] == ["latent", "latent"] and "4x16x16" in line for line in lines)
    assert any(line.split()[0] == "down_blocks.0" and "32x8x8" in line for line in lines)
    assert any(line.strip().startswith("mid_block ") for line in lines)
    assert any(line.strip().startswith("vae:decoder.mid_block") and line.endswith("bendable") for line in lines)


@pytest.mark.parametrize("model,msg", [("./no-such-folder", "model './no-such-folder' does not exist"),
                                       ("nobody/not-in-the-cache", "could not read the unet config of model "
                                                                   "'nobody/not-in-the-cache'")])
def test_cli_bad_model_is_one_line(no_weights, capsys, model, msg):
    """A missing folder, and a hub id not in the local cache (HF_HUB_OFFLINE: nothing is downloaded)."""
    assert main(["targets", "--model", model]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"bendlab targets: error: {msg}"), err


def test_attention_modules_are_listed_with_queries_x_keys(no_weights, capsys):
    """Every `Attention` module of the shipped UNet, self (attn1: 16 queries x 16 keys at its 4x4 block) and cross
    (attn2: 16 x 77 prompt tokens), each accepted by an attention bend (a token selection for attn2 only)."""
    from bendlab.bend import attention_modules
    skeleton = models.skeleton()
    attn = [t for t in models.bend_targets() if t.name.startswith("attn:")]
    assert {t.name.removeprefix("attn:") for t in attn} == {n for n, _ in attention_modules(skeleton.unet)}
    assert len(attn) == 8 and all(t.bendable for t in attn)
    for t in attn:
        cross = t.name.endswith("attn2")
        assert t.kind == ("Attention (cross)" if cross else "Attention (self)")
        assert t.shape == ((16, 77) if cross else (16, 16)), t
    assert attn[0].name.startswith("attn:down_blocks.") and attn[-1].name.startswith("attn:up_blocks.")  # data flow
    check_bends(skeleton, [Bend("add", 0.5, 1, "token:3" if t.name.endswith("attn2") else "all", target=t.name)
                           for t in attn], 2, latent_shape(skeleton))
    assert main(["targets"]) == 0
    assert any(line.split()[:4] == [attn[1].name, "Attention", "(cross)", "16x77"] for line in
               capsys.readouterr().out.splitlines())

