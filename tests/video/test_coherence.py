"""The img2img chain keeps its image: colour coherence (Deforum's color_coherence) and the drift it is measured by."""

import numpy as np
import pytest
from conftest import frame_path, spec_for
from PIL import Image

from bendlab.video import COHERENCE, match_colors
from bendlab.video import drift
from bendlab.mapping import Mapping
from bendlab.video import render_frames


def _img(seed, offset=0.0, scale=1.0):
    rng = np.random.default_rng(seed)
    a = np.clip((rng.random((32, 32, 3)) * 0.5 + 0.25) * scale + offset, 0, 1)
    return Image.fromarray((a * 255).round().astype(np.uint8))


def test_lab_matching_moves_the_lightness_to_the_reference():
    ref, dark = _img(0), _img(1, offset=-0.2, scale=0.4)  # a darker, flatter picture
    d = drift([ref, dark, match_colors(dark, ref, "lab")])
    assert d.change()[1] > 0.3  # the dark picture is far from the reference ...
    assert d.change()[2] < 0.05, d.change()  # ... the matched one within 5% (8-bit rounding and gamut clipping)


def test_rgb_matching_moves_each_channels_mean_and_spread():
    ref, dark = _img(0), _img(1, offset=-0.2, scale=0.4)
    r, o = (np.asarray(im, float).reshape(-1, 3) for im in (ref, match_colors(dark, ref, "rgb")))
    assert np.abs(r.mean(0) - o.mean(0)).max() < 1 and np.abs(r.std(0) - o.std(0)).max() < 1  # within 1 level


def test_none_is_the_identity_and_hsv_keeps_hue():
    a, b = _img(0), _img(1, offset=-0.2)
    assert np.array_equal(np.asarray(match_colors(a, b, "none")), np.asarray(a))
    assert np.asarray(match_colors(a, b, "hsv")).shape == (32, 32, 3)
    with pytest.raises(ValueError, match="unknown colour coherence 'foo'"):
        match_colors(a, b, "foo")


def test_drift_of_a_still_sequence_is_none():
    a = _img(0)
    d = drift([a, a, a])
    assert np.allclose(d.change(), 0) and np.allclose(d.ssim, 1, atol=1e-4)
    assert "frame 10" not in d.summary() and "only 3 frames" in d.summary()


def test_coherent_chain_keeps_frame_0s_lightness(pipe, clip, tmp_path):
    """With coherence every frame after the first is matched to frame 0: its lightness statistics stay within a
    few percent, whatever the img2img passes did; without it the frames are the pipeline's own."""
    kw = dict(method="img2img", strength=0.5, mappings=[Mapping("rms", "add", 1, 0, 1)])
    plain = render_frames(spec_for(clip, **kw), tmp_path / "plain.mp4", pipe=pipe, limit=6, progress=False)
    kept = render_frames(spec_for(clip, color_coherence="lab", **kw), tmp_path / "kept.mp4", pipe=pipe, limit=6,
                         progress=False)
    assert frame_path(plain, 0).read_bytes() == frame_path(kept, 0).read_bytes()  # frame 0 is not matched
    d = drift(frame_path(kept, i) for i in range(6))
    assert d.change().max() < 0.05, d.change()
    assert any(frame_path(plain, i).read_bytes() != frame_path(kept, i).read_bytes() for i in range(1, 6))


def test_noise_is_seeded_and_changes_the_chain(pipe, clip, tmp_path):
    kw = dict(method="img2img", strength=0.5, img2img_noise=0.1, mappings=[Mapping("rms", "add", 1, 0, 1)])
    a = render_frames(spec_for(clip, **kw), tmp_path / "a.mp4", pipe=pipe, limit=3, progress=False)
    b = render_frames(spec_for(clip, **kw), tmp_path / "b.mp4", pipe=pipe, limit=3, progress=False)
    c = render_frames(spec_for(clip, **{**kw, "img2img_noise": 0.0}), tmp_path / "c.mp4", pipe=pipe, limit=3,
                      progress=False)
    assert all(frame_path(a, i).read_bytes() == frame_path(b, i).read_bytes() for i in range(3))
    assert frame_path(a, 2).read_bytes() != frame_path(c, 2).read_bytes()


@pytest.mark.parametrize("kw,msg", [(dict(color_coherence="lab2"), "unknown color coherence 'lab2'; accepted: "
                                      + ", ".join(COHERENCE)),
                                     (dict(img2img_noise=2.0), "img2img noise 2.0 is not >= 0 and <= 1")])
def test_bad_coherence_settings_are_one_line(clip, kw, msg):
    with pytest.raises(ValueError, match=msg):
        spec_for(clip, method="img2img", **kw)
