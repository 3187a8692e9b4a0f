"""Shaping a feature curve into an operator's range: attack/release smoothing and a running median, min-max or
percentile scaling, curve, gate and threshold.
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


