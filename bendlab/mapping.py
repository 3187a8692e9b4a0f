"""A mapping: one audio feature driving one bend's parameter, frame by frame (the second stop of a frame's way:
audio -> mapping -> bend -> video.renderer -> video.folder -> mp4).

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from . import audio
from .bend import catalogue
from .checks import BendlabValueError, check_choice, check_number, check_numbers

if TYPE_CHECKING:  # annotations: a Mapping's fields are read without torch (the command line's help)
    from .bend.bends import Bend

SCALINGS = ("minmax", "percentile")


@dataclass
class Mapping:
    """One audio feature driving one bend's parameter, e.g. RMS -> rotate1 angle at layer 40 in 0..pi.

    feature: a feature name (audio.FEATURES, lfo:K, pca:K, midi_cc:N), optionally @harmonic, @percussive or
    @STEM.wav; low, high: the parameter range it is scaled into (low < high or reversed; default 0..pi: the
    paper's 0..2 pi turns the loudest moment back onto no bend, as a rotation by 2 pi is the identity, so a drum
    loop gives a still picture with one-frame flashes; `make demo` and notebook 07 give 0..2 pi to reproduce it);
    scaling: "minmax", or "percentile" (normalised between the `clip` percentiles, outliers clipped);
    gate, threshold, ratio: dynamics on the normalised 0..1 value (see `audio.scale`); curve: exponent;
    attack, release: envelope follower time constants in seconds; median: odd running-median window (frames).
    layer: None -> the paper's 40 of 50 steps at the same relative depth of the video's steps (set when the
    video's spec is resolved: `video.spec.resolve`).
    target: None (the latent) or a bend's target, e.g. "unet:mid_block" or "vae:decoder.up_blocks.1" (`Bend`);
    a VAE target bends every frame once, when it is decoded, whatever the layer.

    The audio-driven matrix (the authors' JAES work): feature "embed16" (16 values per frame, `audio.EMBEDDINGS`)
    with op "matrix". Each of the 16 values is smoothed and scaled on its own, as any feature is (median,
    envelope, scaling over the track, gate, compressor, curve), into an offset in low..high, and frame t's matrix
    is the identity plus those offsets, row by row: M_t = I + reshape(offsets_t, 4, 4). So a small range (e.g.
    -0.3..0.3) bends around the identity (offsets 0 are no bend); the default 0..pi is far from it. The
    authors instead use their smoothed t-SNE coordinates of EnCodec features as M_t directly (no scaling, no
    identity). `params` gives the mean offset per frame (a one-number summary for plots and `Plan.curves`),
    `vectors` the (frames, 16) matrices. rotate6 has no six-valued feature and is refused here.
    """

    feature: str = "rms"
    op: str = "rotate1"
    layer: int | None = None
    low: float = 0.0
    high: float = math.pi
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
    target: str | None = None

    def __post_init__(self):
        from .bend import operators
        audio.check_feature(self.feature)
        operators.get(self.op)
        if self.op in catalogue.NO_PARAM_OPERATORS:
            raise BendlabValueError(f"{self.op} has no parameter for feature {self.feature!r} to drive (the picture "
                                    "would not follow the music); accepted: an operator with a parameter, or "
                                    f"{self.op} as a fixed bend (render --op {self.op}, or a [[bend]] in a recipe)")
        audio.check_range(self.low, self.high, self.curve)
        for name in ("attack", "release"):
            check_number(name, getattr(self, name), 0, accepted="a time >= 0 seconds")
        check_number("gate", self.gate, 0, 1, high_open=True, accepted="0 <= gate < 1 (a level of the normalised "
                     "feature)")
        check_number("threshold", self.threshold, 0, 1, low_open=True, accepted="0 < threshold <= 1")
        check_number("ratio", self.ratio, 1, accepted="ratio >= 1 (1 = no compression)")
        check_choice("scaling", self.scaling, SCALINGS)
        audio.check_median(self.median)
        self._check_vector_pair()
        for v in (self.low, self.high):
            operators.check_param(self.op, self._example(round(v) if self.op in catalogue.INTEGER_OPERATORS else v))
        if self.op == "invert" and min(self.low, self.high) <= 0 <= max(self.low, self.high):
            raise BendlabValueError(f"invert: range {self.low:g}..{self.high:g} passes through r = 0 (f(x) = 1/r - x); "
                                    "accepted: a range on one side of 0")
        c = check_numbers("clip", self.clip, min_len=2)
        if len(c) != 2 or not 0 <= c[0] < c[1] <= 100:
            raise BendlabValueError(f"clip {self.clip!r} is not two percentiles; accepted: [low, high] with "
                                    "0 <= low < high <= 100")
        self.clip = c
        self.bend(self._example(self.low), self.layer or 0)  # layer, where, norm, target

    @property
    def dims(self) -> int | None:
        """How many values per frame the feature gives (embed16: 16), None for a one-number feature."""
        return audio.EMBEDDINGS.get(audio.parse_feature(self.feature).name)

    def _check_vector_pair(self) -> None:
        """A feature with several values per frame drives exactly the operator with that many parameters."""
        k, dims = catalogue.N_PARAMS.get(self.op), self.dims
        if k is None and dims is None:
            return
        if self.op == "matrix" and dims == 16:
            return
        if dims is not None:
            raise BendlabValueError(f"feature {self.feature!r} gives {dims} values per frame; accepted: op matrix "
                                    "(16 parameters)")
        accepted = "feature embed16" if self.op == "matrix" else f"{self.op} in render and recipes (no feature " \
            f"gives {k} values per frame), or op matrix with feature embed16"
        raise BendlabValueError(f"{self.op} takes {k} parameters per frame and feature {self.feature!r} gives one; "
                                f"accepted: {accepted}")

    def _example(self, v: float):
        """A parameter of this mapping's operator built from one value (the matrix: the identity plus v)."""
        if self.op == "matrix":
            return (np.eye(4).reshape(-1) + v).tolist()
        return v

    def _shaped(self, x: np.ndarray, fps: float) -> np.ndarray:
        x = audio.smooth(x, fps, self.attack, self.release, self.median)
        return audio.scale(x, self.low, self.high, self.scaling, self.clip, self.curve, self.gate, self.threshold,
                           self.ratio)

    def params(self, feats: audio.Features) -> np.ndarray:
        """The parameter value for every frame (embed16 -> matrix: the mean of the frame's 16 offsets)."""
        x = feats[self.feature]
        if x.ndim == 2:
            return self._offsets(x, feats.fps).mean(axis=1)
        p = self._shaped(x, feats.fps)
        return np.round(p) if self.op in catalogue.INTEGER_OPERATORS else p

    def _offsets(self, x: np.ndarray, fps: float) -> np.ndarray:
        return np.stack([self._shaped(x[:, d], fps) for d in range(x.shape[1])], axis=1)

    def vectors(self, feats: audio.Features) -> np.ndarray | None:
        """(frames, 16) matrices row by row for embed16 -> matrix (the identity plus each value's offset in
        low..high), None for a one-number mapping."""
        if self.dims is None:
            return None
        return np.eye(4).reshape(1, 16) + self._offsets(feats[self.feature], feats.fps)

    def bend(self, param, layer: int | None = None) -> Bend:
        """This mapping's bend with the given parameter (a number, or one value per frame of a batch; embed16 ->
        matrix: 16 values, or a (frames, 16) set); a VAE target's bend has no layer (it acts at decode)."""
        from .bend.bends import Bend
        vae = self.target is not None and self.target.startswith("vae:")
        return Bend(self.op, param, None if vae else (self.layer if layer is None else layer), self.where,
                    self.norm, target=self.target)
