"""The `target` field of a bend (issue 20 part 1): latent, unet:<module> and vae:<module> (the VAE decoder, bent
once at decode time through a forward hook removed after the call). Shipped model, CPU, 2 steps."""

import numpy as np
import pytest
import torch
from PIL import Image

from bendlab import Bend, render
from bendlab.ui import recipe
from bendlab.ui.cli import main

STEPS = 2
KW = dict(steps=STEPS, seed=3, output_type="np")
VAE = "vae:decoder.up_blocks.1"


@pytest.fixture
def no_weights(monkeypatch):
    """Loading a model's weights fails the test."""
    def no_model(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr("bendlab.models.Model.load", no_model)


def test_identity_vae_bend_is_bit_identical(pipe):
    plain = render("an orb", pipe=pipe, **KW)
    for b in (Bend("add", 0.0, target=VAE), Bend("multiply", 1.0, target="vae:decoder.mid_block"),
              Bend("add", 0.0, STEPS, target="vae:decoder.conv_out")):
        assert np.array_equal(plain, render("an orb", [b], pipe=pipe, **KW)), b


def test_vae_bend_changes_the_image_and_only_at_decode(pipe):
    plain = render("an orb", pipe=pipe, **KW)
    bent = render("an orb", [Bend("multiply", -1.0, target=VAE)], pipe=pipe, **KW)
    assert np.abs(bent - plain).max() > 0.05
    # it acts on the decoder alone: decoding the unbent final latent with the hook by hand gives the same image
    latent = render("an orb", pipe=pipe, steps=STEPS, seed=3, output_type="latent")
    block = pipe.vae.get_submodule("decoder.up_blocks.1")
    h = block.register_forward_hook(lambda m, i, o: -o)
    try:
        with torch.no_grad():
            dec = pipe.vae.decode(latent[None] / pipe.vae.config.scaling_factor).sample
    finally:
        h.remove()
    np.testing.assert_allclose(bent, (dec / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()[0], atol=1e-5)


def test_unet_target_is_module_and_latent_target_is_the_default(pipe):
    a = Bend("add", 0.5, 1, target="unet:mid_block")
    b = Bend("add", 0.5, 1, module="mid_block")
    assert a == b and a.module == "mid_block" and b.target == "unet:mid_block"
    assert np.array_equal(render("an orb", [a], pipe=pipe, **KW), render("an orb", [b], pipe=pipe, **KW))
    assert Bend("add", 0.5, 1, target="latent") == Bend("add", 0.5, 1)
    assert np.array_equal(render("an orb", [Bend("add", 0.5, 1, target="latent")], pipe=pipe, **KW),
                          render("an orb", [Bend("add", 0.5, 1)], pipe=pipe, **KW))


@pytest.mark.parametrize("kw,msg", [
    (dict(target="vae:decoder.up_blocks.9"), "VAE has no module 'decoder.up_blocks.9'"),
    (dict(target="vae:encoder.down_blocks.0"), "runs when an image is encoded"),
    (dict(op="rotate1", target=VAE), "rotate1 mixes the 4 latent channels"),
    (dict(layer=1, target=VAE), "a VAE bend acts once, when the VAE decodes"),
])
def test_bad_vae_bend_is_one_line_before_the_model(no_weights, kw, msg):
    kw = {"op": "add", "param": 1.0, **kw}
    with pytest.raises(ValueError, match=msg) as e:
        render("an orb", [Bend(**kw)], steps=STEPS)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("target,msg", [
    ("text:x", "target 'text:x' is not"), ("attn:", "target 'attn:' is not"),
    ("nope", "target 'nope' is not"), ("unet:", "target 'unet:' is not"), ("vae:", "target 'vae:' is not"),
    (5, "target 5 is not"),
])
def test_bad_or_planned_targets_are_refused_in_one_line(target, msg):
    with pytest.raises(ValueError, match=msg) as e:
        Bend("add", 1.0, target=target)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="target 'unet:up_blocks.1' and module 'mid_block'"):
        Bend("add", 1.0, target="unet:up_blocks.1", module="mid_block")


def test_recipe_target(tmp_path, pipe):
    p = tmp_path / "r.toml"
    p.write_text(f'prompt = "an orb"\nsteps = {STEPS}\n[[bend]]\nop = "multiply"\nparam = -1.0\ntarget = "{VAE}"\n')
    settings = recipe.read_render(p)
    (b,) = settings.pop("bends")
    assert b == Bend("multiply", -1.0, target=VAE)
    assert Bend.from_dict(b.to_dict()) == b and b.to_dict()["target"] == VAE and "layer" not in b.to_dict()
    assert "target" not in Bend("add", 1.0).to_dict()  # a latent bend's dict is unchanged


def test_cli_target(tmp_path, pipe, monkeypatch):
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    out = tmp_path / "o.png"
    assert main(["render", "an orb", "--steps", str(STEPS), "--seed", "3", "--op", "multiply", "--param", "-1",
                 "--target", VAE, "--out", str(out)]) == 0
    expected = render("an orb", [Bend("multiply", -1.0, target=VAE)], pipe=pipe, steps=STEPS, seed=3)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))


