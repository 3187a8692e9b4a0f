"""Beats and tempo (librosa's beat tracker) as per-frame features, and oscillators locked to them.

    beat          1 on the frame where a tracked beat falls, else 0 (a mapping's `release` makes it decay)
    beat_phase    0..1 through each beat (0 on the beat)
    bar_phase     0..1 through each bar of 4 beats, counted from the first tracked beat (the downbeat is not
                  detected: a track starting on an upbeat puts the bar line early)
    lfo:K         0.5 - 0.5 cos(2 pi K b): K cycles per beat (lfo:1 once a beat, lfo:0.25 once a bar of 4),
                  0 on the first beat, where b counts beats (fractional) from the first tracked beat

With a tempo given (`grid`: a video's generated music, `Features.bpm`) the beats are a fixed grid from 0 s.
Before the first beat and after the last, the beat grid continues at the median beat period. A track with fewer
than two beats has no grid: every rhythm feature is 0 there (and the tempo is reported as 0).

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ..checks import BendlabValueError

BEATS_PER_BAR = 4


@dataclass(frozen=True)
class Beats:
    times: np.ndarray  # seconds of the tracked beats
    tempo: float  # beats per minute: 60 / median beat period (0 without a grid)


def track(y: np.ndarray, sr: int) -> Beats:
    """Track the beats of y (mono, sr Hz) with librosa's dynamic-programming beat tracker (Ellis 2007)."""
    import librosa
    _, times = librosa.beat.beat_track(y=np.asarray(y, dtype=np.float32), sr=sr, units="time")
    times = np.asarray(times, dtype=np.float64)
    tempo = 60.0 / float(np.median(np.diff(times))) if len(times) >= 2 else 0.0
    return Beats(times, tempo)


def grid(bpm: float, seconds: float) -> Beats:
    """A fixed beat grid instead of tracked beats: beats at 0, 60/bpm, 120/bpm, ... s, at least two and one past
    `seconds` (what the rhythm features read when a tempo is given: music that does not exist yet has no beats to
    track)."""
    period = 60.0 / bpm
    return Beats(np.arange(max(2, math.ceil(seconds / period) + 1)) * period, float(bpm))


def position(beats: Beats, t: np.ndarray) -> np.ndarray:
    """Beats elapsed since the first tracked beat at times t (s): k + the fraction of beat k done; the grid is
    extended before and after the tracked beats at the median period."""
    b = beats.times
    period = 60.0 / beats.tempo
    k = np.clip(np.searchsorted(b, t, side="right") - 1, 0, len(b) - 2)
    pos = k + (t - b[k]) / (b[k + 1] - b[k])
    pos = np.where(t < b[0], (t - b[0]) / period, pos)
    return np.where(t >= b[-1], len(b) - 1 + (t - b[-1]) / period, pos)


def frame_feature(beats: Beats, name: str, arg: float | None, n_frames: int, fps: float) -> np.ndarray:
    """One rhythm feature (beat, beat_phase, bar_phase, lfo with K = arg) for each video frame (at its start)."""
    if len(beats.times) < 2:
        return np.zeros(n_frames)
    if name == "beat":
        x = np.zeros(n_frames)
        frames = np.floor(beats.times * fps + 1e-9).astype(int)
        x[frames[(frames >= 0) & (frames < n_frames)]] = 1.0
        return x
    pos = position(beats, np.arange(n_frames) / fps)
    if name == "beat_phase":
        return np.mod(pos, 1.0)
    if name == "bar_phase":
        return np.mod(pos, BEATS_PER_BAR) / BEATS_PER_BAR
    if name == "lfo":
        return 0.5 - 0.5 * np.cos(2 * math.pi * arg * pos)
    raise BendlabValueError(f"unknown rhythm feature {name!r}; accepted: beat, beat_phase, bar_phase, lfo:K")
