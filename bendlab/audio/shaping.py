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

from ..checks import (BendlabValueError, check_choice, check_int, check_number,
                      is_int)

SCALINGS = ("minmax", "percentile")  # how a feature is normalised over the track (`scale`)
MAX_MEDIAN = 10_001  # frames of a running median: over 8 minutes at 20 fps


def check_median(median, n_frames: int | None = None) -> int:
    """An odd running-median window of 1.. frames, no longer than the track's `n_frames` when known."""
    if not is_int(median) or median < 1 or median % 2 == 0:
        raise BendlabValueError(f"median {median!r} is not an odd number of frames >= 1; accepted: 1, 3, 5, ... up "
                                f"to {MAX_MEDIAN}")
    check_int("median", median, 1, MAX_MEDIAN, accepted=f"an odd number of frames 1..{MAX_MEDIAN}")
    longest = max(1, n_frames if n_frames % 2 else n_frames - 1) if n_frames is not None else None
    if longest is not None and median > longest:
        raise BendlabValueError(f"median {median} is longer than the track's {n_frames} frames; accepted: an odd "
                                f"number of frames 1..{longest}")
    return median


def check_range(low, high, curve=1.0) -> tuple[float, float]:
    """The one rule for a parameter range and its exponent: finite low != high, curve > 0 (Mapping and `scale`)."""
    for name, v in (("low", low), ("high", high), ("curve", curve)):
        check_number(f"range {name}" if name != "curve" else name, v)
    if low == high:
        raise BendlabValueError(f"range low = high = {low:g} maps every frame to one value (range {low:g}..{high:g} "
                                "is empty); accepted: low != high")
    if curve <= 0:
        raise BendlabValueError(f"curve {curve!r} is not > 0; accepted: an exponent > 0 (1 = linear)")
    return float(low), float(high)


# ------------------------------------------------------------------------------------------ shaping
def smooth(x: np.ndarray, fps: float, attack: float = 0.0, release: float = 0.0, median: int = 1) -> np.ndarray:
    """Envelope follower: rises with time constant `attack` and falls with `release` (seconds; 0 = follow
    instantly), after an optional running median over `median` frames (odd)."""
    x = np.asarray(x, dtype=np.float64)
    check_median(median, len(x))
    for name, t in (("attack", attack), ("release", release)):
        check_number(name, t, 0, accepted="a time >= 0 in seconds")
    if median > 1:
        from scipy.signal import medfilt
        x = medfilt(x, median)
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
          curve: float = 1.0, gate: float = 0.0, threshold: float = 1.0, ratio: float = 1.0) -> np.ndarray:
    """Map x into [low, high]: normalise over the track to u in 0..1 (min-max, or between two percentiles,
    clipping what lies outside), then shape the dynamics and map:

        gate       u < gate -> 0 (silences what is below a level)
        threshold, ratio   a compressor: above `threshold` u rises 1/ratio as fast, then is scaled back so the
                   loudest frame still reaches 1 (make-up gain): loud passages squeezed, quiet ones lifted
        curve      u ** curve (> 1 favours peaks, < 1 lifts quiet passages)

    A constant or silent track maps to `low` (never NaN). "RMS scaled to 0..2*pi" is
    ``scale(feats["rms"], 0, 2 * np.pi)``.
    """
    check_range(low, high, curve)
    check_choice("scaling", mode, SCALINGS)
    x = np.asarray(x, dtype=np.float64)
    lo, hi = (x.min(), x.max()) if mode == "minmax" else np.percentile(x, percentiles)
    return shape(normalise(x, lo, hi), low, high, curve, gate, threshold, ratio)


def normalise(x, lo: float, hi: float) -> np.ndarray:
    """x mapped from lo..hi to 0..1, clipped; a range of (numerically) zero width gives 0."""
    x = np.asarray(x, dtype=np.float64)
    span = hi - lo
    return np.clip((x - lo) / span, 0, 1) if span > 1e-12 * max(1.0, abs(hi)) else np.zeros_like(x)


def shape(u, low: float, high: float, curve: float = 1.0, gate: float = 0.0, threshold: float = 1.0,
          ratio: float = 1.0) -> np.ndarray:
    """A normalised feature u in 0..1 through the gate, the compressor and the curve into low..high (see
    `scale`); the live analysis (`bendlab.causal`) normalises causally and shapes with this same function."""
    u = np.asarray(u, dtype=np.float64)
    u = np.where(u < gate, 0.0, u)
    if ratio != 1 and threshold < 1:
        u = np.where(u > threshold, threshold + (u - threshold) / ratio, u) / (threshold + (1 - threshold) / ratio)
    return low + (high - low) * u ** curve


