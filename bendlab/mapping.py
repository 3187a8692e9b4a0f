"""A mapping: one audio feature driving one bend's parameter, frame by frame (the second stop of a frame's way:
audio -> mapping -> bend -> engine -> render folder -> mp4).

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import audio, operators
from .bend import Bend
from .checks import BendlabValueError, check_choice, check_number, check_numbers

SCALINGS = ("minmax", "percentile")


@dataclass
class Mapping:
    """One audio feature driving one bend's parameter, e.g. RMS -> rotate1 angle at layer 40 in 0..2*pi.

    feature: a feature name (audio.FEATURES, lfo:K, pca:K, midi_cc:N), optionally @harmonic, @percussive or
    @STEM.wav; low, high: the parameter range it is scaled into (low < high or reversed);
    scaling: "minmax", or "percentile" (normalised between the `clip` percentiles, outliers clipped);
    gate, threshold, ratio: dynamics on the normalised 0..1 value (see `audio.scale`); curve: exponent;
    attack, release: envelope follower time constants in seconds; median: odd running-median window (frames).
    layer: None -> the paper's 40 of 50 steps at the same relative depth of the video's steps (set when the
    video's spec is resolved: `videospec.resolve`).
    """

    feature: str = "rms"
    op: str = "rotate1"
    layer: int | None = None
    low: float = 0.0
    high: float = 2 * math.pi
    where: str = "all"
    norm: str | None = None
    scaling: str = "minmax"
    curve: float = 1.0
    attack: float = 0.0
    release: float = 0.0
    median: int = 1
    gate: float = 0.0
    threshold: float = 1.0
    ratio: float = 1.0
    clip: list[float] = field(default_factory=lambda: [5.0, 95.0])

    def __post_init__(self):
        audio.check_feature(self.feature)
        operators.get(self.op)
        audio.check_range(self.low, self.high, self.curve)
        for name in ("attack", "release"):
            check_number(name, getattr(self, name), 0, accepted="a time >= 0 seconds")
        check_number("gate", self.gate, 0, 1, high_open=True, accepted="0 <= gate < 1 (a level of the normalised "
                     "feature)")
        check_number("threshold", self.threshold, 0, 1, low_open=True, accepted="0 < threshold <= 1")
        check_number("ratio", self.ratio, 1, accepted="ratio >= 1 (1 = no compression)")
        check_choice("scaling", self.scaling, SCALINGS)
        audio.check_median(self.median)
        for v in (self.low, self.high):
            operators.check_param(self.op, round(v) if self.op in operators.INTEGER_OPERATORS else v)
        if self.op == "invert" and min(self.low, self.high) <= 0 <= max(self.low, self.high):
            raise BendlabValueError(f"invert: range {self.low:g}..{self.high:g} passes through r = 0 (f(x) = 1/r - x); "
                                    "accepted: a range on one side of 0")
        c = check_numbers("clip", self.clip, min_len=2)
        if len(c) != 2 or not 0 <= c[0] < c[1] <= 100:
            raise BendlabValueError(f"clip {self.clip!r} is not two percentiles; accepted: [low, high] with "
                                    "0 <= low < high <= 100")
        self.clip = c
        Bend(self.op, self.low, self.layer or 0, self.where, self.norm)  # validates layer, where, norm

    def params(self, feats: audio.Features) -> np.ndarray:
        """The parameter value for every frame."""
        x = audio.smooth(feats[self.feature], feats.fps, self.attack, self.release, self.median)
        p = audio.scale(x, self.low, self.high, self.scaling, self.clip, self.curve, self.gate, self.threshold,
                        self.ratio)
        return np.round(p) if self.op in operators.INTEGER_OPERATORS else p

    def bend(self, param) -> Bend:
        """This mapping's bend with the given parameter (a number, or one value per frame of a batch)."""
        return Bend(self.op, param, self.layer, self.where, self.norm)
