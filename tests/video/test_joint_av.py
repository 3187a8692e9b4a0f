"""One curve, sound and picture (issue 28, section 3): a video whose audio is music generated with its own bend,
both driven by the same curve (an LFO on a fixed tempo, a keyframe curve), muxed together; and the other direction,
the generated music's features driving the picture. On a tiny random Stable Audio pipeline saved as safetensors
(4000 Hz, 500 latent frames a second, 2.048 s at most) and the shipped image model, 2 steps, 5 fps."""

import math

import numpy as np
import pytest
import soundfile as sf

from bendlab import audio, models
from bendlab.bend.bends import Bend
from bendlab.bend.where import Where
from bendlab.checks import BendlabValueError
from bendlab.mapping import Mapping
from bendlab.music import model as music_model
from bendlab.music.curve import MusicBend, curve_bends, latent_values
from bendlab.music.model import MusicConfig, tiny_random_pipeline
from bendlab.music.render import Sound, render_music
from bendlab.video import RenderFolderError, VideoSpec, check_spec, make_video, render_frames, video_info
from bendlab.video.folder import frames_dir
from bendlab.video.soundtrack import MUSIC_WAV, music_mapping, prepare, silence

SR, HOP = 4000, 8  # the tiny music model: 500 latent frames a second
RATE = SR / HOP
CONFIG = MusicConfig(SR, HOP, 8, 1024)
SECONDS, FPS, MUSIC_STEPS = 1.6, 5.0, 4
REACH = 20  # latent frames the tiny Oobleck decoder reaches across (149 samples measured: 18.6 frames)


@pytest.fixture(scope="module")
def music_pipe():
    return tiny_random_pipeline(sampling_rate=SR)


@pytest.fixture(scope="module")
def music_folder(music_pipe, tmp_path_factory):
    path = tmp_path_factory.mktemp("music") / "tiny-music"
    music_pipe.save_pretrained(path, safe_serialization=True)
    return str(path)


def joint_spec(music_folder, **kw):
    """1.6 s of "a high bell" (4 steps) and 8 frames at 5 fps (2 steps): an LFO once a beat at 120 bpm drives R1
    on the frames at layer 2 and R1 on the music at its last layer over 0..3; the music's RMS drives a multiply."""
    return VideoSpec(**{"music": "a high bell", "music_model": music_folder, "music_seconds": SECONDS,
                        "music_steps": MUSIC_STEPS, "bpm": 120.0, "steps": 2, "fps": FPS, "batch": 8,
                        "music_bend": MusicBend("rotate1", MUSIC_STEPS, 0.0, 3.0),
                        "mappings": [Mapping("lfo:1", "rotate1", 2, 0, math.pi), Mapping("rms", "multiply", 1, 1, 2)],
                        **kw})


def read_sound(path) -> Sound:
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    return Sound(y.T, sr)


@pytest.fixture(scope="module")
def joint(pipe, music_folder, tmp_path_factory):
    """The joint video made once: (spec, mp4, the plan its frames were rendered from)."""
    spec = joint_spec(music_folder)
    out = make_video(spec, tmp_path_factory.mktemp("joint") / "v.mp4", pipe=pipe, upscale=1, progress=False)
    return spec, out, check_spec(spec, audio_path=str(frames_dir(out) / MUSIC_WAV))


# ------------------------------------------------------------------------------------------------ curve -> bends
def test_each_latent_frame_takes_the_video_frame_under_its_centre():
    curve = np.array([0.0, 1.0, 2.0])  # three video frames at 5 fps: 0..0.2, 0.2..0.4, 0.4..0.6 s
    values = latent_values(curve, FPS, CONFIG, 0.6)
    assert len(values) == 300
    assert (values[:100] == 0).all() and (values[100:200] == 1).all() and (values[200:] == 2).all()
    bends = curve_bends(curve, FPS, MusicBend("rotate1", 4), 4, CONFIG, 0.6)
    frames = [b.where.at_rate(RATE).frames(300) for b in bends]
    assert frames == [(0, 100), (100, 200), (200, 300)]  # exact runs, never a frame shared by two
    assert [b.param for b in bends] == [0.0, 1.0, 2.0]
    within = curve_bends(curve, FPS, MusicBend("rotate1", 4, where="time:0.3-0.5"), 4, CONFIG, 0.6)
    assert [b.where.at_rate(RATE).frames(300) for b in within] == [(150, 200), (200, 250)]


