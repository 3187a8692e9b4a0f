"""Per-frame audio features aligned with video frames, smoothing, and scaling into an operator's range.

Frame i of a video at `fps` is shown from i/fps to (i+1)/fps; its features are computed on exactly that window
of audio (50 ms at 20 fps, the paper's setting), so a hit in the music and its visual change land on the same
frame. The last window is zero-padded; the number of frames is ceil(duration x fps), so the video lasts as long
as the audio to within one frame.

Features (one value per frame):
    rms                          root mean square of the samples in the window (linear amplitude)
    centroid, spread             magnitude-weighted spectral mean and standard deviation (Hz); librosa's
                                 spectral_centroid and spectral_bandwidth(p=2)
    skewness, kurtosis           3rd and 4th standardised spectral moments (dimensionless; librosa has none)
    flux                         L2 norm of the half-wave rectified change in magnitude spectrum (0 on frame 0)
    onset                        librosa onset strength (mean rectified log-mel difference) of the same frames
    low, mid, high               energy below 250 Hz, 250-2000 Hz and above 2000 Hz

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FEATURES = ("rms", "centroid", "spread", "skewness", "kurtosis", "flux", "onset", "low", "mid", "high")
UNITS = {"rms": "amplitude", "centroid": "Hz", "spread": "Hz", "skewness": "", "kurtosis": "", "flux": "",
         "onset": "", "low": "energy", "mid": "energy", "high": "energy"}
BANDS = {"low": (0.0, 250.0), "mid": (250.0, 2000.0), "high": (2000.0, math.inf)}
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")


@dataclass
class Features:
    """Per-frame features: `values[name]` has one entry per video frame; `times` are frame start times (s)."""

    fps: float
    sr: int
    duration: float  # seconds of audio
    values: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(next(iter(self.values.values())))

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.n_frames) / self.fps

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.values:
            raise ValueError(f"unknown feature {name!r}; accepted: {', '.join(self.values)}")
        return self.values[name]


def check_fps(fps) -> float:
    if not isinstance(fps, (int, float)) or isinstance(fps, bool) or not math.isfinite(fps) or not 0 < fps <= 240:
        raise ValueError(f"fps {fps!r} is outside (0, 240]; accepted: frames per second, e.g. 20 (the paper) or 24")
    return float(fps)


def check_feature(name: str) -> str:
    if name not in FEATURES:
        raise ValueError(f"unknown feature {name!r}; accepted: {', '.join(FEATURES)}")
    return name


def load_audio(path: str | Path, sr: int = 22050) -> np.ndarray:
    """Mono float32 samples at `sr` Hz from a wav, flac, ogg or mp3 file (one-line errors if unusable)."""
    import librosa
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"audio file {str(p)!r} does not exist")
    if p.suffix.lower() not in AUDIO_SUFFIXES:
        raise ValueError(f"audio file {str(p)!r} has suffix {p.suffix!r}; accepted: {', '.join(AUDIO_SUFFIXES)}")
    try:
        with warnings.catch_warnings():  # librosa's fallback to audioread warns before we give our own error
            warnings.simplefilter("ignore", (UserWarning, FutureWarning))
            y, _ = librosa.load(p, sr=sr, mono=True)
    except Exception as e:  # soundfile / audioread raise many types for corrupt input
        raise ValueError(f"audio file {str(p)!r} could not be decoded ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'unreadable'})") from None
    if y.size == 0 or not np.isfinite(y).all():
        raise ValueError(f"audio file {str(p)!r} holds no usable samples")
    return y.astype(np.float32)


def frame_windows(y: np.ndarray, sr: int, fps: float) -> np.ndarray:
    """(n_frames, L) windows: row i holds the samples played while frame i is shown, [i/fps, (i+1)/fps)."""
    fps = check_fps(fps)
    n = math.ceil(len(y) * fps / sr - 1e-9)
    L = math.ceil(sr / fps)
    if len(y) < sr / fps:
        raise ValueError(f"audio of {len(y) / sr * 1000:.1f} ms is shorter than one frame ({1000 / fps:.1f} ms "
                         f"at {fps:g} fps); accepted: at least one frame of audio")
    starts = np.round(np.arange(n) * sr / fps).astype(int)
    padded = np.concatenate([y, np.zeros(L + 1, y.dtype)])
    return np.stack([padded[s:s + L] for s in starts])


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


def compute_features(y: np.ndarray, sr: int, fps: float = 20.0) -> Features:
    """Every feature of FEATURES for each video frame of the signal y (mono, sr Hz)."""
    import librosa
    win = frame_windows(y, sr, fps)
    L = win.shape[1]
    n_fft = 1 << max(8, (L - 1).bit_length())
    mag = np.abs(np.fft.rfft(win * np.hanning(L)[None, :], n=n_fft, axis=1)).T  # (bins, frames)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    v = {"rms": np.sqrt((win.astype(np.float64) ** 2).mean(axis=1))}
    v["centroid"] = librosa.feature.spectral_centroid(S=mag, freq=freqs)[0]
    v["spread"] = librosa.feature.spectral_bandwidth(S=mag, freq=freqs, centroid=v["centroid"][None], p=2)[0]
    _, _, v["skewness"], v["kurtosis"] = spectral_moments(mag, freqs)
    diff = np.diff(mag, axis=1, prepend=mag[:, :1])
    v["flux"] = np.sqrt((np.maximum(diff, 0) ** 2).sum(axis=0))
    mel = librosa.feature.melspectrogram(S=mag ** 2, sr=sr, n_fft=n_fft, n_mels=64)
    v["onset"] = librosa.onset.onset_strength(S=librosa.power_to_db(mel, ref=1.0, amin=1e-10), sr=sr, lag=1,
                                              center=False)[: win.shape[0]]
    power = mag ** 2
    for name, (lo, hi) in BANDS.items():
        v[name] = power[(freqs >= lo) & (freqs < hi)].sum(axis=0) / n_fft
    # silent frames: librosa's centroid/bandwidth return 0 there too; make sure nothing is NaN
    v = {k: np.nan_to_num(np.asarray(a, dtype=np.float64)[: win.shape[0]]) for k, a in v.items()}
    return Features(fps=fps, sr=sr, duration=len(y) / sr, values=v)


def audio_features(path: str | Path, fps: float = 20.0, sr: int = 22050) -> Features:
    """Load an audio file and compute its per-frame features (see the module docstring)."""
    check_fps(fps)
    return compute_features(load_audio(path, sr), sr, fps)


# ------------------------------------------------------------------------------------------ shaping
def smooth(x: np.ndarray, fps: float, attack: float = 0.0, release: float = 0.0, median: int = 1) -> np.ndarray:
    """Envelope follower: rises with time constant `attack` and falls with `release` (seconds; 0 = follow
    instantly), after an optional running median over `median` frames (odd)."""
    x = np.asarray(x, dtype=np.float64)
    if median > 1:
        from scipy.signal import medfilt
        if median % 2 == 0:
            raise ValueError(f"median window {median} is even; accepted: an odd number of frames")
        x = medfilt(x, median)
    for name, t in (("attack", attack), ("release", release)):
        if not math.isfinite(t) or t < 0:
            raise ValueError(f"{name} {t!r} is not a time >= 0 in seconds")
    if attack == 0 and release == 0:
        return x
    a_up = math.exp(-1.0 / (fps * attack)) if attack > 0 else 0.0
    a_dn = math.exp(-1.0 / (fps * release)) if release > 0 else 0.0
    out = np.empty_like(x)
    env = x[0]
    for i, v in enumerate(x):
        a = a_up if v > env else a_dn
        env = a * env + (1 - a) * v
        out[i] = env
    return out


def scale(x: np.ndarray, low: float, high: float, mode: str = "minmax", percentiles=(5.0, 95.0),
          curve: float = 1.0) -> np.ndarray:
    """Map x into [low, high]: min-max or percentile normalisation over the track, then `** curve`.

    A constant or silent track maps to `low` (never NaN). "RMS scaled to 0..2*pi" is
    ``scale(feats["rms"], 0, 2 * np.pi)``.
    """
    for name, v in (("low", low), ("high", high), ("curve", curve)):
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"range {name} {v!r} is not a finite number")
    if low == high:
        raise ValueError(f"range low = high = {low:g} maps every frame to one value; accepted: low != high")
    if curve <= 0:
        raise ValueError(f"curve {curve:g} is not > 0")
    x = np.asarray(x, dtype=np.float64)
    if mode == "minmax":
        lo, hi = x.min(), x.max()
    elif mode == "percentile":
        lo, hi = np.percentile(x, percentiles)
    else:
        raise ValueError(f"unknown scaling {mode!r}; accepted: minmax, percentile")
    span = hi - lo
    u = np.clip((x - lo) / span, 0, 1) if span > 1e-12 * max(1.0, abs(hi)) else np.zeros_like(x)
    return low + (high - low) * u ** curve


# ------------------------------------------------------------------------------------------ example audio
def synth_piano(notes=None, sr: int = 22050, tail: float = 1.0) -> np.ndarray:
    """A piano-like phrase by additive synthesis: each note (onset s, MIDI pitch, velocity 0..1, length s) is
    8 inharmonic partials with a 5 ms attack and an exponential decay. Used for the shipped example clip."""
    if notes is None:  # a slow two-bar phrase, quiet gaps included, so RMS rises and falls with each note
        notes = [(0.0, 60, 0.9, 1.2), (0.0, 64, 0.6, 1.2), (1.0, 67, 0.8, 0.8), (1.8, 72, 1.0, 1.5),
                 (3.2, 71, 0.5, 0.6), (3.8, 67, 0.7, 0.6), (4.4, 64, 0.9, 1.0), (4.4, 55, 0.6, 1.5),
                 (6.0, 60, 1.0, 1.8), (6.0, 48, 0.8, 2.0)]
    dur = max(t + length for t, _, _, length in notes) + tail
    y = np.zeros(int(dur * sr))
    for t0, pitch, vel, length in notes:
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        n = int((length + tail) * sr)
        t = np.arange(n) / sr
        env = np.minimum(t / 0.005, 1) * np.exp(-t * (3.0 / length))
        tone = sum((0.6 ** k) * np.sin(2 * np.pi * f0 * (k + 1) * math.sqrt(1 + 1e-4 * (k + 1) ** 2) * t)
                   for k in range(8) if f0 * (k + 1) < sr / 2)
        i0 = int(t0 * sr)
        y[i0:i0 + n] += vel * env * tone
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def plot_features(feats: Features, names=("rms",), param: np.ndarray | None = None, param_label: str = "parameter",
                  ax=None):
    """Selected features (each min-max normalised) and the resulting parameter curve against time (s).

    Returns the matplotlib Axes (a twin axis carries the parameter)."""
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    t = feats.times
    for name in names:
        x = feats[name]
        span = x.max() - x.min()
        ax.plot(t, (x - x.min()) / span if span > 0 else x * 0, label=f"{name} ({UNITS[name] or 'norm.'})", lw=1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("feature (normalised)")
    ax.set_xlim(0, t[-1] + 1 / feats.fps)
    if param is not None:
        ax2 = ax.twinx()
        ax2.step(t, param, where="post", color="k", lw=1.5, label=param_label)
        ax2.set_ylabel(param_label)
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    return ax
