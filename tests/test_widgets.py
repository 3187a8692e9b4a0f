"""Slider views render once at creation (papermill exercises that) and update the image in place."""

import ipywidgets as w

from bendlab import Bend
from bendlab.widgets import explorer, image_array, render_cached, slider_view

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


def test_explorer_reports_bad_input_without_raising(pipe):
    box = explorer(pipe, steps=STEPS, layer=2)
    two = image_array(box)
    assert 2 * two.shape[0] <= two.shape[1] < 3 * two.shape[0]  # unbent and bent side by side
    box.controls["strip"].value = True
    assert image_array(box).shape[1] > two.shape[0] * 4  # then the layer strip
    box.controls["where"].value = "row:99"
    assert "out of range" in box.status.value
    box.controls["where"].value = "all"
    box.controls["op"].value = "invert"
    box.controls["param"].value = 0.0
    assert "r = 0" in box.status.value
