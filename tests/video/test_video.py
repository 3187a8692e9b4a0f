"""Video: prompt interpolation, the noise walk, resume after an interruption, manifest checks, the mp4."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from bendlab import audio
from bendlab.video import frames_dir
from bendlab.mapping import Mapping
from bendlab.video import VideoSpec, make_video, noise_walk, parse_keyframe, prompt_weights, render_frames, video_info
from conftest import CLIP_STEPS, assert_frames_close, frame_path, same_frames, spec_for

STEPS = CLIP_STEPS


def test_prompt_weights_two_prompts_and_keyframes(clip):
    w = prompt_weights(spec_for(clip, prompts=["a", "b"]), 11)
    np.testing.assert_allclose(w[0], [1, 0])
    np.testing.assert_allclose(w[-1], [0, 1])
    np.testing.assert_allclose(w[5], [0.5, 0.5])
    k = prompt_weights(spec_for(clip, prompts=["a", "b", "c"], keyframes=[0.0, 0.2, 0.4]), 12)
    np.testing.assert_allclose(k[2], [0.5, 0.5, 0])  # 0.1 s, halfway from a to b
    np.testing.assert_allclose(k[10], [0, 0, 1])  # past the last keyframe
    assert parse_keyframe("1:30 a gorgeous landscape") == (90.0, "a gorgeous landscape")


def test_noise_walk_is_sin_cos_of_two_seeded_tensors(pipe, clip):
    s = spec_for(clip)
    x = noise_walk(pipe, s, 8)
    g = torch.Generator().manual_seed(s.seed)
    A, B = torch.randn(x[:1].shape, generator=g), torch.randn(x[:1].shape, generator=g)
    torch.testing.assert_close(x[0:1], B)  # sin 0 = 0, cos 0 = 1
    torch.testing.assert_close(x[2:3], A * math.sin(math.pi / 2) + B * math.cos(math.pi / 2), atol=1e-6, rtol=0)
    torch.testing.assert_close(noise_walk(pipe, s, 8, [2, 5]), x[[2, 5]])
    authors = noise_walk(pipe, spec_for(clip, walk="authors"), 8)
    assert not torch.allclose(authors, x)


def test_resume_after_interruption_loses_no_frame(pipe, clip, tmp_path):
    full = tmp_path / "full" / "v.mp4"
    full.parent.mkdir()
    render_frames(spec_for(clip, batch=4), full, pipe=pipe, progress=False)
    part = tmp_path / "part" / "v.mp4"
    part.parent.mkdir()

    def interrupt(i):
        if i == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_frames(spec_for(clip, batch=4), part, pipe=pipe, progress=False, on_frame=interrupt)
    done = sorted(p.name for p in frames_dir(part).glob("frame_*.png"))
    assert 0 < len(done) < 12 and not list(frames_dir(part).glob("*.part.png"))
    rendered = []
    render_frames(spec_for(clip, batch=4), part, pipe=pipe, progress=False, on_frame=rendered.append)
    assert rendered and min(rendered) == len(done)  # finished frames were skipped
    assert same_frames(frames_dir(full), frames_dir(part))  # aligned batches: each frame computed exactly as before


def test_changed_settings_refuse_to_mix_frames(pipe, clip, tmp_path):
    out = tmp_path / "v.mp4"
    render_frames(spec_for(clip), out, pipe=pipe, limit=2, progress=False)
    with pytest.raises(ValueError, match="seed changed"):
        render_frames(spec_for(clip, seed=1), out, pipe=pipe, limit=2, progress=False)
    render_frames(spec_for(clip, seed=1), out, pipe=pipe, limit=2, progress=False, overwrite=True)
    assert json.loads((frames_dir(out) / "manifest.json").read_text())["settings"]["seed"] == 1


def test_frames_follow_the_audio(pipe, clip, tmp_path):
    """Against the same video of a silent track (angle 0 everywhere): the silent frames of the clip are
    identical, the frames from the note's onset on are not."""
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(int(0.6 * audio.DEFAULT_SR), np.float32), audio.DEFAULT_SR)
    a = render_frames(spec_for(clip), tmp_path / "a.mp4", pipe=pipe, progress=False)
    b = render_frames(spec_for(silent), tmp_path / "b.mp4", pipe=pipe, progress=False)
    diff = [np.abs(np.asarray(Image.open(frame_path(a, i)), float) - np.asarray(Image.open(frame_path(b, i)))).mean()
            for i in range(12)]
    assert max(diff[:6]) == 0, diff  # 0.0-0.3 s: silence in both
    assert min(diff[6:8]) > 1, diff  # the onset at 0.3 s turns the channels


def test_mp4_has_both_streams_and_the_audio_duration(pipe, clip, tmp_path):
    out = tmp_path / "v.mp4"
    make_video(spec_for(clip), out, pipe=pipe, progress=False)
    info = video_info(out)
    assert info["video"] and info["audio"]
    assert info["frames"] == 12 and abs(info["video_duration"] - 0.6) <= 1 / 20 + 1e-6
    assert not list(tmp_path.glob("*.part.mp4"))


def test_img2img_chain(pipe, clip, tmp_path):
    s = VideoSpec(audio=str(clip), steps=STEPS, method="img2img", strength=0.5,
                  mappings=[Mapping("rms", "add", 2, 0, 1)])  # 4 steps x 0.5: layers 0..2
    folder = render_frames(s, tmp_path / "v.mp4", pipe=pipe, limit=3, progress=False)
    assert all(frame_path(folder, i).is_file() for i in range(3))


