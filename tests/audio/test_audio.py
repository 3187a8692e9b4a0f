"""Audio features on synthetic signals, frame/window alignment, smoothing and scaling."""

import math

import numpy as np
import pytest
import scipy.stats
import soundfile as sf

from bendlab import audio

SR = 22050


def sine(freq, seconds=1.0, amp=0.5):
    t = np.arange(int(seconds * SR)) / SR
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_sine_centroid_at_its_frequency_and_rms():
    f = audio.compute_features(sine(1000.0, amp=0.5), SR, fps=20)
    assert f.n_frames == 20
    # the authors' rectangular window leaks a tone's energy into every bin (sidelobes fall as 1/f), and a
    # magnitude-weighted centroid sees it: above 1 kHz, never below
    assert 1000.0 < np.median(f["centroid"]) < 1300.0
    assert np.median(f["rms"]) == pytest.approx(0.5 / math.sqrt(2), rel=0.01)
    assert np.median(f["mid"]) > 100 * np.median(f["high"])  # 1 kHz sits in the mid band


def test_flux_and_onset_peak_at_the_onset_frame():
    y = np.concatenate([np.zeros(SR // 2, np.float32), sine(440.0, 0.5)])
    f = audio.compute_features(y, SR, fps=20)
    onset_frame = 10  # 0.5 s at 20 fps
    assert f["flux"][0] == 0
    assert int(np.argmax(f["flux"])) == onset_frame
    assert int(np.argmax(f["onset"])) == onset_frame
    assert f["rms"][onset_frame - 1] == 0 and f["rms"][onset_frame] > 0.3


def test_windows_are_exactly_the_frame_spans():
    y = np.arange(SR, dtype=np.float32)  # sample value = index
    w = audio.frame_windows(y, SR, fps=24)
    assert w.shape[0] == 24
    for i in (0, 1, 7, 23):
        assert w[i, 0] == round(i * SR / 24)  # starts at i / fps
    assert w.shape[1] == math.ceil(SR / 24)  # 50 ms at 20 fps, 41.7 ms at 24
    assert audio.frame_windows(np.zeros(SR + 1, np.float32), SR, 20).shape[0] == 21  # ceil: the tail gets a frame


def test_skewness_kurtosis_match_scipy_on_known_spectra():
    freqs = np.linspace(0, 5000, 513)
    rng = np.random.default_rng(0)
    samples = rng.gamma(2.0, 500.0, 200000)  # a skewed distribution of frequencies
    hist, _ = np.histogram(samples, bins=np.append(freqs, freqs[-1] + freqs[1]) - freqs[1] / 2)
    c, s, sk, ku = audio.spectral_moments(hist[:, None].astype(float), freqs)
    inside = samples[samples < freqs[-1] + freqs[1] / 2]
    binned = freqs[np.clip(np.round(inside / freqs[1]).astype(int), 0, 512)]
    assert c[0] == pytest.approx(binned.mean(), rel=1e-6)
    assert s[0] == pytest.approx(binned.std(), rel=1e-6)
    assert sk[0] == pytest.approx(scipy.stats.skew(binned), rel=1e-6)
    assert ku[0] == pytest.approx(scipy.stats.kurtosis(binned, fisher=False), rel=1e-6)
    # a symmetric spectrum has zero skewness
    sym = np.exp(-0.5 * ((freqs - 2500) / 300) ** 2)[:, None]
    assert abs(audio.spectral_moments(sym, freqs)[2][0]) < 1e-9


def test_spread_matches_own_moment():
    f = audio.compute_features(sine(300.0) + sine(3000.0), SR, fps=10)
    # two equal peaks 2700 Hz apart: 1350 Hz, widened by the rectangular window's leakage (never narrowed)
    assert 1350 <= np.median(f["spread"]) < 2000


def test_silent_and_constant_tracks_map_to_low_end():
    f = audio.compute_features(np.zeros(SR, np.float32), SR, fps=20)
    for name in audio.SPECTRAL:
        assert np.isfinite(f[name]).all(), name
        p = audio.scale(f[name], 0.0, 2 * np.pi)
        assert np.all(p == 0.0), name


def test_scale_minmax_percentile_curve():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(audio.scale(x, 0, 2 * np.pi), x / 4 * 2 * np.pi)
    np.testing.assert_allclose(audio.scale(x, 1, 0), 1 - x / 4)
    np.testing.assert_allclose(audio.scale(x, 0, 1, curve=2), (x / 4) ** 2)
    p = audio.scale(np.append(x, 100.0), 0, 1, mode="percentile", percentiles=(0, 80))
    assert p[-1] == 1.0 and p[0] == 0.0


def test_smoothing_attack_release():
    x = np.zeros(40)
    x[10] = 1.0
    y = audio.smooth(x, fps=20, attack=0.0, release=0.5)
    assert y[10] == 1.0 and 0 < y[11] < 1 and y[20] < y[11]
    np.testing.assert_array_equal(audio.smooth(x, 20), x)
    assert audio.smooth(x, 20, median=3)[10] == 0  # a lone spike is removed by the median


@pytest.mark.parametrize("kwargs,msg", [(dict(low=1.0, high=1.0), "low = high"),
                                        (dict(low=float("nan"), high=1), "finite"),
                                        (dict(low=0, high=1, mode="zscore"), "minmax")])
def test_bad_ranges(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        audio.scale(np.arange(3.0), **kwargs)


@pytest.mark.parametrize("fps", [0, -5, float("nan"), 1e6])
def test_bad_fps(fps):
    with pytest.raises(ValueError, match="fps"):
        audio.check_fps(fps)


def test_bad_audio_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        audio.load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(ValueError, match="could not be decoded"):
        audio.load_audio(bad)
    short = tmp_path / "short.wav"
    sf.write(short, np.zeros(100, np.float32), SR)
    with pytest.raises(ValueError, match="shorter than one frame"):
        audio.audio_features(short, fps=20)
    with pytest.raises(ValueError, match="unknown feature"):
        audio.check_feature("loudness")


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_formats_load(tmp_path, fmt):
    p = tmp_path / f"a.{fmt}"
    sf.write(p, sine(440.0, 0.5), SR)
    y = audio.load_audio(p, SR)
    assert abs(len(y) - SR // 2) < 0.05 * SR
    assert np.abs(y).max() > 0.3
