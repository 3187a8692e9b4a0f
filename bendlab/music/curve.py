"""A curve -> music bends: one parameter value per video frame (a mapping's curve: an LFO, a MIDI controller, a
drawn keyframe curve) turned into the bends that give each latent frame of the music its own value.

A music latent's frame k covers seconds k/rate .. (k+1)/rate of the output (`MusicConfig.rate`); video frame i
covers i/fps .. (i+1)/fps. Latent frame k takes the value of the video frame under its centre, (k + 1/2)/rate: the
video frame that covers most of it. Consecutive latent frames with the same value make one run, and each run is
one `Bend` with `where=time:A-B` selecting exactly its frames (A and B a millionth of a frame inside its first
and last frame, so float rounding never moves a boundary: `Where.frames` takes every frame the span overlaps).
The runs are disjoint, so applying them one after the other bends every frame with its own value, exactly as one
bend with a per-frame parameter would (the erode and dilate kernels, which reach along time, see a neighbouring
run already bent at a run's edge).

What follows: a step in the curve at second t changes the latent from the frame holding t (when t lies in that
frame's first half; else from the next one), never before. At the last layer only the VAE decoder mixes
neighbouring frames, so the samples before that frame change only within the decoder's reach
(tests/video/test_joint_av.py).

Notebook: notebooks/11_bending_music.ipynb
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..audio import check_range
from ..bend import catalogue
from ..checks import BendlabValueError, check_int
from .model import MusicConfig

if TYPE_CHECKING:
    from ..bend.bends import Bend

EDGE = 1e-6  # how far inside its first and last frame a run's span starts and ends, in frames


@dataclass(frozen=True)
class MusicBend:
    """The music's own bend, driven by a curve: operator `op` at `layer` (None: the paper's 40 of 50 at the same
    depth of the music's steps), the curve scaled into `low`..`high` (as a `Mapping` scales its feature), on
    `where`: "all" or "time:A-B" (only those seconds). A value: the operator and range are checked here, the
    layer and span against the model when the music is planned (`music.render.check_music`)."""

    op: str = "rotate1"
    layer: int | None = None
    low: float = 0.0
    high: float = math.pi
    where: str = "all"

    def __post_init__(self):
        from ..bend import operators  # torch: not for reading the fields (the command line's help)
        from ..bend.where import Where
        operators.get(self.op)
        if self.op in catalogue.NO_PARAM_OPERATORS or self.op in catalogue.N_PARAMS:
            raise BendlabValueError(f"music bend {self.op}: a curve gives one number a frame; accepted: an operator "
                                    "with one parameter")
        if self.op in catalogue.ATTN_OPERATORS:
            raise BendlabValueError(f"music bend {self.op} transforms an attention map; accepted: an operator on the "
                                    "latent")
        low, high = check_range(self.low, self.high)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        for v in (low, high):
            operators.check_param(self.op, round(v) if self.op in catalogue.INTEGER_OPERATORS else v)
        if self.layer is not None:
            check_int("music bend layer", self.layer, 0, accepted="a denoising step 0..steps of the music")
        if Where.parse(self.where).kind not in ("all", "time"):
            raise BendlabValueError(f"music bend where {self.where!r}: a curve bends the music frame by frame in time; "
                                    "accepted: all, or time:A-B (only those seconds)")


def latent_values(curve: np.ndarray, fps: float, config: MusicConfig, seconds: float) -> np.ndarray:
    """The curve's value for each latent frame of a `seconds`-long output: frame k takes the value of the video
    frame under its centre, (k + 1/2)/rate s (the last video frame's value past the curve's end)."""
    curve = np.asarray(curve, dtype=np.float64)
    k = np.arange(n_frames(config, seconds))
    i = np.floor((k + 0.5) / config.rate * fps + 1e-9).astype(int)
    return curve[np.clip(i, 0, len(curve) - 1)]


def n_frames(config: MusicConfig, seconds: float) -> int:
    """The latent frames a `seconds`-long output is decoded from (a last one with less than EDGE of a frame in the
    output is left out)."""
    return max(1, math.ceil(seconds * config.rate - EDGE))


def curve_bends(curve: np.ndarray, fps: float, bend: MusicBend, layer: int, config: MusicConfig,
                seconds: float) -> list["Bend"]:
    """The bends that give every latent frame of the output its own value of `curve` (one value per video frame
    at `fps`, already in `bend`'s range): one `Bend(bend.op, value, layer, time:A-B)` per run of frames with one
    value, within `bend.where` (all, or a time span).

    Notebook: notebooks/11_bending_music.ipynb
    """
    from ..bend.bends import Bend
    from ..bend.where import Where
    values = latent_values(curve, fps, config, seconds)
    first, end = 0, len(values)
    where = Where.parse(bend.where)
    if where.kind == "time":
        first, end = where.at_rate(config.rate).frames(end)
    bends, a = [], first
    for b in range(first + 1, end + 1):
        if b == end or values[b] != values[a]:
            span = ((a + EDGE) / config.rate, min((b - EDGE) / config.rate, seconds))
            bends.append(Bend(bend.op, float(values[a]), layer, Where("time", span=span)))
            a = b
    return bends
