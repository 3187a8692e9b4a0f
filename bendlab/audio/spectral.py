"""The paper's spectral features of each frame's window (rms, centroid, spread, skewness, kurtosis, flux, as
the authors compute them) and bendlab's others (rectified flux, onset, band energies); see `audio.features`.
"""

from __future__ import annotations

import math

import numpy as np

from .signal import frame_windows

BANDS = {"low": (0.0, 250.0), "mid": (250.0, 2000.0), "high": (2000.0, math.inf)}
N_MELS = 64


def spectral_moments(mag: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Magnitude-weighted centroid, spread (std), skewness and kurtosis of spectra mag (n_bins, n_frames).

    A silent frame (no energy) gets centroid 0, spread 0, skewness 0 and kurtosis 0.
    """
    total = mag.sum(axis=0)
    w = np.divide(mag, total, out=np.zeros_like(mag), where=total > 0)
    f = freqs[:, None]
    c = (w * f).sum(axis=0)
    d = f - c
    var = (w * d ** 2).sum(axis=0)
    s = np.sqrt(var)
    safe = s > 0
    skew = np.where(safe, (w * d ** 3).sum(axis=0) / np.where(safe, s ** 3, 1), 0.0)
    kurt = np.where(safe, (w * d ** 4).sum(axis=0) / np.where(safe, s ** 4, 1), 0.0)
    return c, s, skew, kurt


def spectral_features(y: np.ndarray, sr: int, fps: float) -> dict[str, np.ndarray]:
    """The SPECTRAL features of every frame of y (definitions in the module docstring), and "_logmel", the
    (N_MELS, frames) log-mel spectrogram of the same frames."""
    return window_features(frame_windows(y, sr, fps), sr)


def window_features(win: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    """The SPECTRAL features (and "_logmel") of consecutive windows win (n, L) of sr Hz audio: row i's flux
    and onset compare it with row i-1 (0 on row 0). The live analysis calls it on the newest two windows."""
    import librosa
    win = np.asarray(win, dtype=np.float64)
    L = win.shape[1]
    n_fft = 1 << max(8, (L - 1).bit_length())  # the next power of two (at least 256)
    mag = np.abs(np.fft.rfft(win, n=n_fft, axis=1)).T  # (bins, frames); rectangular window, as the authors
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    v = {"rms": np.sqrt((win ** 2).mean(axis=1))}
    v["centroid"], v["spread"], v["skewness"], v["kurtosis"] = spectral_moments(mag, freqs)
    diff = np.diff(mag, axis=1, prepend=mag[:, :1])
    v["flux"] = np.abs(diff).sum(axis=0)
    v["flux_rectified"] = np.sqrt((np.maximum(diff, 0) ** 2).sum(axis=0))
    power = mag ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_fft=n_fft, n_mels=N_MELS)
    logmel = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)  # absolute floor: same live
    v["onset"] = librosa.onset.onset_strength(S=logmel, sr=sr, lag=1, center=False)[: win.shape[0]]
    for name, (lo, hi) in BANDS.items():
        v[name] = power[(freqs >= lo) & (freqs < hi)].sum(axis=0) / n_fft
    v = {k: np.nan_to_num(np.asarray(a, dtype=np.float64)[: win.shape[0]]) for k, a in v.items()}
    v["_logmel"] = logmel
    return v