@pytest.mark.parametrize("fps, first", [(6.0, 333), (7.0, 286)])
def test_a_step_in_the_curve_changes_the_music_from_the_latent_frame_that_holds_it(music_pipe, fps, first):
    """At the last layer (only the VAE decoder mixes neighbouring frames) a step at t = 4/fps s (0.667 s: latent
    frame 333.3, its first half; 0.571 s: frame 285.7, its second half) bends exactly the frames from the one under
    whose centre t has passed: the sound equals one bend from that frame on, bit for bit, not from the frame before
    or after, and every sample before the decoder's reach of that frame is untouched."""
    curve = np.array([0.0] * 4 + [3.0] * 8)  # rotate by 0 (exactly the identity), then by 3 from t = 4/fps
    bends = curve_bends(curve, fps, MusicBend("rotate1", MUSIC_STEPS), MUSIC_STEPS, CONFIG, SECONDS)

    def music(bs):
        return render_music("a high bell", bs, pipe=music_pipe, seconds=SECONDS, steps=MUSIC_STEPS).samples[0]

    def from_frame(k):
        return [Bend("rotate1", 3.0, MUSIC_STEPS, Where("time", span=((k + 1e-6) / RATE, SECONDS)))]

    bent, plain = music(bends), music([])
    assert math.floor(4 / fps * RATE) in (first, first - 1)  # the frame that holds t, or the one before it
    assert np.array_equal(bent, music(from_frame(first)))
    assert not np.array_equal(bent, music(from_frame(first - 1)))
    assert not np.array_equal(bent, music(from_frame(first + 1)))
    assert np.array_equal(bent[:(first - REACH) * HOP], plain[:(first - REACH) * HOP])
    assert np.abs(bent[first * HOP:] - plain[first * HOP:]).mean() > 0.05


# ------------------------------------------------------------------------------------------------ curves with no track
def test_an_lfo_on_a_fixed_tempo_and_a_keyframe_curve_need_no_track():
    feats = audio.compute_features(np.zeros(44100, np.float32), 44100, 8.0, bpm=120.0)
    t = feats.times
    np.testing.assert_allclose(feats["lfo:1"], 0.5 - 0.5 * np.cos(2 * math.pi * t / 0.5), atol=1e-12)
    np.testing.assert_allclose(feats["keys:0=0,0.5=1,1=0"], np.interp(t, [0, 0.5, 1], [0, 1, 0]))
    assert not any(audio.reads_track(f, 120.0) for f in ("lfo:1", "beat_phase", "keys:0=1", "midi_cc:1"))
    assert audio.reads_track("lfo:1") and audio.reads_track("rms", 120.0)
    for bad, msg in (("keys:0=0,0=1", "are not increasing"), ("keys:1", "is not T=V"),
                     ("keys:0=1@percussive", "a keyframe curve reads no audio")):
        with pytest.raises(BendlabValueError, match=msg):
            audio.parse_feature(bad)


def test_the_music_is_planned_on_a_silence_as_long_as_its_wav(joint):
    """The curve that bent the music (computed before the music existed) is the picture's curve, frame for frame,
    in the music bend's range: the silent stand-in has the WAV's number of frames."""
    spec, out, p = joint
    track = prepare(spec)
    assert silence(track.spec, CONFIG).n_frames == p.n_frames == p.feats.n_frames == 8
    assert np.array_equal(track.curve, music_mapping(track.spec).params(p.feats))  # as on the WAV's features
    picture = (p.curves[0] - 0) / math.pi
    np.testing.assert_allclose((track.curve - 0) / 3.0, picture, atol=1e-12)
    assert picture.min() == 0 and picture.max() > 0.9  # the LFO turns: not a constant


# ------------------------------------------------------------------------------------------------ end to end
def test_the_mp4_holds_the_frames_and_the_generated_music(joint):
    spec, out, p = joint
    info = video_info(out)
    assert info["video"] and info["audio"] and info["frames"] == 8
    assert abs(info["video_duration"] - SECONDS) < 1e-6 and abs(info["duration"] - SECONDS) < 0.05
    sound = read_sound(frames_dir(out) / MUSIC_WAV)
    assert sound.sr == SR and sound.samples.shape == (1, int(SECONDS * SR))


def test_the_music_follows_its_bend(joint, music_pipe):
    """music.wav is the music rendered with the bends of the shared curve (as 16-bit PCM), and differs from the
    unbent music."""
    spec, out, p = joint
    wav = read_sound(frames_dir(out) / MUSIC_WAV).samples[0]
    track = prepare(spec)
    same = render_music("a high bell", track.bends, pipe=music_pipe, seconds=SECONDS, steps=MUSIC_STEPS)
    plain = render_music("a high bell", [], pipe=music_pipe, seconds=SECONDS, steps=MUSIC_STEPS)
    # the folder's model went through save/load: the weight-normed VAE differs by float rounding (1e-5), and the
    # WAV is 16-bit: one step is 1/32768
    assert np.abs(wav - same.samples[0]).max() < 2 / 32768 + 1e-5
    assert np.abs(wav - plain.samples[0]).max() > 0.1


def test_a_mapping_of_rms_reads_the_generated_music(joint):
    """The other direction: the second mapping's curve is the RMS of music.wav, frame by frame."""
    spec, out, p = joint
    feats = audio.audio_features(frames_dir(out) / MUSIC_WAV, FPS)
    assert np.array_equal(p.feats["rms"], feats["rms"]) and np.ptp(feats["rms"]) > 0
    assert np.array_equal(p.curves[1], spec.mappings[1].params(feats))
    assert p.audio == str(frames_dir(out) / MUSIC_WAV)


