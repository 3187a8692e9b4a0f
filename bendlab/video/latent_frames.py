"""Video frames and latent frames under temporal compression: which latent frame holds a video frame, and one bend
parameter per latent frame from a curve with one value per video frame.

A video VAE that compresses time r-fold (Wan 2.x: r = 4; LTX-Video 0.9: r = 8) encodes F = r (F' - 1) + 1 video
frames as F' latent frames: latent frame 0 holds video frame 0 alone, and latent frame j >= 1 holds video frames
r (j - 1) + 1 .. r j. Read in diffusers 0.42's decoders: Wan's `AutoencoderKLWan._decode` decodes one latent frame
at a time, and its temporal upsamplers (`WanResample`, mode "upsample3d") leave the first chunk at one frame (the
"Rep" cache entry) and double every later chunk, twice: 1, then 4 frames per latent frame; LTX-Video's
`LTXVideoUpsampler3d` turns each latent frame into `stride` frames and drops the first stride - 1 of the clip,
three times: frame 0 alone, then 8 per latent frame. The pipelines count the same way (`prepare_latents`:
(num_frames - 1) // r + 1 latent frames).

A latent frame's parameter is the **mean** of the curve over the video frames it holds (a box filter of width r,
aligned with the latent frames): every video frame's value counts, so a one-frame accent in the music reaches the
latent at 1/r of its height rather than vanishing when it misses a sampled centre frame, and a step in the curve
at frame k first changes the latent frame that holds k (with the centre value a step after the centre would wait
for the next latent frame). The timing error that follows: a video frame is shown with the mean over the r frames
of its latent frame, a window containing it, so a change of the curve at frame k starts showing at most r - 1
frames before k (at the first frame of k's latent frame) and is complete at most r - 1 frames after it
(`timing_error`): 3 frames, 125 ms at 24 fps, for Wan; 7 frames, 292 ms, for LTX-Video. Frame 0 is exact. The VAE
decoder adds its own reach across latent frames (measured in tests/video/test_dit_families.py, docs/models.md).
"""

from __future__ import annotations

import numpy as np

from ..checks import BendlabValueError


def check_frames(n_frames: int, r: int) -> int:
    """The latent frames F' of a clip of n_frames video frames under r-fold temporal compression; a one-line error
    unless n_frames = r (F' - 1) + 1 (the pipelines would round it, and the clip would not be the one asked for)."""
    if not isinstance(n_frames, (int, np.integer)) or n_frames < 1 or (n_frames - 1) % r:
        below = max(1, (int(n_frames) - 1) // r * r + 1) if isinstance(n_frames, (int, np.integer)) else 1
        raise BendlabValueError(f"{n_frames} video frames do not fill whole latent frames (the VAE compresses time "
                                f"{r}x); accepted: 1 + {r} k frames, e.g. {below} or {below + r}")
    return (n_frames - 1) // r + 1


def frames_of(j: int, r: int) -> range:
    """The video frames latent frame j holds: 0 alone for j = 0, else r (j - 1) + 1 .. r j."""
    return range(0, 1) if j == 0 else range(r * (j - 1) + 1, r * j + 1)


def latent_frame_of(k: int, r: int) -> int:
    """The latent frame that holds video frame k (the inverse of `frames_of`)."""
    return (k + r - 1) // r


def per_latent_frame(curve, r: int) -> np.ndarray:
    """One value per latent frame from a curve with one value per video frame (along its last axis, F = r (F' - 1)
    + 1 of them): the mean over the frames each latent frame holds. (..., F) -> (..., F')."""
    curve = np.asarray(curve, dtype=float)
    n = check_frames(curve.shape[-1], r)
    starts = np.array([frames_of(j, r).start for j in range(n)])
    counts = np.array([len(frames_of(j, r)) for j in range(n)])
    return np.add.reduceat(curve, starts, axis=-1) / counts


def timing_error(r: int, fps: float | None = None) -> float:
    """The most a change of the curve is shown early (or completed late) by `per_latent_frame`: r - 1 frames, or
    (r - 1) / fps seconds when fps is given."""
    return (r - 1) / fps if fps else float(r - 1)
