"""The previous frame carried forward by its motion: optical-flow warping for the image-to-image chain.

An img2img chain makes each frame from the previous one, so whatever moved between the last two frames stops
dead in the next one: the picture moves only as far as the denoiser drags it. Deforum's users warp the previous
frame by the optical flow of the last two before it seeds the next (its "optical flow cadence"); bendlab does the
same with OpenCV's DIS optical flow (Kroeger et al. 2016, no model weights), medium preset:

    F = the flow from frame k-2 to frame k-1             (`optical_flow`: per pixel, where it moved, in pixels)
    seed of frame k = frame k-1 moved on by flow x F     (`warp`: each pixel fetched from x - flow F(x))

flow 1 assumes the motion goes on as it went; 0.5 carries half of it (a calmer picture); 0 is no warp. Values
above 1 exaggerate the motion. OpenCV is imported only when a warp is asked for.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from ..checks import BendlabValueError


def _rgb(img) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img,
                                           dtype=np.uint8))


def optical_flow(before, after) -> np.ndarray:
    """(H, W, 2) float32: DIS optical flow (medium preset, on the grey levels) from `before` to `after` (PIL images
    or (H, W, 3) uint8 arrays of one size): the pixel at (x, y) in `before` is at (x, y) + flow[y, x] in `after`."""
    import cv2
    a, b = _rgb(before), _rgb(after)
    if a.shape != b.shape:
        raise BendlabValueError(f"optical flow between images of sizes {a.shape[1::-1]} and {b.shape[1::-1]}; "
                                "accepted: two images of one size")
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY), cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None)


def warp(image, flow: np.ndarray, amount: float = 1.0) -> Image.Image:
    """`image` moved on by `amount` x `flow` ((H, W, 2), as `optical_flow` gives it): each output pixel x is fetched
    from x - amount x flow(x), bilinearly (cv2.remap), the border reflected so no black edge creeps in."""
    import cv2
    a = _rgb(image)
    h, w = a.shape[:2]
    if flow.shape != (h, w, 2):
        raise BendlabValueError(f"flow of shape {flow.shape} for a {w}x{h} image; accepted: ({h}, {w}, 2)")
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mx = gx - np.float32(amount) * flow[..., 0]
    my = gy - np.float32(amount) * flow[..., 1]
    return Image.fromarray(cv2.remap(a, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101))


def carry(before, previous, amount: float) -> Image.Image:
    """`previous` warped on by `amount` of the motion from `before` to it: the next frame as if the last two
    frames' motion went on (what seeds an img2img frame with `VideoSpec.flow` = amount)."""
    return warp(previous, optical_flow(before, previous), amount)
