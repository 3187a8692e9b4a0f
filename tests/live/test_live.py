"""Live mode with the real parts: the causal analysis against the offline one, the loop on the shipped model,
PulseAudio with a null sink as the microphone (no mocks of the audio stack), the MJPEG stream, faults."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest

from bendlab import audio
from bendlab.live import causal
from bendlab.live import MappingControl
from bendlab.mapping import Mapping

from conftest import wait_until, write_clip
from tests.live.test_control import Sender, jack  # noqa: F401 - the JACK server fixture

PIANO = Path(__file__).resolve().parents[2] / "bendlab" / "data" / "piano.ogg"
SR, FPS = 44100, 20


# ------------------------------------------------------------------------------------------ causal analysis
def test_live_window_features_equal_the_offline_ones():
    """On the same windows, the live analysis of the newest window gives the offline features exactly (onset
    included: its log-mel has an absolute floor, -100 dB, not one relative to the loudest bin heard)."""
    y = audio.load_audio(PIANO, SR)
    offline = audio.spectral_features(y, SR, FPS)
    win = audio.frame_windows(y, SR, FPS)
    an = causal.Analyser(list(audio.SPECTRAL), SR, FPS)
    snap = type("Snap", (), {"beats": 0.0})()
    for i in range(1, len(win)):
        got = an(np.concatenate([win[i - 1], win[i]]), snap)
        for name in audio.SPECTRAL:
            assert got[name] == pytest.approx(offline[name][i], rel=1e-9, abs=1e-12), (name, i)


def test_live_rhythm_and_midi_features_read_the_controls():
    """beat is 1 on the first frame of each beat; the phases and lfo:K follow the beat count as offline
    (rhythm.frame_feature's formulas); MIDI features read the snapshot."""
    from bendlab.live import controls
    from bendlab.audio import rhythm
    c = controls.Controls([Mapping()], ["x"], 10, clock=lambda: 0.0, bpm=120)
    an = causal.Analyser(["beat", "beat_phase", "bar_phase", "lfo:0.25", "midi_velocity", "midi_cc:74"], SR, FPS)
    beats = rhythm.Beats(np.arange(0, 20, 0.5), 120.0)  # a grid at 120 bpm from t = 0
    t = np.arange(0, 6, 1 / FPS)
    c.midi(__import__("mido").Message("control_change", control=74, value=127))
    got = [an(np.zeros(10), c.snapshot(ti)) for ti in t]
    for name in ("beat_phase", "bar_phase", "lfo:0.25"):
        ref = audio.parse_feature(name)
        want = rhythm.frame_feature(beats, ref.name, ref.arg, len(t), FPS)
        np.testing.assert_allclose([g[name] for g in got], want, atol=1e-9, err_msg=name)
    assert [i for i, g in enumerate(got) if g["beat"] == 1] == list(range(10, len(t), 10))  # every 0.5 s
    assert got[-1]["midi_cc:74"] == 1.0 and got[-1]["midi_velocity"] == 0.0


def test_running_range_widens_at_once_and_decays_with_its_half_life():
    r = causal.RunningRange(fps=10, halflife=2.0)
    assert r(0.0) == 0.0
    assert r(1.0) == 1.0  # a new maximum: the range widens at once, the value is at its top
    for _ in range(20):  # 2 s at 10 fps of 0.5: the top decays halfway from 1 towards 0.5
        u = r(0.5)
    assert r.hi == pytest.approx(0.75, abs=1e-9)
    assert 0.25 < r.lo < 0.5 and 0.4 < u < 0.6  # the floor is drawn towards the value too


def test_soundcheck_freezes_the_range():
    r = causal.RunningRange(fps=10, soundcheck=1.0)
    for v in np.linspace(0, 2, 10):  # the first second sets the range 0..2
        r(v)
    assert r(1.0) == pytest.approx(0.5)
    assert r(5.0) == 1.0 and r.hi == 2.0  # louder later: clipped, not re-ranged


def test_live_mapping_shapes_as_offline():
    """With the range known (a soundcheck over the whole input), the live shaping (gate, compressor, curve)
    equals the offline scale of the same values."""
    x = np.abs(np.sin(np.linspace(0, 9, 60))) + 0.1
    m = Mapping(feature="rms", op="rotate1", low=-1.0, high=2.0, gate=0.1, threshold=0.6, ratio=3, curve=1.5)
    live = causal.LiveMapping(m, fps=FPS, soundcheck=len(x) / FPS)
    c = MappingControl(m.low, m.high, 8, None)
    for v in x:  # the soundcheck pass: the range is set
        live(v, c)
    got = [live(v, c) for v in x]
    want = audio.scale(x, m.low, m.high, gate=m.gate, threshold=m.threshold, ratio=m.ratio, curve=m.curve)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_cc_value_replaces_the_audio_feature():
    m = Mapping(feature="rms", op="multiply", low=1.0, high=3.0)
    live = causal.LiveMapping(m, fps=FPS)
    assert live(0.3, MappingControl(1.0, 3.0, 4, 0.5)) == pytest.approx(2.0)
    assert live(0.3, MappingControl(1.0, 5.0, 4, 1.0)) == pytest.approx(5.0)


@pytest.mark.parametrize("feature", ["pca:1", "rms@percussive", "midi_pitch", "embed16"])
def test_features_that_need_the_whole_track_are_refused_live(feature):
    with pytest.raises(ValueError, match="accepted live") as e:
        causal.check_live_feature(feature)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------ the loop
def live_spec(**kw):
    from bendlab.live import LiveSpec
    m = kw.pop("mapping", Mapping(feature="rms", op="rotate1", low=0.0, high=2 * math.pi))
    return LiveSpec(mappings=[m], **kw)


@pytest.fixture(scope="module")
def pipe():
    from bendlab import models
    return models.load_pipeline(device="cpu")


def recorded_vs_offline(folder: Path, fps: float = FPS):
    """The recorded parameter of each shown frame, and the offline rms of the recorded audio over that frame's
    window (the 1/fps s from its recorded time)."""
    from bendlab.session import read_session
    s = read_session(folder)
    y = audio.load_audio(s.audio, SR)
    L = math.ceil(SR / fps)
    starts = np.round(s.times * SR).astype(int)
    rms = np.array([np.sqrt(np.mean(np.pad(y[a:a + L], (0, max(0, a + L - len(y)))) ** 2)) for a in starts])
    return s, s.params[0], rms


def test_live_from_a_played_file_records_a_session_that_follows_the_audio(pipe, tmp_path):
    """The silent-clock player (no sound server): frames at the target rate, every one recorded, the recorded
    parameter following the offline rms of the recorded audio (the running range is the only difference)."""
    from bendlab.live import Player
    from bendlab.live import Live
    shown = []
    live = Live(live_spec(), Player(PIANO, SR, device="none"), pipe=pipe, record=tmp_path / "s",
                on_frame=lambda im, f: shown.append((im, f)), status=False)
    assert live.run(seconds=3.0) == "seconds"
    s, param, rms = recorded_vs_offline(tmp_path / "s")
    assert len(s.times) == len(shown) >= 20 and live.stats.fps > 0
    assert np.all(np.diff(s.times) > 0) and s.duration == pytest.approx(3.0, abs=0.3)
    assert np.corrcoef(param[5:], rms[5:])[0, 1] >= 0.9  # after the range has heard a note
    assert len({im.tobytes() for im, _ in shown}) > 5  # the picture moves with the music
    with wave.open(str(s.audio)) as w:
        assert w.getframerate() == SR and w.getnframes() / SR == pytest.approx(s.duration)


SLOW = 0.2  # seconds a slow renderer adds to every frame (20 fps asked: at most 5 can be shown)


def test_a_slow_renderer_drops_frames_and_its_latency_stays_one_render(pipe, tmp_path):
    from bendlab.live import Player
    from bendlab.live import Live

    class Slow(Live):
        def _render(self, *args):
            time.sleep(SLOW)
            return super()._render(*args)

    live = Slow(live_spec(), Player(PIANO, SR, device="none"), pipe=pipe, status=False)
    live.run(seconds=2.0)
    st = live.stats
    assert st.dropped >= 0.5 * 2.0 * FPS  # 20 fps asked, under 5 rendered: most frames dropped
    assert st.frames <= 2.0 / SLOW + 1
    assert st.latency(95) < SLOW + 0.25  # one render (+ its analysis), never a queue's worth


def test_mjpeg_stream_serves_the_live_frames(pipe):
    from bendlab.live import Player
    from bendlab.live import Live
    live = Live(live_spec(), Player(PIANO, SR, device="none"), pipe=pipe, serve="127.0.0.1:0", status=False)
    live.start()
    try:
        for _ in range(200):
            if live.server is not None and live.stats.frames > 3:
                break
            time.sleep(0.05)
        url = live.server.url
        with urllib.request.urlopen(url + "stream.mjpg", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            data = b""
            while data.count(b"\xff\xd8") < 3:  # three JPEG frames arrive (each read has the timeout above)
                chunk = r.read(4096)
                assert chunk, "the MJPEG stream ended before three frames"
                data += chunk
        with urllib.request.urlopen(url + "frame.jpg", timeout=10) as r:
            assert r.read(2) == b"\xff\xd8"
    finally:
        live.stop()
    assert live.reason == "stopped"


def test_the_served_page_fills_the_window_without_scrollbars_and_keeps_the_pixels_sharp():
    from bendlab.live import MjpegServer
    server = MjpegServer("127.0.0.1", 0)
    try:
        with urllib.request.urlopen(server.url, timeout=10) as r:
            page = r.read().decode()
    finally:
        server.close()
    for rule in ("margin:0", "overflow:hidden", "max-width:100vw", "max-height:100vh", "object-fit:contain",
                 "image-rendering:pixelated", "background:#000"):
        assert rule in page, rule


# ------------------------------------------------------------------------------------------ --play, --loop, the CLI
def test_a_looped_file_plays_again_from_the_start_without_a_gap(tmp_path):
    """Every sample delivered is the file's, repeated end to start (np.resize tiles it); without loop the player
    finishes after the file's samples."""
    from bendlab.live import Player
    wav = write_clip(tmp_path / "short.wav", seconds=0.3)
    looped, heard = Player(wav, SR, device="none", loop=True), []
    looped.start(heard.append)
    wait_until(lambda: looped.samples > 2.5 * len(looped.y), 10, "two and a half plays")
    assert not looped.finished
    looped.close()
    heard = np.concatenate(heard)
    np.testing.assert_array_equal(heard, np.resize(looped.y, len(heard)))
    once = Player(wav, SR, device="none")
    once.start()
    wait_until(lambda: once.finished, 10, "the end of the file")
    once.close()
    assert once.samples == len(once.y)


def test_live_loop_plays_until_the_seconds_and_the_last_line_says_why_it_stopped(tmp_path, capsys):
    """`live --play F --loop --seconds 2` records 2 s of a 0.6 s file, repeated without a gap; without --loop the
    session ends with the file. The model's loading is announced; the last line says why in words."""
    from bendlab.session import read_session
    from bendlab.ui.cli import main
    wav = write_clip(tmp_path / "short.wav")
    base = ["live", "--play", str(wav), "--output-device", "none", "--op", "rotate1"]
    assert main(base + ["--loop", "--seconds", "2", "--record", str(tmp_path / "looped")]) == 0
    out = capsys.readouterr().out
    assert "live: loading the model bendlab-tiny-sd ..." in out and "; stopped: 2 s elapsed\n" in out
    s = read_session(tmp_path / "looped")
    y, heard = audio.load_audio(wav, SR), audio.load_audio(s.audio, SR)
    assert s.duration > 1.5 > 2 * len(y) / SR
    np.testing.assert_allclose(heard, np.resize(y, len(heard)), atol=2 / 32768)  # 16-bit both: no gap, no shift
    assert main(base + ["--seconds", "10"]) == 0
    assert capsys.readouterr().out.strip().endswith("stopped: the track ended")


def test_live_help_names_live_defaults_and_only_live_features(capsys):
    from bendlab.live import LIVE_FEATURES, LIVE_STEPS
    from bendlab.paper import LAYER, fit_layer
    from bendlab.ui.cli import main
    with pytest.raises(SystemExit):
        main(["live", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    for offline in ("pca", "embed16", "@harmonic", "@percussive", "@STEM"):
        assert offline not in text, offline
    assert f"denoising steps, 1..1000 (default {LIVE_STEPS}," in text
    assert f"layer 0..STEPS (default: {fit_layer(LAYER, LIVE_STEPS)} of {LIVE_STEPS}," in text
    for feature in LIVE_FEATURES + ("lfo:K", "midi_cc:N"):
        assert feature in text, feature


# ------------------------------------------------------------------------------------------ PulseAudio
@pytest.fixture()
def pulse(tmp_path):
    """A PulseAudio server with a null sink "virt" and no hardware (its monitor is the test's microphone), started
    in a temporary runtime folder and stopped by pid. Yields the environment that reaches it."""
    if shutil.which("pulseaudio") is None or shutil.which("paplay") is None:
        pytest.skip("PulseAudio is not installed (.ci/run installs Debian's pulseaudio pulseaudio-utils)")
    run = tmp_path / "xdg"
    run.mkdir()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(run), "PULSE_SOURCE": "virt.monitor", "PULSE_SINK": "virt"}
    proc = subprocess.Popen(["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disable-shm=yes",
                             "--load=module-null-sink sink_name=virt",
                             "--load=module-native-protocol-unix"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(100):
        if (run / "pulse" / "native").exists():
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.skip("PulseAudio did not start here")
    saved = {k: os.environ.get(k) for k in ("XDG_RUNTIME_DIR", "PULSE_SOURCE", "PULSE_SINK")}
    os.environ.update({k: env[k] for k in saved})
    import sounddevice
    sounddevice._terminate()  # PortAudio lists devices when it starts: start it again to see the new server
    sounddevice._initialize()
    try:
        yield proc, env
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def paplay(env):
    return subprocess.Popen(["paplay", "-d", "virt", str(PIANO)], env=env)


def test_microphone_capture_through_pulseaudio_follows_the_audio_heard(pulse, pipe, tmp_path):
    """The piano played into a null sink and captured from its monitor through ALSA's pulse device, exactly as
    a microphone is: the recorded parameter follows the offline rms of what was recorded."""
    from bendlab.live import Microphone
    from bendlab.live import Live
    proc, env = pulse
    live = Live(live_spec(), Microphone("pulse", SR), pipe=pipe, record=tmp_path / "s", status=False)
    live.start()
    wait_until(lambda: live.stats.frames >= 3 or not live.running, 60, "3 live frames", 0.05)  # then the music
    player = paplay(env)
    try:
        player.wait(30)
        time.sleep(0.5)
    finally:
        player.kill()
        live.stop()
    assert live.reason == "stopped"
    s, param, rms = recorded_vs_offline(tmp_path / "s")
    loud = rms > 0.2 * rms.max()
    assert loud.sum() > 20, "the piano was not heard"
    assert np.corrcoef(param[5:], rms[5:])[0, 1] >= 0.9


def test_the_input_device_vanishing_ends_the_session_with_a_valid_folder(pulse, pipe, tmp_path):
    from bendlab.live import Microphone
    from bendlab.live import Live
    from bendlab.session import read_session
    proc, env = pulse
    live = Live(live_spec(), Microphone("pulse", SR), pipe=pipe, record=tmp_path / "s", status=False)
    player = paplay(env)
    live.start()
    wait_until(lambda: not live.running or (live.stats.frames > 12 and live.writer.seconds > 1.5), 60,
               "13 frames and 1.5 s of recorded audio")
    proc.kill()  # the sound server (the device) gone mid-session
    wait_until(lambda: not live.running, 30, "the session to end once its device was gone")
    player.kill()
    assert live.reason not in ("seconds", "stopped", None) and "\n" not in live.reason
    s = read_session(tmp_path / "s")
    assert len(s.times) > 10 and s.duration > 1.0
    assert s.events[-1]["kind"] == "stop"


def test_ctrl_c_closes_the_recording(tmp_path):
    """`bendlab live` interrupted by SIGINT: exit 0, a readable WAV, a session that reads."""
    from bendlab.session import read_session
    folder = tmp_path / "s"
    proc = subprocess.Popen([sys.executable, "-m", "bendlab.ui.cli", "live", "--play", str(PIANO), "--output-device",
                             "none", "--record", str(folder), "--op", "rotate1"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # wait for two status lines: frames are being shown and recorded
        lines.append(line)
        if sum(x.startswith("live ") for x in lines) >= 2:
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, "".join(lines) + out
    assert "stopped: you stopped it (Ctrl-C)" in out
    s = read_session(folder)
    with wave.open(str(s.audio)) as w:
        assert w.getnframes() > SR  # over a second of audio, header closed properly
    assert len(s.times) > 10


# ------------------------------------------------------------------------------------------ MIDI, OSC, re-render
@pytest.mark.usefixtures("jack")
def test_midi_cc_and_osc_prompt_land_in_the_automation_then_the_session_re_renders(pipe, tmp_path):
    """A live session driven by a CC sweep over a JACK MIDI port and a prompt sent by OSC: both appear in the
    automation when they were sent; `video --session` then renders duration x fps frames with the recorded
    parameters and the recorded audio."""
    from pythonosc.udp_client import SimpleUDPClient

    from bendlab.live import Player
    from bendlab.live import Live
    from bendlab.session import read_session
    from bendlab.video import make_video, video_info
    from bendlab.video import plan, session_spec
    sender = Sender("bendlab-live-cc")
    folder = tmp_path / "s"
    live = Live(live_spec(mapping=Mapping(feature="rms", op="rotate1", low=0.0, high=1.0)),
                Player(PIANO, SR, device="none"), pipe=pipe, record=folder, midi_in="bendlab-live-cc",
                cc=["1=0.high:0:6"], osc="127.0.0.1:0", status=False)
    live.start()
    try:
        wait_until(lambda: live.osc is not None and live.stats.frames >= 5, 60, "OSC and 5 live frames", 0.05)
        SimpleUDPClient(*live.osc.address).send_message("/bendlab/prompt", "a floating orb")
        t_prompt = live.audio_in.seconds
        time.sleep(0.5)
        t_cc = live.audio_in.seconds
        for v in range(0, 128, 8):  # a CC sweep over ~0.8 s
            sender.send(0xB0, 1, v)
            time.sleep(0.05)
        sender.send(0xB0, 1, 127)
        time.sleep(0.5)
    finally:
        live.stop()
        sender.close()
    s = read_session(folder)
    assert s.meta["prompts"] == [live.spec.prompts[0], "a floating orb"]
    first = s.times[np.argmax(s.prompt == 1)]
    # shown after it was sent, once its first steps were computed on the second pipeline (how soon is the live
    # benchmark's business, not a timed test's: within the session's next few seconds here)
    assert (s.prompt == 1).any() and t_prompt - 0.1 <= first + 1 / FPS <= t_prompt + 3.0
    assert np.all(s.prompt[s.times > first] == 1)
    high = s.highs[0]
    assert high[s.times < t_cc].max() == 1.0 and high[-1] == 6.0
    assert np.all(np.diff(high[s.times >= t_cc]) >= 0)  # follows the sweep up
    assert any(e["kind"] == "midi" for e in s.events) and any(e["kind"] == "osc" for e in s.events)
    # the re-render: the recorded automation at k / fps, the recorded audio
    spec = session_spec(folder, steps=4)
    p = plan(spec)
    n = math.ceil(s.duration * FPS - 1e-9)
    assert p.n_frames == n
    k = np.arange(n) / FPS
    np.testing.assert_allclose(p.curves[0], np.interp(k, s.times, s.params[0]), rtol=1e-9, atol=1e-12)
    out = make_video(spec, tmp_path / "re.mp4", pipe=pipe, progress=False)
    info = video_info(out)
    assert info["frames"] == n and info["audio"]
    assert info["duration"] == pytest.approx(s.duration, abs=1 / FPS + 0.05)
