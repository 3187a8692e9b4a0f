"""Layer semantics, identity, branching, img2img and module bends on the shipped model (few steps, CPU)."""

import numpy as np
import pytest
import torch
from PIL import Image

from bendlab import Bend, render, render_grid
from bendlab.bend import bending, denoise, encode_prompts, initial_noise
from conftest import assert_frames_close

STEPS = 8


def trace(pipe, bends, steps=STEPS, prompt="a floating orb"):
    """Every layer's latent (0..steps) of one render with these bends."""
    embeds = encode_prompts(pipe, [prompt])
    with bending(pipe, bends, capture=range(steps + 1)) as cb:
        denoise(pipe, embeds, initial_noise(pipe), steps=steps, guidance=7.5, callback=cb)
    return cb.captured


def test_identity_bend_is_bit_identical(pipe):
    a = render("a floating orb", pipe=pipe, steps=STEPS, output_type="np")
    for b in (Bend("add", 0.0, 3), Bend("multiply", 1.0, 0), Bend("rotate1", 0.0, STEPS), Bend("erode", 1, 2)):
        assert np.array_equal(a, render("a floating orb", [b], pipe=pipe, steps=STEPS, output_type="np")), b


def test_bend_at_layer_leaves_earlier_latents_untouched(pipe):
    plain = trace(pipe, [])
    bent = trace(pipe, [Bend("add", 1.0, 5)])
    for L in range(5):
        assert torch.equal(plain[L], bent[L]), L
    torch.testing.assert_close(bent[5], plain[5] + 1)
    assert not torch.allclose(bent[6], plain[6])


def test_layer_0_is_initial_noise_and_layer_n_the_final_latent(pipe):
    plain = trace(pipe, [])
    assert torch.equal(plain[0], initial_noise(pipe))
    # layer N acts after the last step, just before decoding: only the decode sees it
    a = render("a floating orb", pipe=pipe, steps=STEPS, output_type="np")
    b = render("a floating orb", [Bend("add", 1.0, STEPS)], pipe=pipe, steps=STEPS, output_type="np")
    with torch.no_grad():
        dec = pipe.vae.decode((plain[STEPS] + 1) / pipe.vae.config.scaling_factor).sample
    expected = (dec / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()[0]
    np.testing.assert_allclose(b, expected, atol=1e-5)
    assert np.abs(a - b).max() > 0.01


def test_several_bends_apply_in_order(pipe):
    a = trace(pipe, [Bend("add", 1.0, 2), Bend("multiply", 2.0, 2)])
    b = trace(pipe, [Bend("multiply", 2.0, 2), Bend("add", 1.0, 2)])
    p = trace(pipe, [])
    torch.testing.assert_close(a[2], (p[2] + 1) * 2)
    torch.testing.assert_close(b[2], p[2] * 2 + 1)


def test_deterministic_and_prompt_dependent(pipe):
    a = render("a floating orb", pipe=pipe, steps=STEPS, output_type="np")
    b = render("a floating orb", pipe=pipe, steps=STEPS, output_type="np")
    c = render("a gorgeous landscape", pipe=pipe, steps=STEPS, output_type="np")
    d = render("a floating orb", pipe=pipe, steps=STEPS, seed=7, output_type="np")
    assert np.array_equal(a, b)  # the same computation: bit-identical
    assert np.abs(a - c).mean() > 0.01 and np.abs(a - d).mean() > 0.01


def test_branching_grid_equals_independent_renders(pipe):
    kw = dict(pipe=pipe, steps=STEPS, output_type="np")
    fast = render_grid("a floating orb", "rotate1", [0.0, 1.5, 3.0], [0, 4, STEPS], **kw)
    slow = render_grid("a floating orb", "rotate1", [0.0, 1.5, 3.0], [0, 4, STEPS], branch=False, **kw)
    assert_frames_close(fast, slow)  # other batch sizes: 8-bit frames within FRAME_LEVELS
    single = render("a floating orb", [Bend("rotate1", 1.5, 4)], **kw)
    assert_frames_close(fast[1][1], single)


def test_img2img_layers_count_steps_run(pipe):
    init = Image.new("RGB", (64, 64), (200, 40, 40))
    a = render("", init_image=init, strength=0.5, pipe=pipe, steps=STEPS, output_type="np")
    b = render("", [Bend("add", 1.0, STEPS // 2)], init_image=init, strength=0.5, pipe=pipe, steps=STEPS,
               output_type="np")
    assert np.abs(a - b).max() > 0.01
    with pytest.raises(ValueError, match=f"outside 0..{STEPS // 2}"):
        render("", [Bend("add", 1.0, STEPS // 2 + 1)], init_image=init, strength=0.5, pipe=pipe, steps=STEPS)


def test_module_bend_hooks_are_removed(pipe):
    a = render("a floating orb", pipe=pipe, steps=STEPS, output_type="np")
    b = render("a floating orb", [Bend("multiply", 0.0, (0, 3), module="mid_block")], pipe=pipe, steps=STEPS,
               output_type="np")
    assert np.abs(a - b).max() > 1e-3
    assert not pipe.unet.mid_block._forward_hooks
    assert "prepare_latents" not in vars(pipe)
    np.testing.assert_array_equal(a, render("a floating orb", pipe=pipe, steps=STEPS, output_type="np"))


@pytest.mark.parametrize("kwargs,msg", [
    (dict(bends=[Bend("add", 1.0, STEPS + 1)]), f"outside 0..{STEPS}"),
    (dict(bends=[Bend("add", 1.0, 0, "row:99")]), "out of range"),
    (dict(bends=[Bend("add", 1.0, 0, module="nope")]), "no module"),
    (dict(seed=-1), "seed"), (dict(steps=0), "steps"), (dict(guidance=float("nan")), "guidance"),
])
def test_bad_render_input_one_line(pipe, kwargs, msg):
    with pytest.raises(ValueError, match=msg) as e:
        render("a floating orb", pipe=pipe, **{"steps": STEPS, **kwargs})
    assert "\n" not in str(e.value)


def test_bad_model_paths(tmp_path):
    from bendlab.models import resolve
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a diffusers pipeline"):
        resolve(tmp_path / "empty")
    assert resolve("CompVis/stable-diffusion-v1-4") == "CompVis/stable-diffusion-v1-4"  # resolved, not fetched


def test_nested_bending_keeps_the_outer_patch(pipe):
    """The installer restores what it found: an inner `bending` leaves the outer one's patches in place."""
    from diffusers.callbacks import PipelineCallback
    with bending(pipe, [Bend("add", 1.0, 0)], start=2) as outer:
        outer_prepare, outer_steps = pipe.prepare_latents, pipe.scheduler.set_timesteps
        with bending(pipe, [Bend("add", 2.0, 0)], start=3):
            assert pipe.prepare_latents is not outer_prepare
        assert pipe.prepare_latents is outer_prepare and pipe.scheduler.set_timesteps is outer_steps
    assert "prepare_latents" not in vars(pipe) and "set_timesteps" not in vars(pipe.scheduler)
    assert isinstance(outer, PipelineCallback) and outer.tensor_inputs == ["latents"]
