"""Causal analysis for live mode: the offline features and mappings, one frame at a time, from the past only.

Each shown frame analyses the newest 1/fps window of audio (and the window before it, for flux and onset) with
the same definitions as offline (`audio.window_features`: rms, centroid, spread, skewness, kurtosis, flux,
flux_rectified, onset, low, mid, high). A mapping then shapes the value as offline, with causal versions of
what needs the whole track:

    median             over the past `median` frames (offline: centred on the frame)
    attack, release    the same envelope follower, one step per shown frame (time constants in seconds)
    normalisation      offline min-max needs the whole track; live uses a *running range* (`RunningRange`):
                       the lowest and highest values heard, each drawn back towards the current value with a
                       half-life of `halflife` seconds (default 10 s), so a loud passage widens the range at once
                       and a quieter song grows back to the full parameter range; or, with `soundcheck` S > 0,
                       the range heard during the first S seconds, then fixed. With `scaling` "percentile" the
                       ends are the mapping's `clip` percentiles (default 5 and 95) of the values heard in the
                       last 2 x `halflife` seconds (or during the soundcheck), so one outlier does not squash
                       the rest, as offline.
    gate, compressor, curve   `audio.shape`, exactly as offline.

Rhythm and MIDI come from the live controls (`live.controls.Snapshot`): beat (1 on the first frame of each
beat), beat_phase, bar_phase and lfo:K from the beat count (MIDI clock, else the tempo given), midi_velocity
(the held notes' highest velocity), midi_onset (notes struck since the previous frame) and midi_cc:N. Features
that need the whole track (pca:K, embed16, @harmonic / @percussive / stems, midi_pitch) are refused live.

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .. import audio
from ..bend import catalogue
from ..audio.rhythm import BEATS_PER_BAR
from ..checks import BendlabValueError, check_choice, check_number
from ..mapping import Mapping

LIVE_RHYTHM = ("beat", "beat_phase", "bar_phase")
LIVE_MIDI = ("midi_velocity", "midi_onset")
LIVE_FEATURES = audio.SPECTRAL + LIVE_RHYTHM + LIVE_MIDI  # and lfo:K, midi_cc:N
DEFAULT_HALFLIFE = 10.0  # seconds


def check_live_feature(name: str) -> audio.FeatureRef:
    """A feature the live analysis computes from the past alone; one line otherwise."""
    ref = audio.parse_feature(name)
    if ref.source != "mix":
        raise BendlabValueError(f"feature {name!r}: a source ({ref.source}) needs the whole track; accepted live: "
                                "the mix (no @SOURCE)")
    if ref.name not in LIVE_FEATURES and ref.name not in ("lfo", "midi_cc"):
        raise BendlabValueError(f"feature {name!r} needs the whole track (offline only); accepted live: "
                                f"{', '.join(LIVE_FEATURES)}, lfo:K, midi_cc:N")
    return ref


class RunningRange:
    """Causal normalisation into 0..1 (see the module docstring). scaling "minmax": the range decays towards the
    current value with a half-life of `halflife` s, or is frozen after `soundcheck` s when that is > 0.
    scaling "percentile": the `clip` percentiles of the values of the last 2 x `halflife` s (or of the
    soundcheck's, then fixed)."""

    def __init__(self, fps: float, halflife: float = DEFAULT_HALFLIFE, soundcheck: float = 0.0,
                 scaling: str = "minmax", clip=(5.0, 95.0)):
        check_number("halflife", halflife, 0, low_open=True, accepted="seconds > 0")
        check_number("soundcheck", soundcheck, 0, accepted="seconds >= 0 (0: a running range)")
        check_choice("scaling", scaling, audio.SCALINGS)
        self.decay = 1 - 0.5 ** (1 / (fps * halflife))
        self.frozen_after = round(soundcheck * fps)
        self.percentile = scaling == "percentile"
        self.clip = (float(clip[0]), float(clip[1]))
        self.heard: deque[float] = deque(maxlen=self.frozen_after or max(2, round(2 * halflife * fps)))
        self.lo = self.hi = None
        self.n = 0

    def __call__(self, x: float) -> float:
        frozen = self.frozen_after and self.n >= self.frozen_after
        if self.percentile:
            if not frozen:
                self.heard.append(x)
                self.lo, self.hi = (float(v) for v in np.percentile(self.heard, self.clip))
        elif self.lo is None:
            self.lo = self.hi = x
        elif not frozen:
            a = 0.0 if self.frozen_after else self.decay
            self.hi = max(x, self.hi - (self.hi - x) * a)
            self.lo = min(x, self.lo + (x - self.lo) * a)
        self.n += 1
        return float(audio.normalise(x, self.lo, self.hi))


class LiveMapping:
    """One mapping, causally: raw feature value -> smoothed -> running range -> `audio.shape` into the
    performer's current low..high (a `live.controls.MappingControl`, whose `param`, when set by a CC or OSC, replaces
    the normalised feature)."""

    def __init__(self, m: Mapping, fps: float, halflife: float = DEFAULT_HALFLIFE, soundcheck: float = 0.0):
        check_live_feature(m.feature)
        self.m = m
        self.history: deque[float] = deque(maxlen=m.median)
        self.a_up = math.exp(-1.0 / (fps * m.attack)) if m.attack > 0 else 0.0
        self.a_dn = math.exp(-1.0 / (fps * m.release)) if m.release > 0 else 0.0
        self.env: float | None = None
        self.range = RunningRange(fps, halflife, soundcheck, m.scaling, m.clip)
        self.u = 0.0  # the last normalised value (0..1), for meters

    def __call__(self, x: float, control) -> float:
        self.history.append(float(x))
        v = float(np.median(self.history)) if len(self.history) > 1 else float(x)
        if self.env is None:
            self.env = v
        else:
            a = self.a_up if v > self.env else self.a_dn
            self.env = a * self.env + (1 - a) * v
        u = self.range(self.env)
        self.u = u if control.param is None else float(control.param)
        m = self.m
        p = float(audio.shape(self.u, control.low, control.high, m.curve, m.gate, m.threshold, m.ratio))
        return float(round(p)) if m.op in catalogue.INTEGER_OPERATORS else p


class Analyser:
    """The features a set of mappings reads, for the newest window: `window` holds the last 2 x ceil(sr/fps)
    samples (the previous window, then the newest), `snap` the controls' snapshot at its end."""

    def __init__(self, names, sr: int, fps: float):
        self.refs = {n: check_live_feature(n) for n in names}
        self.sr, self.fps = sr, fps
        self.L = math.ceil(sr / fps)
        self.spectral = any(r.name in audio.SPECTRAL for r in self.refs.values())
        self.last_beat: int | None = None

    def __call__(self, window: np.ndarray, snap) -> dict[str, float]:
        v = {}
        if self.spectral:
            w = np.asarray(window, dtype=np.float64)[-2 * self.L:]
            w = np.concatenate([np.zeros(2 * self.L - len(w)), w]) if len(w) < 2 * self.L else w
            f = audio.window_features(w.reshape(2, self.L), self.sr)
        beat = math.floor(snap.beats)
        for n, r in self.refs.items():
            if r.name in audio.SPECTRAL:
                v[n] = float(f[r.name][1])
            elif r.name == "beat":
                v[n] = 1.0 if self.last_beat is not None and beat > self.last_beat else 0.0
            elif r.name == "beat_phase":
                v[n] = snap.beats % 1.0
            elif r.name == "bar_phase":
                v[n] = (snap.beats % BEATS_PER_BAR) / BEATS_PER_BAR
            elif r.name == "lfo":
                v[n] = 0.5 - 0.5 * math.cos(2 * math.pi * r.arg * snap.beats)
            elif r.name == "midi_velocity":
                v[n] = snap.velocity
            elif r.name == "midi_onset":
                v[n] = snap.onset
            elif r.name == "midi_cc":
                v[n] = snap.cc.get(int(r.arg), 0.0)
        self.last_beat = beat
        return v
