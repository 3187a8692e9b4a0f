"""Slider views render once at creation (papermill exercises that) and update the image in place; the explorer
branches from cached latents, re-ranges its slider with the operator, and keeps the last picture on bad input."""

import gc
import weakref

import numpy as np
import pytest
import ipywidgets as w

from bendlab import Bend, render
from bendlab.ui.widgets import (EXPLORER_SIDE, STRIP_SIDE, explorer, image_array, render_branched, render_cached,
                                slider_view)
from conftest import assert_frames_close, wait_until

STEPS = 4


def test_slider_changes_the_image(pipe):
    def view_angle(theta):
        return render_cached(pipe, "a gorgeous landscape", [Bend("rotate1", theta, 0)], 46, STEPS)

    box = slider_view(view_angle, theta=w.FloatSlider(value=0.0, min=0, max=6.28))
    before = image_array(box)
    assert box.controls["theta"].continuous_update is False
    box.controls["theta"].value = 3.14
    after = image_array(box)
    assert before.shape == after.shape and abs(before.astype(int) - after).mean() > 1


def test_branched_render_equals_the_full_render(pipe):
    for bend in (None, Bend("rotate1", 1.0, 0), Bend("add", 0.7, 2, "row:3"), Bend("multiply", 1.5, STEPS)):
        full = render("mice", [bend] if bend else [], pipe=pipe, steps=STEPS)
        assert_frames_close(full, render_branched(pipe, "mice", bend, 46, STEPS))  # other batch: FRAME_LEVELS


def test_explorer_slider_follows_the_operator(pipe):
    box = explorer(pipe, steps=STEPS, layer=2, op="rotate1", param=1.0)
    param = box.controls["param"]
    assert isinstance(param, w.FloatSlider) and param.max > 6.28 and param.continuous_update is False
    box.controls["op"].value = "erode"
    assert (param.min, param.max, param.step) == (1, 8, 1) and param.value == 1 and param.readout_format == ".0f"
    box.controls["op"].value = "add"
    assert param.min == -3 and param.max == 3


def test_explorer_keeps_the_picture_and_says_why_on_bad_input(pipe):
    box = explorer(pipe, steps=STEPS, layer=2)
    two = image_array(box)
    plain = np.asarray(render("a floating orb", pipe=pipe, steps=STEPS))
    s = EXPLORER_SIDE // plain.shape[1]  # before and after enlarged s times (nearest neighbour: crisp pixels)
    side = plain.shape[1] * s
    assert 2 * side <= two.shape[1] < 2 * side + 20  # two large panels side by side, and no third
    assert int(box.image.layout.height.removesuffix("px")) == two.shape[0]  # the widget fits it: no empty band
    left, right = two[:side:s, :side:s], two[:side:s, two.shape[1] - side::s]
    assert np.array_equal(two[:s, :s], np.broadcast_to(two[0, 0], (s, s, 3)))  # one model pixel: one colour
    assert_frames_close(left, plain)  # the unbent image (branched from the cache: FRAME_LEVELS)
    assert np.abs(left.astype(int) - right).mean() > 1  # beside it, the bent one
    box.controls["strip"].value = True
    strip = image_array(box)
    assert strip.shape[1] == two.shape[1] and strip.shape[0] > two.shape[0] + STRIP_SIDE  # the strip beneath
    assert np.array_equal(strip[:two.shape[0] - 40], two[:two.shape[0] - 40])  # the large pair unchanged above
    box.controls["where"].value = "row:99"
    assert "out of range" in box.status.value
    assert np.array_equal(image_array(box), strip)  # the last picture stays
    box.controls["where"].value = "all"
    box.controls["op"].value = "invert"
    exact = box.children[2].children[1]
    exact.value = 0.0  # typed beside the slider: outside its range, so the range widens
    assert box.controls["param"].value == 0.0 and "r = 0" in box.status.value
    exact.value = 2.0
    assert "invert(2)" in box.status.value and not np.array_equal(image_array(box), strip)
    assert "not trained on" not in box.status.value
    box.controls["prompt"].value = "a red car"  # a word the shipped model never saw: noted under the picture
    assert "not trained on &#x27;car&#x27;" in box.status.value


def test_a_closed_explorer_frees_its_pipeline(pipe):
    options = {k: v for k, v in pipe.config.items() if k in ("requires_safety_checker", "force_zeros_for_empty_prompt")}
    own = type(pipe)(**pipe.components, **options)  # a pipeline of its own (load_pipeline keeps the one it loaded)
    alive = weakref.ref(own)
    box = explorer(own, steps=2, layer=1)
    render_cached(own, "mice", [], 46, 2)  # the notebooks' slider cells share its caches
    box.close()  # its widgets leave ipywidgets' registry (which holds every open widget) with their callbacks
    del own, box
    gc.collect()
    assert alive() is None  # nothing in bendlab keeps a pipeline once its explorer is closed