def test_video_mapping_drives_a_vae_target(pipe, clip, tmp_path):
    """RMS -> multiply on a VAE block: the silent frames equal the unbent video's (multiply 1), the loud ones not."""
    from bendlab.mapping import Mapping
    from bendlab.video import render_frames
    from conftest import frame_path, spec_for
    m = Mapping("rms", "multiply", None, 1.0, -1.0, target=VAE)
    assert m.bend(0.5) == Bend("multiply", 0.5, target=VAE)
    bent = render_frames(spec_for(clip, mappings=[m]), tmp_path / "a.mp4", pipe=pipe, progress=False)
    plain = render_frames(spec_for(clip, mappings=[Mapping("rms", "multiply", None, 1.0, 1.0 + 1e-9)]),
                          tmp_path / "b.mp4", pipe=pipe, progress=False)
    diff = [np.abs(np.asarray(Image.open(frame_path(bent, i)), float) - np.asarray(Image.open(frame_path(plain, i))))
            .max() for i in range(12)]
    assert max(diff[:6]) <= 1 and min(diff[6:8]) > 10, diff
    # a latent mapping's record in the render folder is as before targets existed (old folders resume)
    assert "target" not in spec_for(clip).identity()["mappings"][0]
    assert spec_for(clip, mappings=[m]).identity()["mappings"][0]["target"] == VAE


def test_cli_video_target_flag():
    from bendlab.ui.cli import build_parser
    from bendlab.ui.commands.common import mapping_from_args
    a = build_parser().parse_args(["video", "x.wav", "--op", "add", "--target", VAE, "--out", "v.mp4"])
    assert mapping_from_args(a).target == VAE


def test_grid_of_a_vae_bend_denoises_once(pipe):
    """A sweep of a VAE bend: one denoising (STEPS UNet calls in all), then the final latent decoded with each
    parameter as one batch; equal to independent renders as delivered (8-bit frames)."""
    from bendlab import render_grid
    from conftest import assert_frames_close
    params = [1.0, -1.0, 0.5]
    calls = []
    h = pipe.unet.register_forward_hook(lambda *a: calls.append(1))
    try:
        (row,) = render_grid("an orb", "multiply", params, [STEPS], target=VAE, pipe=pipe, steps=STEPS, seed=3,
                             output_type="np")
    finally:
        h.remove()
    assert len(calls) == STEPS
    (alone,) = render_grid("an orb", "multiply", params, [STEPS], target=VAE, branch=False, pipe=pipe, steps=STEPS,
                           seed=3, output_type="np")
    for p, img, one in zip(params, row, alone):
        assert np.array_equal(one, render("an orb", [Bend("multiply", p, target=VAE)], pipe=pipe, **KW))
        assert_frames_close(img, one)
    with pytest.raises(ValueError, match="a VAE bend acts once"):
        render_grid("an orb", "multiply", params, [1], target=VAE, pipe=pipe, steps=STEPS)


def test_grid_keeps_a_base_vae_bend_in_every_branch(pipe):
    from bendlab import render_grid
    from conftest import assert_frames_close
    base = [Bend("multiply", -1.0, target=VAE)]
    kw = dict(base=base, pipe=pipe, steps=STEPS, seed=3, output_type="np")
    shared = render_grid("an orb", "add", [0.0, 0.5], [1], **kw)
    alone = render_grid("an orb", "add", [0.0, 0.5], [1], branch=False, **kw)
    for a, b in zip(shared[0], alone[0]):
        assert_frames_close(a, b)
    assert np.array_equal(alone[0][0], render("an orb", base, pipe=pipe, **KW))
