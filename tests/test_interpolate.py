"""Smooth motion at any frame rate (ffmpeg's minterpolate in the encoding call) with the audio in sync, and the
parameters of keyframed videos on the audio clock."""

import numpy as np
import pytest
from conftest import frame_path, spec_for
from PIL import Image

from bendlab.frames import frames_dir
from bendlab.video import make_video, plan, video_info


def _decoded(mp4):
    import imageio_ffmpeg
    gen = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(gen)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3).astype(int) for f in gen]


def test_interpolated_video_keeps_the_audio_in_sync(pipe, clip, tmp_path):
    out = make_video(spec_for(clip), tmp_path / "v.mp4", pipe=pipe, upscale=1, interpolate=60, progress=False)
    info = video_info(out)
    assert info["video"] and info["audio"]
    assert abs(info["video_duration"] - 0.6) <= 1 / 60 + 1e-6, info  # the audio's duration within one output frame
    assert abs(info["frames"] - 36) <= 1, info  # 12 frames at 20 fps -> 36 at 60 fps
    decoded = _decoded(out)
    rendered = [np.asarray(Image.open(frame_path(frames_dir(out), k)), int) for k in range(12)]
    for k in (2, 6, 9):  # rendered frame k is shown at k/fps: output frame 3k, nearer to it than to its neighbours
        d = [np.abs(decoded[3 * k] - rendered[j]).mean() for j in (k - 1, k, k + 1)]
        assert d[1] < min(d[0], d[2]), (k, d)


def test_interpolate_below_the_frame_rate_is_one_line(pipe, clip, tmp_path):
    with pytest.raises(ValueError, match="interpolate 10 is not > 20 and <= 240; accepted: an output frame rate"):
        make_video(spec_for(clip), tmp_path / "v.mp4", pipe=pipe, interpolate=10, progress=False)
    assert not frames_dir(tmp_path / "v.mp4").exists()  # refused before any work


def test_keyframed_prompts_keep_the_parameters_on_the_audio_clock(clip):
    """stable-diffusion-videos #75: with several keyframed prompts, frame i's parameter is the feature of the
    audio shown at i/fps, exactly as with one prompt."""
    one = plan(spec_for(clip))
    three = plan(spec_for(clip, prompts=["a", "b", "c"], keyframes=[0.0, 0.2, 0.4]))
    assert np.array_equal(one.curves, three.curves)
    onset = int(np.argmax(three.curves[0] > 0))
    assert onset == 6  # the note at 0.3 s lands in frame 6, shown from 6/20 s
