"""The paper's operators on a latent batch (B, C, H, W): point-wise, tensor (channel rotations, reflections),
and morphological.

Every operator has the signature ``f(x, r) -> tensor`` where ``r`` is a float or a tensor of shape (B,), one
value per batch item (so a batch of video frames can carry different values). Rotations and kornia run in
float32 and are cast back, so float16 latents on CUDA work too. ``OPERATORS`` maps the user-facing name to the
function; ``check_param`` validates a parameter before any model work.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Param = "float | torch.Tensor"


def _per_item(x: torch.Tensor, r, dtype=None) -> torch.Tensor:
    """r as a tensor broadcastable against x (B, C, H, W): a scalar, or one value per batch item."""
    r = torch.as_tensor(r, dtype=dtype or x.dtype, device=x.device)
    if r.ndim == 0:
        return r
    if r.shape != (x.shape[0],):
        raise ValueError(f"parameter of shape {tuple(r.shape)} does not match a batch of {x.shape[0]}; "
                         f"accepted: a number or one value per batch item, shape ({x.shape[0]},)")
    return r.view(-1, *([1] * (x.ndim - 1)))


# ------------------------------------------------------------------------------------------ point-wise
def add(x: torch.Tensor, r) -> torch.Tensor:
    """Paper eq. 1: f(x) = x + r."""
    return x + _per_item(x, r)


def multiply(x: torch.Tensor, r) -> torch.Tensor:
    """Paper eq. 2: f(x) = x * r."""
    return x * _per_item(x, r)


def threshold(x: torch.Tensor, r) -> torch.Tensor:
    """Paper eq. 3, hard threshold: f(x) = 1 where x >= r, else 0.

    The paper prints this 1/0 form; the authors' published code instead keeps x where |x| >= r (see `gate`).
    """
    return (x >= _per_item(x, r)).to(x.dtype)


def gate(x: torch.Tensor, r) -> torch.Tensor:
    """The authors' code's threshold, a magnitude gate: f(x) = x where |x| >= r, else 0.

    Unlike the paper's eq. 3 (`threshold`) it keeps each surviving value and its sign.
    """
    return torch.where(x.abs() >= _per_item(x, r), x, torch.zeros_like(x))


def invert(x: torch.Tensor, r) -> torch.Tensor:
    """Paper eq. 4, inversion: f(x) = 1/r - x (r = 0 is rejected)."""
    return 1.0 / _per_item(x, r) - x


# ------------------------------------------------------------------------------------------ tensor operators
# (i, j) planes of the paper's R1..R4, with the sign convention printed there: R[i, j] = -sin, R[j, i] = +sin
# for R1 (channels 1-2) and R4 (0-1); R2 (0-2) and R3 (0-3) have +sin above the diagonal.
_PLANES = {1: (1, 2, -1.0), 2: (0, 2, +1.0), 3: (0, 3, +1.0), 4: (0, 1, -1.0)}


def rotation_matrix(k: int, theta) -> torch.Tensor:
    """The paper's 4x4 rotation R_k(theta), theta in radians (a float or a (B,) tensor -> (B, 4, 4))."""
    i, j, s = _PLANES[k]
    t = torch.as_tensor(theta, dtype=torch.float32)
    batch = t.shape
    R = torch.eye(4, device=t.device).expand(*batch, 4, 4).clone()
    c, sn = torch.cos(t), torch.sin(t)
    R[..., i, i] = c
    R[..., j, j] = c
    R[..., i, j] = s * sn
    R[..., j, i] = -s * sn
    return R


