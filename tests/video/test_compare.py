"""The three methods side by side (`video.compare`, issue 27 section 4), a loaded AnimateDiff pipeline handed to
make_video, and the shipped model's default motion adapter. On the shipped model with the tiny random adapter of
test_method_video (the shipped adapter's own checks: test_shipped_motion.py)."""

import math

import numpy as np
import pytest

from bendlab import models
from bendlab.checks import BendlabValueError
from bendlab.mapping import Mapping
from bendlab.video import METHODS, VideoSpec, compare_methods, consecutive_diffs, make_video, neighbour_ssim

from conftest import write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.wav", onset=0.3, seconds=1.2)


def test_three_methods_render_the_same_song_and_are_measured(clip, adapter, animatediff, pipe, tmp_path):
    spec = VideoSpec(audio=str(clip), prompts=["a floating orb"], fps=20, steps=2,
                     mappings=[Mapping("rms", "rotate1", None, 0.0, math.pi)])
    runs = compare_methods(spec, tmp_path / "cmp", frames=12, motion_adapter=adapter, window=8, overlap=2, pipe=pipe,
                           video_pipe=animatediff)
    assert list(runs) == list(METHODS)
    for r in runs.values():
        assert len(r.frames) == 12 and r.seconds > 0
        np.testing.assert_array_equal(r.diffs, consecutive_diffs(r.frames))
        assert r.diffs.shape == r.ssim.shape == (11,) and ((r.ssim > -1) & (r.ssim <= 1)).all()
        assert f"p95 {r.p95:5.2f}" in r.summary()
    assert len({tuple(r.diffs.round(3)) for r in runs.values()}) == 3  # three different videos
    again = compare_methods(spec, tmp_path / "cmp", frames=12, motion_adapter=adapter, window=8, overlap=2,
                            pipe=pipe, video_pipe=animatediff)  # reused from the render folders
    for label, r in again.items():
        np.testing.assert_array_equal(r.diffs, runs[label].diffs)
        assert r.seconds < runs[label].seconds


def test_neighbour_ssim_is_one_for_a_still_video_and_lower_for_noise():
    rng = np.random.default_rng(0)
    still = [np.full((32, 32, 3), 120, np.uint8)] * 3
    noise = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3)]
    np.testing.assert_allclose(neighbour_ssim(still), 1.0, atol=1e-6)
    assert (neighbour_ssim(noise) < 0.1).all()


def test_make_video_takes_a_loaded_animatediff_pipeline(clip, adapter, animatediff, tmp_path):
    from bendlab.video import video_info
    spec = VideoSpec(audio=str(clip), method="video", motion_adapter=adapter, steps=2, fps=20,
                     mappings=[Mapping("rms", "rotate1", 1, 0.0, math.pi)])
    info = video_info(make_video(spec, tmp_path / "v.mp4", pipe=animatediff, upscale=1, progress=False))
    assert info["frames"] == 12 and info["audio"]


@pytest.mark.parametrize("method", ["txt2img", "video"])
def test_a_pipeline_of_the_other_kind_is_refused_in_one_line(clip, adapter, animatediff, pipe, tmp_path, method):
    given = animatediff if method == "txt2img" else pipe
    kw = {"motion_adapter": adapter} if method == "video" else {}
    spec = VideoSpec(audio=str(clip), method=method, steps=2, mappings=[Mapping("rms", "rotate1", 1)], **kw)
    with pytest.raises(BendlabValueError) as e:
        make_video(spec, tmp_path / "v.mp4", pipe=given, progress=False)
    assert f"for method {method!r}; accepted:" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "v.frames").exists()


def test_the_shipped_model_pairs_with_the_shipped_adapter(clip):
    shipped = models.default_motion_adapter()
    assert shipped == models.default_motion_adapter("bendlab-tiny-sd") == models.default_motion_adapter(
        str(models.SHIPPED))
    assert models.default_motion_adapter("CompVis/stable-diffusion-v1-4") is None
    spec = VideoSpec(audio=str(clip), method="video", mappings=[Mapping("rms", "rotate1", 40)])
    assert spec.motion_adapter == shipped and models.check_motion_adapter("bendlab-tiny-motion", str(models.SHIPPED))