@pytest.mark.parametrize("kw,msg", [
    (dict(method="dream"), "method"), (dict(fps=0), "fps"), (dict(strength=1.5, method="img2img"), "strength"),
    (dict(prompts=["a", "b"], keyframes=[0.3, 0.1]), "increasing"),
    (dict(mappings=[Mapping("rms", "rotate1", 40, 0, 1)]), "outside 0..4"),
])
def test_bad_video_settings(clip, kw, msg):
    with pytest.raises(ValueError, match=msg):
        VideoSpec(audio=str(clip), **{"steps": STEPS, **kw})


@pytest.mark.parametrize("kw,msg", [(dict(feature="loudness"), "unknown feature"), (dict(low=1, high=1), "empty"),
                                    (dict(low=float("nan")), "finite")])
def test_bad_mappings(kw, msg):
    with pytest.raises(ValueError, match=msg):
        Mapping(**kw)


def test_output_checks(clip, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        render_frames(spec_for(clip), tmp_path / "nope" / "v.mp4", progress=False)
    with pytest.raises(ValueError, match="mp4"):
        render_frames(spec_for(clip), tmp_path / "v.avi", progress=False)


def test_frames_of_other_model_weights_are_not_mixed(pipe, clip, tmp_path):
    import copy
    out = tmp_path / "v.mp4"
    render_frames(spec_for(clip), out, pipe=pipe, limit=2, progress=False)
    first = np.asarray(Image.open(frame_path(frames_dir(out), 0)))
    other = copy.deepcopy(pipe)
    with torch.no_grad():
        other.unet.conv_out.bias += 0.5  # a "retrained" model
    with pytest.raises(ValueError, match="weights changed"):
        render_frames(spec_for(clip), out, pipe=other, limit=2, progress=False)
    assert np.array_equal(np.asarray(Image.open(frame_path(frames_dir(out), 0))), first)  # nothing touched
    render_frames(spec_for(clip), out, pipe=other, limit=2, progress=False, overwrite=True)
    assert not np.array_equal(np.asarray(Image.open(frame_path(frames_dir(out), 0))), first)  # re-rendered
    render_frames(spec_for(clip), out, pipe=other, limit=2, progress=False)  # same weights: resumes


def _unet_items(pipe):
    """A counter of the batch items the UNet evaluates (installed as a forward pre-hook)."""
    seen = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    return seen, handle


@pytest.mark.parametrize("keyframes", [False, True])
def test_shared_prefix_equals_the_full_render(pipe, clip, keyframes):
    """walk "none": frames share the steps before the bend's layer; the frames equal the full computation's (other
    batch sizes: within FRAME_LEVELS) and the UNet evaluates far fewer items. With keyframes, only constant-prompt
    frames share."""
    from bendlab.video import FrameRenderer, plan
    kw = dict(prompts=["a floating orb", "mice"], keyframes=[0.0, 0.3]) if keyframes else {}
    spec = VideoSpec(audio=str(clip), steps=8, walk="none", mappings=[Mapping("rms", "rotate1", 6, 0, math.pi)],
                     **kw)
    p = plan(spec)
    idx = list(range(12))
    counts = {}
    for share in (True, False):
        seen, handle = _unet_items(pipe)
        out = FrameRenderer(p, pipe, share=share).render(idx, output_type="np")
        handle.remove()
        counts[share] = (np.stack(out), sum(seen))
    assert_frames_close(counts[True][0], counts[False][0])
    full = 2 * 12 * 8  # guidance doubles the batch
    if keyframes:  # frames 1..5 interpolated: full; frame 0 (prompt a) and 6..11 (b): one 6-step prefix each
        assert counts[True][1] == 2 * 5 * 8 + (2 * 6 + 2 * 2 * 1) + (2 * 6 + 2 * 2 * 6), counts[True][1]
    else:  # 6 shared steps at batch 1, then 2 steps at batch 12
        assert counts[True][1] == 2 * 6 + 2 * 12 * 2, counts[True][1]
    assert counts[False][1] == full


def test_layer_0_bend_shares_nothing(clip):
    from bendlab.video import FrameRenderer
    from bendlab.video import resolve
    spec = VideoSpec(audio=str(clip), walk="none", mappings=[Mapping("rms", "add", 0, 0, 1), Mapping("rms")])
    assert FrameRenderer.shared_layer(resolve(spec)) == 0
    assert FrameRenderer.shared_layer(resolve(VideoSpec(audio=str(clip), walk="none"))) == 40


def test_shared_prefix_render_resumes_byte_identically(pipe, clip, tmp_path):
    spec = VideoSpec(audio=str(clip), steps=STEPS, walk="none", batch=4,
                     mappings=[Mapping("rms", "rotate1", 2, 0, math.pi)])
    a = render_frames(spec, tmp_path / "a.mp4", pipe=pipe, progress=False)

    def interrupt(i):
        if i == 5:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        render_frames(spec, tmp_path / "b.mp4", pipe=pipe, progress=False, on_frame=interrupt)
    b = render_frames(spec, tmp_path / "b.mp4", pipe=pipe, progress=False)
    assert same_frames(a, b)