def _contract(x: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Contract a (4, 4) or (B, 4, 4) operator with the channel dimension of x (B, 4, H, W), in float32."""
    if x.shape[1] != 4:
        raise ValueError(f"tensor operators act on 4 latent channels; got a tensor with {x.shape[1]} channels")
    R = R.to(device=x.device, dtype=torch.float32)
    eq = "ij,bjhw->bihw" if R.ndim == 2 else "bij,bjhw->bihw"
    return torch.einsum(eq, R, x.float()).to(x.dtype)


def _rotate(k: int) -> Callable:
    def rotate(x: torch.Tensor, r) -> torch.Tensor:
        r = torch.as_tensor(r, dtype=torch.float32)
        if r.ndim == 1 and r.shape[0] != x.shape[0]:
            _per_item(x, r)  # raises the one-line shape error
        return _contract(x, rotation_matrix(k, r))
    rotate.__name__ = f"rotate{k}"
    planes = {1: "1-2", 2: "0-2", 3: "0-3", 4: "0-1"}[k]
    rotate.__doc__ = (f"Contract the paper's R{k}(theta) (turns latent channels {planes}) with the channel "
                      "dimension; r = theta in radians.")
    return rotate


rotate1, rotate2, rotate3, rotate4 = (_rotate(k) for k in (1, 2, 3, 4))


def reflection_matrix(c) -> torch.Tensor:
    """The 4x4 identity with entry [c, c] = -1 (c a channel in 0..3, or a (B,) tensor -> (B, 4, 4))."""
    c = torch.as_tensor(c).long()
    R = torch.eye(4, device=c.device).expand(*c.shape, 4, 4).clone()
    d = torch.ones(*c.shape, 4, device=c.device)
    d.scatter_(-1, c.unsqueeze(-1), -1.0)
    return R * d.unsqueeze(-1)


def reflect(x: torch.Tensor, r) -> torch.Tensor:
    """Reflect across one latent channel: contract diag(1, .., -1 at channel r, .., 1); r an integer in 0..3."""
    r = torch.as_tensor(r)
    if r.ndim == 1 and r.shape[0] != x.shape[0]:
        _per_item(x, r)
    return _contract(x, reflection_matrix(r.round()))


# ------------------------------------------------------------------------------------------ morphological
def _morph(fn_name: str) -> Callable:
    def morph(x: torch.Tensor, r) -> torch.Tensor:
        import kornia.morphology as km
        fn = getattr(km, fn_name)
        sizes = torch.as_tensor(r).round().long().reshape(-1)
        if sizes.numel() not in (1, x.shape[0]):
            _per_item(x, torch.as_tensor(r))
        xf = x.float()
        out = torch.empty_like(xf)
        for k in sizes.unique().tolist():  # one kornia call per distinct kernel size
            rows = slice(None) if sizes.numel() == 1 else (sizes == k).to(x.device)
            kernel = torch.ones(k, k, device=x.device)
            out[rows] = fn(xf[rows], kernel)
        return out.to(x.dtype)
    morph.__name__ = fn_name
    morph.__doc__ = (f"kornia.morphology.{fn_name} of the latent as a C-channel image with an r x r kernel of ones "
                     "(r an integer >= 1), per channel.")
    return morph


erode, dilate = _morph("erosion"), _morph("dilation")

OPERATORS: dict[str, Callable] = {
    "add": add, "multiply": multiply, "threshold": threshold, "gate": gate, "invert": invert,
    "rotate1": rotate1, "rotate2": rotate2, "rotate3": rotate3, "rotate4": rotate4, "reflect": reflect,
    "erode": erode, "dilate": dilate,
}
# operators that mix the 4 latent channels (only valid on the latent itself, not on other UNet activations)
CHANNEL_OPERATORS = {"rotate1", "rotate2", "rotate3", "rotate4", "reflect"}

# the formulas, for the README table, the CLI help and the widgets
FORMULAS = {
    "add": "x + r", "multiply": "x * r", "threshold": "1 if x >= r else 0 (paper eq. 3)",
    "gate": "x if |x| >= r else 0 (authors' code)", "invert": "1/r - x, r != 0",
    "rotate1": "R1(r) . x, channels 1-2, r in radians", "rotate2": "R2(r) . x, channels 0-2",
    "rotate3": "R3(r) . x, channels 0-3", "rotate4": "R4(r) . x, channels 0-1",
    "reflect": "diag(.., -1 at channel r, ..) . x, r in 0..3",
    "erode": "erosion, r x r kernel of ones, r >= 1", "dilate": "dilation, r x r kernel of ones, r >= 1",
}

# the kind of parameter each operator takes: (low, high) typical slider range
PARAM_RANGES = {
    "add": (-3.0, 3.0), "multiply": (-10.0, 10.0), "threshold": (-2.0, 2.0), "gate": (0.0, 2.0),
    "invert": (0.5, 1000.0), "rotate1": (0.0, 2 * math.pi), "rotate2": (0.0, 2 * math.pi),
    "rotate3": (0.0, 2 * math.pi), "rotate4": (0.0, 2 * math.pi), "reflect": (0, 3), "erode": (1, 8),
    "dilate": (1, 8),
}


def slider_range(name: str) -> tuple[float, float, float]:
    """(low, high, step) of a slider for operator `name`: its typical range, whole steps for integer parameters
    (channels, kernel sizes), 1/200 of the range otherwise."""
    get(name)
    lo, hi = PARAM_RANGES[name]
    return float(lo), float(hi), 1.0 if name in INTEGER_OPERATORS else (hi - lo) / 200


def get(name: str) -> Callable:
    """The operator called `name`, or a one-line error listing the valid names."""
    try:
        return OPERATORS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown operator {name!r}; accepted: {', '.join(OPERATORS)}") from None


def check_param(name: str, r) -> None:
    """Raise a one-line ValueError if `r` is outside the domain of operator `name`."""
    get(name)
    vals = torch.as_tensor(r, dtype=torch.float64).reshape(-1)
    if vals.numel() == 0:
        raise ValueError(f"{name}: parameter is empty; accepted: a number or one number per batch item")
    if not torch.isfinite(vals).all():
        raise ValueError(f"{name}: parameter {r!r} is NaN or infinite; accepted: finite numbers")
    if (vals.abs() > F32_MAX).any():
        raise ValueError(f"{name}: parameter {r!r} is beyond the float32 range of the latent; accepted: "
                         f"|r| <= {F32_MAX:.3g}")
    if name == "invert" and (vals == 0).any():
        raise ValueError("invert: parameter r = 0 has no inverse (f(x) = 1/r - x); accepted: any r != 0")
    if name == "invert" and (vals.abs() < 1 / F32_MAX).any():
        raise ValueError(f"invert: parameter {r!r} makes 1/r overflow float32; accepted: |r| >= {1 / F32_MAX:.3g}")
    if name == "reflect" and ((vals != vals.round()) | (vals < 0) | (vals > 3)).any():
        raise ValueError(f"reflect: channel {r!r} is not an integer in 0..3; accepted: 0, 1, 2 or 3")
    if name in ("erode", "dilate") and ((vals != vals.round()) | (vals < 1)).any():
        raise ValueError(f"{name}: kernel size {r!r} is not an integer >= 1; accepted: 1, 2, 3, ...")


F32_MAX = float(torch.finfo(torch.float32).max)
# operators whose parameter is an integer (a channel, a kernel size); audio-driven values are rounded for them
INTEGER_OPERATORS = ("reflect", "erode", "dilate")
KERNEL_OPERATORS = ("erode", "dilate")

NORM_DIMS = {"channel": 1, "row": -1, "column": -2}


def mean_normalise(x: torch.Tensor, along: str) -> torch.Tensor:
    """The paper's normalisation after a morphological operator: subtract the mean along one dimension.

    along="row": each row's mean (over its columns) is subtracted from that row; "column": each column's mean;
    "channel": each pixel's mean over the channels.
    """
    if along not in NORM_DIMS:
        raise ValueError(f"unknown normalisation {along!r}; accepted: {', '.join(NORM_DIMS)}")
    return x - x.mean(dim=NORM_DIMS[along], keepdim=True)