def test_live_view_plays_shows_and_passes_slider_moves_to_the_session(tmp_path):
    """Headless: the live view's image and readouts fill as a session plays; a slider moved while it plays
    reaches the running session's controls (and the recording)."""
    import time

    from bendlab import load_pipeline
    from bendlab.live import LiveSpec
    from bendlab.mapping import Mapping
    from bendlab.session import read_session
    from bendlab.ui.widgets import LiveView
    view = LiveView(LiveSpec(mappings=[Mapping("rms", "rotate1", low=0.0, high=3.0)]), load_pipeline(device="cpu"),
                    "bendlab/data/piano.ogg", output="none", out_dir=tmp_path, record=True)
    assert view.run(seconds=1.0) == "seconds"
    assert view.image.value[:4] == b"\x89PNG" and "fps" in view.fps.value and "shown" in view.frames.value
    assert view.frames.value.endswith("showing '3D mesh geometry'"), view.frames.value  # the prompt on screen
    first = view.live
    view.start()
    wait_until(lambda: view.live is not first and view.live.controls is not None and view.live.stats.frames >= 3,
               60, "the restarted live view to show 3 frames")
    assert view.status.value.startswith("playing piano.ogg"), view.status.value  # the file, in words
    high = next(s for row in view.box.children if hasattr(row, "children") for s in row.children
                if getattr(s, "description", "") == "mapping 1: high")
    high.value = 1.5
    time.sleep(0.5)
    view.stop()
    s = read_session(view.session)
    assert s.highs[0][0] == 3.0 and s.highs[0][-1] == 1.5


def test_explorer_target_dropdown_renders_a_vae_bend(pipe):
    """The target Dropdown lists `bendlab targets` (latent first); a VAE decoder block renders with
    Bend(..., target=...) (decoding the cached final latent), unlike the latent bend; a target that does not
    take the operator says so in the status and keeps the picture."""
    from bendlab.models import bend_targets
    box = explorer(pipe, steps=STEPS, layer=2, op="multiply", param=2.0)
    targets = box.controls["target"]
    assert targets.value == "latent" and targets.options[0] == "latent"
    listed = {t.name for t in bend_targets()}
    assert {"unet:mid_block", "vae:decoder.up_blocks.1", "text"} <= set(targets.options)
    assert {o.removeprefix("unet:") for o in targets.options} <= listed
    latent = image_array(box)
    targets.value = "vae:decoder.up_blocks.1"
    vae = image_array(box)
    assert vae.shape == latent.shape and np.abs(vae.astype(int) - latent).mean() > 1
    assert "multiply(2) on vae:decoder.up_blocks.1 when the VAE decodes" in box.status.value
    full = np.asarray(render("a floating orb", [Bend("multiply", 2.0, target="vae:decoder.up_blocks.1")], pipe=pipe,
                             steps=STEPS))
    s = EXPLORER_SIDE // full.shape[1]
    side = full.shape[1] * s
    assert_frames_close(vae[:side:s, vae.shape[1] - side::s], full)  # the bent panel: a full render's image
    ops = box.controls["op"]
    assert "rotate1" not in ops.options and "erode" in ops.options  # a VAE block: no channel mixing
    assert not {"attn_rotate", "attn_translate"} & set(ops.options) and ops.value == "multiply"
    box.controls["where"].value = "token:orb"  # a where the target does not take: one line, the picture kept
    assert "selects prompt tokens" in box.status.value and np.array_equal(image_array(box), vae)
    box.controls["where"].value = "all"
    targets.value = "latent"
    assert {"rotate1", "hadamard"} <= set(ops.options) and "attn_rotate" not in ops.options
    assert ops.value == "multiply" and "at layer 2, where all" in box.status.value
    assert not np.array_equal(image_array(box), vae)
    ops.value = "rotate1"
    targets.value = "text"  # rotate1 is not point-wise: the first operator text takes instead
    assert ops.options == ("add", "multiply", "threshold", "gate", "invert") and ops.value == "add"
    assert "add(" in box.status.value and "on text at step 2" in box.status.value


def test_explorer_operator_the_target_does_not_take_is_one_line(pipe):
    with pytest.raises(ValueError, match="operator 'rotate1' is not one the explorer offers for target 'text'; "
                                         "accepted: add, multiply"):
        explorer(pipe, steps=STEPS, op="rotate1", target="text")
