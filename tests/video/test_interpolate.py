"""Smooth motion at any frame rate, by ffmpeg's minterpolate in the encoding call or by the VAE decoding blends of
the rendered frames' latents (`tween`), with the audio in sync, and the parameters of keyframed videos on the
audio clock."""

import numpy as np
import pytest
from conftest import frame_path, spec_for
from PIL import Image

from bendlab.files import file_sha256
from bendlab.video import frames_dir
from bendlab.video import latent_tweens, output_times
from bendlab.video import make_video, plan, video_info


def _decoded(mp4):
    import imageio_ffmpeg
    gen = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(gen)
    w, h = meta["size"]
    return [np.frombuffer(f, np.uint8).reshape(h, w, 3).astype(int) for f in gen]


@pytest.mark.parametrize("method", ["minterpolate", "latent"])
def test_interpolated_video_keeps_the_audio_in_sync(pipe, clip, tmp_path, method):
    out = make_video(spec_for(clip), tmp_path / "v.mp4", pipe=pipe, upscale=1, interpolate=60,
                     interpolate_method=method, progress=False)
    info = video_info(out)
    assert info["video"] and info["audio"]
    assert abs(info["video_duration"] - 0.6) <= 1 / 60 + 1e-6, info  # the audio's duration within one output frame
    assert abs(info["frames"] - 36) <= 1, info  # 12 frames at 20 fps -> 36 at 60 fps
    decoded = _decoded(out)
    rendered = [np.asarray(Image.open(frame_path(frames_dir(out), k)), int) for k in range(12)]
    for k in (2, 6, 9):  # rendered frame k is shown at k/fps: output frame 3k, nearer to it than to its neighbours
        d = [np.abs(decoded[3 * k] - rendered[j]).mean() for j in (k - 1, k, k + 1)]
        assert d[1] < min(d[0], d[2]), (k, d)


def test_output_times_put_rendered_frame_k_at_k_over_fps():
    t = output_times(3, 10, 40)  # 0.3 s: 12 output frames, rendered frame k at output frame 4k
    assert len(t) == 12 and [t[4 * k] for k in range(3)] == [(0, 0.0), (1, 0.0), (2, 0.0)]
    assert t[1:4] == [(0, 0.25), (0, 0.5), (0, 0.75)]
    assert t[9:] == [(2, 0.0)] * 3  # past the last rendered frame: held, as the rendered video shows it
    t = output_times(10, 24, 60)  # not a multiple: 25 frames, each a fraction between its two neighbours
    assert len(t) == 25 and t[5] == (2, 0.0) and t[1] == (0, 0.4) and all(0 <= a < 1 for _, a in t)


def _frames(tmp_path, images):
    paths = []
    for i, im in enumerate(images):
        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(im).save(paths[-1])
    return paths, [file_sha256(p) for p in paths]


def test_latent_tweens_run_from_one_rendered_frame_into_the_next(pipe, tmp_path):
    """The decoded blend plus the blend of the VAE's losses: between two equal frames every in-between frame is
    that frame (within a level), between two different ones it lies between them, nearer the nearer one."""
    from bendlab import render
    a, b = (np.asarray(render(p, pipe=pipe, steps=4)) for p in ("a red ball", "a blue sea"))
    paths, hashes = _frames(tmp_path, [a, a, b])
    shown = latent_tweens(paths, hashes, 10, 40, pipe.vae, tmp_path / "tw", progress=False)
    assert len(shown) == 12 and shown[0] == paths[0] and shown[4] == paths[1] and shown[8] == paths[2]
    px = [np.asarray(Image.open(p), int) for p in shown]
    for j in (1, 2, 3):  # between frames 0 and 1, both a
        assert np.abs(px[j] - a).max() <= 1, j
    d = [(np.abs(px[j] - a).mean(), np.abs(px[j] - b).mean()) for j in (5, 6, 7)]  # a -> b
    ab = np.abs(a.astype(int) - b).mean()
    assert all(da < ab and db < ab for da, db in d), (d, ab)
    assert d[0][0] < d[1][0] < d[2][0] and d[0][1] > d[1][1] > d[2][1], d  # moving from a towards b


def test_latent_tweens_resume_and_drop_those_of_a_rerendered_frame(pipe, tmp_path):
    im = [np.full((64, 64, 3), v, np.uint8) for v in (40, 120, 200)]
    paths, hashes = _frames(tmp_path, im)
    folder = tmp_path / "tw"
    latent_tweens(paths, hashes, 10, 30, pipe.vae, folder, progress=False)
    made = {p.name: p.stat().st_mtime_ns for p in folder.glob("tween_*.png")}
    assert len(made) == 4  # 2 between each pair; after frame 2 it is held
    latent_tweens(paths, hashes, 10, 30, pipe.vae, folder, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("tween_*.png")} == made  # all reused
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(paths[2])  # frame 2 rendered again
    hashes[2] = file_sha256(paths[2])
    shown = latent_tweens(paths, hashes, 10, 30, pipe.vae, folder, progress=False)
    now = {p.name for p in folder.glob("tween_*.png")}
    assert len(now) == 4 and len(now & set(made)) == 2  # the two between frames 0 and 1 kept, the others remade
    assert np.abs(np.asarray(Image.open(shown[5]), int) - 90).mean() < np.abs(np.asarray(
        Image.open(shown[4]), int) - 90).mean()


def test_unknown_interpolate_method_is_one_line(pipe, clip, tmp_path):
    with pytest.raises(ValueError, match="unknown interpolate_method 'film'; accepted: minterpolate, latent"):
        make_video(spec_for(clip), tmp_path / "v.mp4", pipe=pipe, interpolate=40, interpolate_method="film",
                   progress=False)
    assert not frames_dir(tmp_path / "v.mp4").exists()


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


def test_the_vae_alone_is_the_pipelines_vae(pipe):
    """What a Ray render's driver decodes the in-between frames with (it holds no pipeline): the same weights."""
    import torch

    from bendlab.models import load_vae
    vae = load_vae(None, "cpu")
    assert vae is not pipe.vae
    z = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(vae.decode(z).sample, pipe.vae.decode(z).sample)