def test_the_figure_shows_the_curve_the_music_and_frames(joint):
    import matplotlib.pyplot as plt
    from PIL import Image
    from bendlab.ui.plots import plot_soundtrack
    spec, out, p = joint
    frames = {i: Image.open(frames_dir(out) / f"frame_{i:05d}.png") for i in (0, 3, 6)}
    axes = plot_soundtrack(p.curves[0], FPS, read_sound(frames_dir(out) / MUSIC_WAV), frames, label="lfo:1",
                           music_curve=prepare(spec).curve)
    assert len(axes) == 3 and axes[1].images and axes[2].images
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["0.00 s", "0.60 s", "1.20 s"]
    plt.close(axes[0].figure)


def test_a_resumed_render_reuses_the_music(joint, pipe, music_folder, monkeypatch):
    """Resume: music.wav and every frame reused, no music rendered. A damaged WAV is made again (the same bytes:
    the frames still match); another music prompt is refused with the name of what changed."""
    spec, out, _ = joint
    wav = frames_dir(out) / MUSIC_WAV
    before = wav.read_bytes()
    import bendlab.music.render as music_render
    calls = []
    real = music_render.render_music
    monkeypatch.setattr(music_render, "render_music", lambda *a, **k: calls.append(a) or real(*a, **k))
    rendered = []
    render_frames(spec, out, pipe=pipe, progress=False, on_frame=rendered.append)
    assert calls == [] and rendered == [] and wav.read_bytes() == before
    wav.write_bytes(before[: len(before) // 2])
    render_frames(spec, out, pipe=pipe, progress=False, on_frame=rendered.append)
    assert len(calls) == 1 and rendered == [] and wav.read_bytes() == before
    with pytest.raises(RenderFolderError, match=r"music changed"):
        render_frames(joint_spec(music_folder, music="a low drone"), out, pipe=pipe, progress=False)
    assert wav.read_bytes() == before


# ------------------------------------------------------------------------------------------------ refusals
@pytest.fixture
def no_loading(monkeypatch):
    """Any weights loaded, image or music, fail the test: the refusals come before."""
    def boom(*a, **k):
        raise AssertionError("a model was loaded")
    monkeypatch.setattr(models.load, "_load", boom)
    monkeypatch.setattr(music_model, "_load", boom)


@pytest.mark.parametrize("kw, msg", [
    ({"audio": "song.wav"}, "music 'a high bell' given with audio 'song.wav'; accepted: one of them"),
    ({"mappings": [Mapping("rms", "rotate1", 2)]}, "the music bend follows mapping 1's curve, and its feature 'rms'"),
    ({"bpm": None}, "its feature 'lfo:1' is read from the music"),
    ({"music_seconds": 3.0}, "seconds 3.0 is not > 0 and <= 2.048; accepted: 0 < seconds <= 2.048 (this "
                             "model's longest output)"),
    ({"music_bend": {"op": "hadamard"}}, "music bend hadamard: a curve gives one number a frame"),
    ({"music_bend": {"op": "rotate1", "where": "group:1"}}, "accepted: all, or time:A-B"),
    ({"music_bend": {"op": "rotate1", "where": "time:1-3"}}, "where time:1-3 ends after the 1.6 s output"),
    ({"music_bend": {"op": "rotate1", "layer": 9}}, "layer 9 is outside 0..4"),
    ({"music_bend": {"op": "bend"}}, "unknown operator"),
    ({"music": None, "audio": "song.wav"}, "music_model, music_seconds, music_steps, music_bend without music"),
])
def test_bad_joint_input_is_refused_in_one_line_before_any_model_loads(music_folder, tmp_path, no_loading, kw,
                                                                       msg):
    with pytest.raises(BendlabValueError) as e:
        make_video(joint_spec(music_folder, **kw), tmp_path / "v.mp4", device="cpu", progress=False)
    assert msg in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "v.frames").exists()


@pytest.mark.parametrize("args, msg", [
    (["clip.wav", "--music", "a high bell"], "music 'a high bell' given with audio"),
    (["--music", "a high bell", "--music-layer", "2"], "--music-layer given without --music-op"),
])
def test_cli_refusals(tmp_path, no_loading, capsys, args, msg):
    from bendlab.ui.cli import main
    rc = main(["video", *args, "--op", "rotate1", "--out", str(tmp_path / "v.mp4")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and msg in err and len(err.splitlines()) == 1


def test_cli_generates_the_music_and_muxes_it(music_folder, tmp_path, capsys):
    from bendlab.ui.cli import main
    out = tmp_path / "v.mp4"
    rc = main(["video", "--music", "a high bell", "--music-model", music_folder, "--seconds", "1", "--music-steps",
               "2", "--music-op", "rotate1", "--music-layer", "2", "--music-range", "0", "3", "--feature",
               "keys:0=0,0.5=1,1=0", "--op", "rotate1", "--layer", "1", "--steps", "2", "--fps", "5",
               "--upscale", "1", "--device", "cpu", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    info = video_info(out)
    assert info["video"] and info["audio"] and info["frames"] == 5
    assert read_sound(tmp_path / "v.frames" / MUSIC_WAV).samples.shape == (1, SR)
