"""The img2img chain carries its motion: the previous frame warped by the optical flow of the last two (OpenCV's
DIS, Deforum's optical-flow warping) before it seeds the next (`VideoSpec.flow`, `bendlab.video.motion`)."""

import numpy as np
import pytest
from conftest import frame_path, same_frames, spec_for
from PIL import Image
from scipy.ndimage import gaussian_filter

from bendlab.video import motion
from bendlab.video import frames_dir
from bendlab.mapping import Mapping
from bendlab.video import render_frames

SIZE, PAD = 64, 16
KW = dict(method="img2img", strength=0.5, mappings=[Mapping("rms", "rotate1", 1, 0, 3.14)])  # 4 x 0.5: layers 0..2


def _texture(seed=0):
    rng = np.random.default_rng(seed)
    a = gaussian_filter(rng.random((SIZE + 2 * PAD, SIZE + 2 * PAD, 3)), (2.5, 2.5, 0))
    return (a - a.min()) / (a.max() - a.min())


def _shifted(tex, dx, dy) -> Image.Image:
    """The window of `tex` seen by a camera moved by (-dx, -dy): its content moved by (dx, dy) pixels."""
    a = tex[PAD - dy:PAD - dy + SIZE, PAD - dx:PAD - dx + SIZE]
    return Image.fromarray((a * 255).round().astype(np.uint8))


def _err(a, b) -> float:
    return float(np.abs(np.asarray(a, float) - np.asarray(b, float))[8:-8, 8:-8].mean())  # away from the border


@pytest.mark.parametrize("dx,dy", [(3, 0), (2, -1), (-2, 2)])
def test_the_warp_predicts_the_next_translation(dx, dy):
    """Content moving (dx, dy) a frame: the flow from frame 0 to 1 is (dx, dy), and frame 1 warped by it is much
    closer to frame 2 than frame 1 itself; half the flow lands halfway."""
    tex = _texture()
    f0, f1, f2 = (_shifted(tex, k * dx, k * dy) for k in range(3))
    flow = motion.optical_flow(f0, f1)
    inner = flow[8:-8, 8:-8].reshape(-1, 2)
    assert np.abs(np.median(inner, 0) - (dx, dy)).max() < 0.25, np.median(inner, 0)
    warped = motion.carry(f0, f1, 1.0)
    assert _err(warped, f2) < 0.25 * _err(f1, f2), (_err(warped, f2), _err(f1, f2))
    half = motion.carry(f0, f1, 0.5)
    assert _err(half, f2) < _err(f1, f2) and _err(half, f2) > _err(warped, f2)
    assert np.array_equal(np.asarray(motion.carry(f0, f1, 0.0)), np.asarray(f1))  # no flow, no change


def test_the_warp_refuses_mismatched_sizes():
    a = Image.new("RGB", (64, 64))
    with pytest.raises(ValueError, match="accepted: two images of one size"):
        motion.optical_flow(a, Image.new("RGB", (32, 64)))
    with pytest.raises(ValueError, match=r"accepted: \(64, 64, 2\)"):
        motion.warp(a, np.zeros((32, 32, 2), np.float32))


def test_flow_0_renders_todays_frames_and_flow_on_changes_frame_2_on(pipe, clip, tmp_path, monkeypatch):
    """flow 0 (the default) never warps: the frames equal a render with the field at its default, with the warp
    made to fail if called; with flow on, frames 0 and 1 (nothing to warp by yet) are the same and later ones not."""
    default = render_frames(spec_for(clip, **KW), tmp_path / "d.mp4", pipe=pipe, limit=5, progress=False)

    def no_warp(*a, **k):
        raise AssertionError("flow 0 warped a frame")
    monkeypatch.setattr(motion, "carry", no_warp)
    zero = render_frames(spec_for(clip, flow=0.0, **KW), tmp_path / "z.mp4", pipe=pipe, limit=5, progress=False)
    assert all(np.array_equal(np.asarray(Image.open(frame_path(default, i))),
                              np.asarray(Image.open(frame_path(zero, i)))) for i in range(5))
    monkeypatch.undo()
    on = render_frames(spec_for(clip, flow=1.0, **KW), tmp_path / "f.mp4", pipe=pipe, limit=5, progress=False)
    assert same_frames(default, on, 2)
    assert all(frame_path(default, i).read_bytes() != frame_path(on, i).read_bytes() for i in range(2, 5))


def test_a_flow_render_resumes_identically(pipe, clip, tmp_path):
    """Interrupted after frame 3, the resumed chain reads frames 2 and 3 back to warp frame 4's seed: every frame
    is byte-identical to an unbroken render."""
    spec = spec_for(clip, flow=1.0, color_coherence="lab", **KW)
    whole = render_frames(spec, tmp_path / "a.mp4", pipe=pipe, limit=7, progress=False)

    def interrupt(i):
        if i == 4:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        render_frames(spec, tmp_path / "b.mp4", pipe=pipe, limit=7, progress=False, on_frame=interrupt)
    done = len(list(frames_dir(tmp_path / "b.mp4").glob("frame_*.png")))
    assert 2 <= done < 7
    rendered = []
    resumed = render_frames(spec, tmp_path / "b.mp4", pipe=pipe, limit=7, progress=False, on_frame=rendered.append)
    assert rendered and min(rendered) == done
    assert same_frames(whole, resumed, 7)


def test_flow_is_part_of_the_render_folders_identity(pipe, clip, tmp_path):
    render_frames(spec_for(clip, **KW), tmp_path / "v.mp4", pipe=pipe, limit=3, progress=False)
    assert spec_for(clip, flow=0.5, **KW).identity()["flow"] == 0.5
    with pytest.raises(ValueError, match="flow changed"):
        render_frames(spec_for(clip, flow=0.5, **KW), tmp_path / "v.mp4", pipe=pipe, limit=3, progress=False)
