"""Musical control: the paper's features against an independent implementation of the authors' formulas, beats
and tempo on a click track, HPSS and stems as sources, MIDI, tempo-synced LFOs, PCA, dynamics, the features
command, and bad inputs as one-line errors before any model work."""

import math

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from bendlab import audio
from bendlab.audio import midi
from bendlab.ui.cli import main
from bendlab.mapping import Mapping
from bendlab.video import VideoSpec, plan
from bendlab.video import resolve

SR = audio.DEFAULT_SR
FPS = 20


def click_track(bpm=120.0, seconds=12.0, sr=SR):
    y = np.zeros(int(seconds * sr), np.float32)
    burst = (np.random.default_rng(0).standard_normal(int(0.01 * sr)) * np.exp(-np.arange(int(0.01 * sr)) / 60))
    onsets = np.arange(0.25, seconds - 0.1, 60 / bpm)
    for t in onsets:
        i = int(t * sr)
        y[i:i + len(burst)] += 0.8 * burst.astype(np.float32)
    return y, onsets


def authors_features(y, sr, fps):
    """The authors' definitions written out frame by frame, independently of bendlab.audio: the frame's own 1/fps
    samples, rectangular window, zero-padded to the next power of two, magnitude spectrum."""
    L = math.ceil(sr / fps)
    n = math.ceil(len(y) * fps / sr - 1e-9)
    N = 2 ** math.ceil(math.log2(L))
    f = np.arange(N // 2 + 1) * sr / N
    out = {k: [] for k in ("rms", "centroid", "spread", "skewness", "kurtosis", "flux")}
    prev = None
    for i in range(n):
        s = int(round(i * sr / fps))
        x = np.zeros(L)
        seg = y[s:s + L]
        x[:len(seg)] = seg
        S = np.abs(np.fft.fft(x, N))[: N // 2 + 1]
        out["rms"].append(math.sqrt(np.mean(x ** 2)))
        p = S / S.sum()
        c = (f * p).sum()
        sd = math.sqrt(((f - c) ** 2 * p).sum())
        out["centroid"].append(c)
        out["spread"].append(sd)
        out["skewness"].append(((f - c) ** 3 * p).sum() / sd ** 3)
        out["kurtosis"].append(((f - c) ** 4 * p).sum() / sd ** 4)
        out["flux"].append(0.0 if prev is None else np.abs(S - prev).sum())
        prev = S
    return {k: np.array(v) for k, v in out.items()}


def test_paper_features_match_the_authors_formulas():
    """Synthetic piano + noise burst + chirp: every paper feature correlates >= 0.99 with the authors' formulas
    (it is the same computation: expect equality to rounding)."""
    from scipy.signal import chirp
    t = np.arange(int(3.0 * SR)) / SR
    y = np.zeros_like(t)
    piano = audio.synth_piano([(0.1, 60, 0.9, 0.8), (0.6, 67, 0.7, 0.6)], sr=SR, tail=0.2)
    n = min(len(y), len(piano))
    y[:n] += piano[:n]
    burst = (t > 1.2) & (t < 1.5)
    y[burst] += 0.2 * np.random.default_rng(1).standard_normal(burst.sum())
    y += 0.1 * chirp(t, 200, 3.0, 8000) * (t > 1.8)
    y += 1e-4 * np.random.default_rng(2).standard_normal(len(t))  # a noise floor: no silent frame (0/0 there)
    y = y.astype(np.float32)
    ours, ref = audio.compute_features(y, SR, FPS), authors_features(y, SR, FPS)
    for name, r in ref.items():
        assert np.corrcoef(ours[name], r)[0, 1] >= 0.99, name
        np.testing.assert_allclose(ours[name], r, rtol=1e-6, atol=1e-9 * max(1, np.abs(r).max()), err_msg=name)


def test_click_track_tempo_and_beats():
    y, onsets = click_track(120.0)
    f = audio.compute_features(y, SR, FPS)
    assert abs(f.tempo - 120.0) <= 1.0, f.tempo
    beat_frames = np.flatnonzero(f["beat"])
    click_frames = np.floor(onsets * FPS).astype(int)
    # every tracked beat lies within one frame of a click (the tracker may skip the first or last)
    assert len(beat_frames) >= len(click_frames) - 2
    assert all(np.abs(click_frames - b).min() <= 1 for b in beat_frames)


def test_lfo_1_completes_one_cycle_per_beat_and_bar_phase_one_per_four():
    y, _ = click_track(120.0)
    f = audio.compute_features(y, SR, FPS)
    beats = f.beats().times
    b0, b1 = beats[3], beats[4]
    at = lambda t: int(round(t * FPS))  # noqa: E731
    lfo = f["lfo:1"]
    assert lfo[at(b0)] < 0.1 and lfo[at(b1)] < 0.1  # 0 on each beat
    assert lfo[at((b0 + b1) / 2)] > 0.9  # 1 half-way through it
    phase = f["beat_phase"]
    circular = lambda p: min(p, 1 - p)  # noqa: E731  (a frame starting just before a beat reads 0.97)
    assert circular(phase[at(b0)]) < 0.1 and 0.4 < phase[at((b0 + b1) / 2)] < 0.6
    bar = f["bar_phase"]
    assert circular(bar[at(beats[4])]) < 0.05 and abs(bar[at(beats[6])] - 0.5) < 0.05  # 4 beats a bar
    slow = f["lfo:0.25"]
    assert slow[at(beats[4])] < 0.05 and slow[at(beats[6])] > 0.95  # lfo:0.25: one cycle per bar


def test_a_drum_hit_shows_in_percussive_not_harmonic():
    t = np.arange(int(2.0 * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * 220 * t)
    hit = int(1.0 * SR)
    y[hit:hit + 441] += np.random.default_rng(2).standard_normal(441) * np.exp(-np.arange(441) / 80)
    f = audio.compute_features(y.astype(np.float32), SR, FPS)
    k = 20  # the frame of 1.0 s
    perc, harm = f["rms@percussive"], f["rms@harmonic"]
    assert perc[k] > 5 * np.median(perc)
    assert harm[k] < 1.5 * np.median(harm)


def test_stem_as_source_and_a_stem_of_another_length_refused(tmp_path):
    y, _ = click_track(seconds=3.0)
    sf.write(tmp_path / "drums.wav", y, SR)
    sf.write(tmp_path / "short.wav", y[: int(2.5 * SR)], SR)
    f = audio.compute_features(np.zeros_like(y), SR, FPS)
    assert f[f"rms@{tmp_path / 'drums.wav'}"].max() > 0 and f["rms"].max() == 0
    with pytest.raises(ValueError, match=r"lasts 2.500 s, the track 3.000 s"):
        f[f"rms@{tmp_path / 'short.wav'}"]


def test_midi_velocity_pitch_onset_and_cc(tmp_path):
    import mido
    path = midi.write_notes([(0.5, 60, 100 / 127, 0.5), (1.0, 72, 50 / 127, 0.25)], tmp_path / "n.mid")
    m = mido.MidiFile(path)
    m.tracks[0].insert(1, mido.Message("control_change", control=74, value=127, time=0))  # at t = 0
    m.save(path)
    y = np.zeros(int(2.0 * SR), np.float32)
    f = audio.compute_features(y, SR, FPS, midi=midi.read(path))
    vel, pitch, onset, cc = f["midi_velocity"], f["midi_pitch"], f["midi_onset"], f["midi_cc:74"]
    assert vel[9] == 0 and vel[10] == pytest.approx(100 / 127) and vel[19] == pytest.approx(100 / 127)
    assert vel[20] == pytest.approx(50 / 127) and pitch[20] == 72 and pitch[12] == 60 and vel[25] == 0
    assert np.flatnonzero(onset).tolist() == [10, 20]
    assert cc[0] == 1.0 and f["midi_cc:7"].max() == 0


def test_pca_is_deterministic_and_rises_with_rms():
    y = audio.synth_piano(sr=SR)[: 4 * SR]
    a, b = audio.compute_features(y, SR, FPS), audio.compute_features(y, SR, FPS)
    assert np.array_equal(a["pca:1"], b["pca:1"])
    assert np.corrcoef(a["pca:1"], a["rms"])[0, 1] > 0
    assert not np.allclose(a["pca:1"], a["pca:2"])


def test_gate_and_compressor():
    x = np.linspace(0, 1, 101)
    g = audio.scale(x, 0, 1, gate=0.3)
    assert g[29] == 0 and g[30] == pytest.approx(0.3)
    c = audio.scale(x, 0, 1, threshold=0.5, ratio=4)
    assert c[-1] == pytest.approx(1.0) and c[50] == pytest.approx(0.5 / 0.625)  # make-up gain keeps the peak
    assert np.all(np.diff(c) >= 0) and (c[51] - c[50]) < (c[50] - c[49])  # slope 1/4 above the threshold
    p = audio.scale(np.r_[np.zeros(98), 50.0, 100.0], 0, 1, "percentile", (0, 98))
    assert p[-1] == 1 and p[-2] == 1  # clipped at the 98th percentile


def test_img2img_first_frame_is_the_init_image(pipe, tmp_path):
    from bendlab.video import render_frames
    sf.write(tmp_path / "a.wav", audio.synth_piano([(0.1, 60, 1, 0.2)], sr=SR, tail=0.1)[: int(0.3 * SR)], SR)
    init = tmp_path / "init.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (64, 64, 3), np.uint8)).save(init)
    spec = VideoSpec(audio=str(tmp_path / "a.wav"), method="img2img", steps=4, init_image=str(init),
                     mappings=[Mapping("rms", "add", 1, 0, 1)])
    folder = render_frames(spec, tmp_path / "v.mp4", pipe=pipe, limit=2, progress=False)
    assert np.array_equal(np.asarray(Image.open(folder / "frame_00000.png")), np.asarray(Image.open(init)))
    assert not np.array_equal(np.asarray(Image.open(folder / "frame_00001.png")), np.asarray(Image.open(init)))


def test_features_command_writes_csv_plot_and_tempo(tmp_path, capsys):
    y, _ = click_track(seconds=4.0)
    sf.write(tmp_path / "c.wav", y, SR)
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    code = main(["features", str(tmp_path / "c.wav"), "--fps", "10", "--out", str(out), "--plot", str(png),
                 "--op", "rotate1", "--feature", "lfo:0.25"])
    io = capsys.readouterr()
    assert code == 0, io.err
    assert "tempo: 1" in io.out and abs(float(io.out.split("tempo: ")[1].split()[0]) - 120) <= 1
    rows = out.read_text().splitlines()
    assert len(rows) == 1 + 40 and rows[0].startswith("frame,time_s,rms,centroid")
    assert "beat_phase" in rows[0] and "pca:1" in rows[0]
    assert Image.open(png).size[0] > 500


@pytest.mark.parametrize("kw,msg", [
    (dict(mappings=[{"feature": "loudness"}]), "unknown feature 'loudness'"),
    (dict(mappings=[{"feature": "rms@drums.txt"}]), "source 'drums.txt' of 'rms@drums.txt' is not harmonic"),
    (dict(mappings=[{"feature": "rms@missing.wav"}]), "stem 'missing.wav' of feature 'rms@missing.wav' does not exist"),
    (dict(mappings=[{"feature": "pca:0"}]), "pca:0 is not a component 1..64"),
    (dict(mappings=[{"feature": "lfo:0"}]), "lfo:0 is outside (0, 64]"),
    (dict(mappings=[{"feature": "midi_cc:200"}]), "midi_cc:200 is not a controller number 0..127"),
    (dict(mappings=[{"feature": "midi_velocity"}]), "needs a MIDI file"),
    (dict(midi="corrupt.mid"), "MIDI file 'corrupt.mid' could not be read"),
    (dict(midi="missing.mid"), "MIDI file 'missing.mid' does not exist"),
    (dict(mappings=[{"clip": [90, 10]}]), "clip [90, 10] is not two percentiles"),
    (dict(mappings=[{"ratio": 0.5}]), "ratio >= 1"),
])
def test_bad_musical_input_is_one_line(tmp_path, monkeypatch, kw, msg):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corrupt.mid").write_bytes(b"MThd not really a midi file")
    with pytest.raises((ValueError, FileNotFoundError)) as e:  # by the constructor, or by resolve (the files)
        resolve(VideoSpec(audio="song.wav", **kw))
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_plan_uses_midi_and_sources(tmp_path):
    y, _ = click_track(seconds=2.0)
    sf.write(tmp_path / "c.wav", y, SR)
    path = midi.write_notes([(0.5, 60, 1.0, 0.5)], tmp_path / "n.mid")
    spec = VideoSpec(audio=str(tmp_path / "c.wav"), midi=str(path), steps=4,
                     mappings=[Mapping("midi_velocity", "add", 1, 0, 1), Mapping("rms@percussive", "rotate1", 2)])
    curves = plan(spec).curves
    assert curves.shape == (2, 40) and curves[0, 10] == 1 and curves[0, 9] == 0
    assert len(spec.identity()["midi"]["sha256"]) == 64
