"""Per-frame audio features aligned with video frames, smoothing, and scaling into an operator's range.

Frame i of a video at `fps` is shown from i/fps to (i+1)/fps; its features are computed on exactly that window
of audio (50 ms at 20 fps, the paper's setting), so a hit in the music and its visual change land on the same
frame. The last window is zero-padded; the number of frames is ceil(duration x fps), so the video lasts as long
as the audio to within one frame.

The paper's features are computed as the authors' code computes them: the track at 44.1 kHz, each frame's own
1/fps samples with a rectangular window (no taper), zero-padded to the next power of two, magnitude spectrum
|S_t(f)| over the bins f (Hz). With w_t(f) = |S_t(f)| / sum_f |S_t(f)|:

    rms          sqrt(mean(x^2)) of the frame's samples (linear amplitude)
    centroid     c_t = sum_f f w_t(f) (Hz)
    spread       s_t = sqrt(sum_f (f - c_t)^2 w_t(f)) (Hz)
    skewness     sum_f (f - c_t)^3 w_t(f) / s_t^3
    kurtosis     sum_f (f - c_t)^4 w_t(f) / s_t^4 (not excess: a Gaussian spectrum gives 3)
    flux         sum_f |S_t(f) - S_t-1(f)| (L1, both directions; 0 on frame 0)

Other features of the same frames:
    flux_rectified  L2 norm of the half-wave rectified change (bendlab's earlier flux: rises only, onset-like)
    onset           librosa onset strength (mean rectified log-mel difference)
    low, mid, high  energy below 250 Hz, 250-2000 Hz and above 2000 Hz
    beat, beat_phase, bar_phase, lfo:K     from librosa's beat tracker, see `bendlab.rhythm`
    pca:K           K-th principal component of the track's frame-wise log-mel spectrogram (fitted on this
                    track; sign chosen so it rises with rms): "whatever changes most in this music"
    embed16         16 values per frame: pca:1..16 together (components beyond the track's rank are 0), the
                    JAES paper's audio embedding computed from the track itself with no weights; it drives the
                    16 entries of the `matrix` operator (see `bendlab.mapping.Mapping`). The authors reduce
                    EnCodec features with t-SNE instead: that is encodec16.
    encodec16       16 values per frame from EnCodec, when its weights are on this machine: the folder of a
                    transformers `EncodecModel` (config.json and *.safetensors, e.g. facebook/encodec_24khz
                    downloaded beforehand) named by the environment variable BENDLAB_ENCODEC. Nothing is ever
                    downloaded: an unset variable, an absent folder or one without safetensors weights is refused
                    in one line before any analysis. The track is resampled to the model's sampling_rate, its
                    encoder (no quantiser; CPU, no grad, in 30 s blocks) gives D latent values at
                    sampling_rate / prod(upsampling_ratios) Hz (75 Hz at 24 kHz); frame i averages the latent
                    frames that start in [i/fps, (i+1)/fps) (the latent frame under i/fps when none does), and
                    D -> 16 by PCA fitted on this track, signed as pca:K (components beyond its rank are 0).
                    PCA, not the authors' t-SNE: deterministic (no random start, the same track gives the same
                    matrices) and linear, so a frame's value is a fixed projection of its own latent.
                    Like embed16 it drives `matrix`; `encodec16@percussive` or @STEM.wav encode that signal.
    midi_velocity, midi_pitch, midi_onset, midi_cc:N   from a MIDI file, see `bendlab.midi`

Sources: `NAME@harmonic` and `NAME@percussive` read the harmonic or percussive part of the track (librosa's
HPSS); `NAME@path/to/stem.wav` reads a stem separated elsewhere, which must last as long as the track (within
one frame). E.g. `rms@percussive` follows the drums, `centroid@stems/vocals.wav` the voice.

Notebook: notebooks/07_audio_reactive_video.ipynb
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


