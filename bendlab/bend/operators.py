"""The paper's operators on a latent batch (B, C, H, W): point-wise, tensor (channel rotations, reflections),
and morphological; and AttentionBender's spatial transforms of attention maps (`ATTN_OPERATORS`, attention targets
only).

Every operator has the signature ``f(x, r) -> tensor`` where ``r`` is a float or a tensor of shape (B,), one
value per batch item (so a batch of video frames can carry different values). The operators with several
parameters (`N_PARAMS`: ``matrix`` 16, ``rotate6`` 6) take K numbers, or a (B, K) tensor with one set per batch
item. Rotations and kornia run in float32 and are cast back, so float16 latents on CUDA work too. ``OPERATORS``
maps the user-facing name to the function; ``check_param`` validates a parameter before any model work.

The authors' follow-up operators (their JAES 2025 work, dzluke/StreamDiffusion ``utils/bending.py``):
``matrix`` (their ``tensor_multiply``), ``rotate6`` (``six_plane_rotation``) and ``hadamard`` (``hadamard1``,
here normalised); each docstring says where bendlab agrees with their code and where it differs.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from ..checks import BendlabValueError
from .catalogue import INTEGER_OPERATORS, N_PARAMS, NO_PARAM_OPERATORS, NORM_DIMS, PARAM_RANGES
# the rest of what the operators are (`catalogue`: one source, read without torch), offered here too
from .catalogue import ATTN_OPERATORS, CHANNEL_OPERATORS, FORMULAS, KERNEL_OPERATORS, POINTWISE_OPERATORS  # noqa: F401

Param = "float | torch.Tensor"


def _per_item(x: torch.Tensor, r, dtype=None) -> torch.Tensor:
    """r as a tensor broadcastable against x (B, C, H, W): a scalar, or one value per batch item."""
    r = torch.as_tensor(r, dtype=dtype or x.dtype, device=x.device)
    if r.ndim == 0:
        return r
    if r.shape != (x.shape[0],):
        raise BendlabValueError(f"parameter of shape {tuple(r.shape)} does not match a batch of {x.shape[0]}; "
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
        raise BendlabValueError(f"tensor operators act on 4 latent channels; got a tensor with {x.shape[1]} channels")
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


# ------------------------------------------------------------------------------------------ the authors' follow-up
# what the operators with several parameters (`N_PARAMS`) accept, in words
_ACCEPTED = {"matrix": "16 numbers (a 4x4 matrix row by row, m00,m01,..,m33), a 4x4 nested list, or one such "
                       "matrix per batch item, shape (B, 16) or (B, 4, 4)",
             "rotate6": "6 angles in radians (planes 0-1, 0-2, 0-3, 1-2, 1-3, 2-3), or one set per batch item, "
                        "shape (B, 6)",
             "attn_translate": "2 numbers dx,dy (fractions of the map's width and height), or one pair per batch "
                               "item, shape (B, 2)"}


def canonical_param(name: str, r):
    """`r` as the operator stores it: a sequence becomes a float64 tensor, and a matrix given as (4, 4) or
    (B, 4, 4) becomes (16,) or (B, 16), row by row. Other values are returned as they are."""
    if not isinstance(r, torch.Tensor) and isinstance(r, (list, tuple)):
        r = torch.tensor(r, dtype=torch.float64)
    if name == "matrix" and isinstance(r, torch.Tensor) and r.ndim >= 2 and tuple(r.shape[-2:]) == (4, 4):
        r = r.reshape(*r.shape[:-2], 16)
    return r


def batch_of(name: str, r) -> int | None:
    """How many batch items `r` gives values for, or None when one value (one set of K) serves every item."""
    r = canonical_param(name, r)
    if not isinstance(r, torch.Tensor):
        return None
    per_item_ndim = 2 if name in N_PARAMS else 1
    return r.shape[0] if r.ndim == per_item_ndim else None


def _vector(x: torch.Tensor, r, name: str) -> torch.Tensor:
    """r of a K-parameter operator as a float32 (K,) or (B, K) tensor on x's device (B = x's batch)."""
    k = N_PARAMS[name]
    r = canonical_param(name, r)
    r = torch.as_tensor(r, dtype=torch.float32, device=x.device)
    if r.shape == (k,) or (r.ndim == 2 and r.shape == (x.shape[0], k)):
        return r
    raise BendlabValueError(f"{name}: parameter of shape {tuple(r.shape)} for a batch of {x.shape[0]}; accepted: "
                            f"{_ACCEPTED[name]}")


def matrix(x: torch.Tensor, r) -> torch.Tensor:
    """Contract any 4x4 matrix M with the channel dimension: f(x)[i] = sum_j M[i, j] x[j]; r = M's 16 entries row
    by row (or M itself as 4x4), or one matrix per batch item.

    The authors' code: ``tensor_multiply(op)`` = ``torch.tensordot(op, x, dims=1)`` on a (4, H, W) latent, the same
    contraction (M's rows index the output channels). Their JAES videos take M from a 16-value audio embedding
    (see `bendlab.mapping.Mapping`, feature embed16). matrix with the identity is no bend; diag(1, 1, 1, -1) is
    ``reflect 3``; any rotation R_k is ``matrix`` with R_k's entries.
    """
    M = _vector(x, r, "matrix")
    return _contract(x, M.reshape(*M.shape[:-1], 4, 4))


# the six planes of 4-D channel space, in the authors' order (their make_six_plane_rotation_matrix)
SIX_PLANES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))


def six_plane_matrix(angles) -> torch.Tensor:
    """The authors' six-plane rotation: R(0-1, a0) R(0-2, a1) R(0-3, a2) R(1-2, a3) R(1-3, a4) R(2-3, a5), each
    plane's R(i-j, a) the identity with [i, i] = [j, j] = cos a, [i, j] = -sin a, [j, i] = +sin a, multiplied left
    to right (so the 2-3 plane acts first). angles: (6,) -> (4, 4), or (B, 6) -> (B, 4, 4).

    Agrees with the authors' ``make_six_plane_rotation_matrix`` (the same planes, signs and order). Against the
    paper's R1..R4 (`rotation_matrix`): plane 1-2 is R1 and plane 0-1 is R4 with the same angle, but planes 0-2
    and 0-3 carry the opposite sign (the paper prints R2 and R3 with +sin above the diagonal), so a0-only is
    R4(a0), a3-only is R1(a3), a1-only is R2(-a1), a2-only is R3(-a2).
    """
    a = torch.as_tensor(angles, dtype=torch.float32)
    c, s = torch.cos(a), torch.sin(a)
    M = torch.eye(4, device=a.device).expand(*a.shape[:-1], 4, 4).clone()
    for k, (i, j) in enumerate(SIX_PLANES):
        R = torch.eye(4, device=a.device).expand(*a.shape[:-1], 4, 4).clone()
        R[..., i, i] = c[..., k]
        R[..., j, j] = c[..., k]
        R[..., i, j] = -s[..., k]
        R[..., j, i] = s[..., k]
        M = M @ R
    return M


def rotate6(x: torch.Tensor, r) -> torch.Tensor:
    """Rotate in all six planes of the 4-D channel space: contract `six_plane_matrix(r)` with the channel
    dimension; r = six angles in radians (planes 0-1, 0-2, 0-3, 1-2, 1-3, 2-3), or one set per batch item.

    The authors' ``six_plane_rotation(angles)``, the same matrix and contraction. Zero angles are no bend.
    """
    return _contract(x, six_plane_matrix(_vector(x, r, "rotate6")))


# the normalised Sylvester-Hadamard matrix (scipy.linalg.hadamard(4) / 2): symmetric and orthogonal, H H = I
HADAMARD = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0],
                         [1.0, -1.0, -1.0, 1.0]]) / 2


def hadamard(x: torch.Tensor, r=0.0) -> torch.Tensor:
    """Contract the normalised 4x4 Hadamard matrix H = hadamard(4) / 2 with the channel dimension; it is its own
    inverse (two hadamard bends are no bend). r is ignored (there is no parameter; 0 by default).

    The authors' ``hadamard1(r)`` contracts scipy's *unnormalised* hadamard(4) (entries +-1), which also scales
    the latent by 2 (H H = 4 I); bendlab divides by 2 so the transform keeps the latent's norm and undoes itself.
    The authors' r is ignored there too. Their ``hadamard2`` (a 64x64 Hadamard over the latent's rows) is not
    here.
    """
    return _contract(x, HADAMARD)


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


# ------------------------------------------------------------------------------------------ attention maps
# AttentionBender's (arXiv 2604.20936) spatial transforms of a token's attention map. They act on x (B, C, H, W) as
# C images of H x W: an attention target (`Bend(..., target="attn:...")`) hands them each token's map over the
# image, at that block's resolution, as one such image; every other target refuses them (`ATTN_OPERATORS`).
# Warps and blur use kornia in float32 (cast back); a zero parameter returns x unchanged, bit for bit.
def _items(x: torch.Tensor, r, k: int = 1) -> torch.Tensor:
    """r as a float32 (B,) tensor (k = 1) or (B, k) tensor on x's device: a number or k numbers repeated for every
    item, or one value (one set) per item."""
    r = torch.as_tensor(r, dtype=torch.float32, device=x.device)
    one = r.ndim == 0 if k == 1 else r.shape == (k,)
    if one:
        return r.expand(x.shape[0], *([k] if k > 1 else []))
    if r.shape[0] != x.shape[0]:
        _per_item(x, r if k == 1 else r[:, 0])  # raises the one-line shape error
    return r


def _keep_zero(x: torch.Tensor, y: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """y, except the items whose parameter is all zeros, which keep x exactly."""
    zero = (r == 0) if r.ndim == 1 else (r == 0).all(dim=1)
    return torch.where(zero.view(-1, *([1] * (x.ndim - 1))), x, y)


def attn_rotate(x: torch.Tensor, r) -> torch.Tensor:
    """Rotate each H x W map by r radians about its centre, counter-clockwise as the image is shown (kornia's
    convention), bilinear, zeros where the rotated map leaves the frame."""
    from kornia.geometry.transform import rotate
    r = _items(x, r)
    y = rotate(x.float(), torch.rad2deg(r), mode="bilinear", padding_mode="zeros", align_corners=True)
    return _keep_zero(x, y.to(x.dtype), r)


def attn_translate(x: torch.Tensor, r) -> torch.Tensor:
    """Shift each H x W map by (dx, dy) fractions of its width and height (r = two numbers, or one pair per item;
    +dx moves it right, +dy down), bilinear, zeros where it leaves the frame."""
    from kornia.geometry.transform import translate
    r = _items(x, canonical_param("attn_translate", r), 2)
    pixels = r * torch.tensor([x.shape[-1], x.shape[-2]], dtype=torch.float32, device=x.device)
    y = translate(x.float(), pixels, mode="bilinear", padding_mode="zeros", align_corners=True)
    return _keep_zero(x, y.to(x.dtype), r)


def attn_flip(x: torch.Tensor, r) -> torch.Tensor:
    """Flip each H x W map: r = 0 turns it upside down (its rows reversed), r = 1 mirrors it left-right."""
    r = _items(x, r).round()
    rows = (r == 0).view(-1, *([1] * (x.ndim - 1)))
    return torch.where(rows, x.flip(-2), x.flip(-1))


def attn_blur(x: torch.Tensor, r) -> torch.Tensor:
    """Gaussian blur of each H x W map with standard deviation r pixels (of the map; r >= 0, 0 is no blur),
    kornia's gaussian_blur2d with replicated borders, the kernel 2 ceil(3 r) + 1 wide (at most 2 max(H, W) - 1)."""
    import kornia.filters
    r = _items(x, r)
    if not (r > 0).any():
        return x
    k = min(2 * math.ceil(3 * float(r.max())) + 1, 2 * max(x.shape[-2:]) - 1)
    sigma = r.clamp_min(1e-3).unsqueeze(1).expand(-1, 2)
    y = kornia.filters.gaussian_blur2d(x.float(), (k, k), sigma, border_type="replicate")
    return _keep_zero(x, y.to(x.dtype), r)


OPERATORS: dict[str, Callable] = {
    "add": add, "multiply": multiply, "threshold": threshold, "gate": gate, "invert": invert,
    "rotate1": rotate1, "rotate2": rotate2, "rotate3": rotate3, "rotate4": rotate4, "reflect": reflect,
    "erode": erode, "dilate": dilate, "matrix": matrix, "rotate6": rotate6, "hadamard": hadamard,
    "attn_rotate": attn_rotate, "attn_translate": attn_translate, "attn_flip": attn_flip, "attn_blur": attn_blur,
}  # the names, formulas, ranges and kinds of parameter are `catalogue`'s (its NAMES, in this order)


def slider_range(name: str) -> tuple[float, float, float]:
    """(low, high, step) of a slider for operator `name`: its typical range, whole steps for integer parameters
    (channels, kernel sizes), 1/200 of the range otherwise."""
    get(name)
    lo, hi = PARAM_RANGES[name]
    return float(lo), float(hi), 1.0 if name in INTEGER_OPERATORS + NO_PARAM_OPERATORS else (hi - lo) / 200


def get(name: str) -> Callable:
    """The operator called `name`, or a one-line error listing the valid names."""
    try:
        return OPERATORS[name]
    except (KeyError, TypeError):
        raise BendlabValueError(f"unknown operator {name!r}; accepted: {', '.join(OPERATORS)}") from None


def check_param(name: str, r) -> None:
    """Raise a one-line ValueError if `r` is outside the domain of operator `name` (for the operators with
    several parameters, `N_PARAMS`, also if it is not K numbers or a (B, K) set of them)."""
    get(name)
    r = canonical_param(name, r)
    vals = torch.as_tensor(r, dtype=torch.float64)
    if name in N_PARAMS:
        k = N_PARAMS[name]
        if vals.ndim == 0 or vals.shape[-1] != k or vals.ndim > 2 or vals.shape[0] == 0:
            n = vals.numel()
            count = f"{n} parameter value{'s' * (n != 1)}" if vals.ndim <= 1 else f"parameter of shape " \
                f"{tuple(vals.shape)}"
            raise BendlabValueError(f"{name}: {count}; accepted: {_ACCEPTED[name]}")
    vals = vals.reshape(-1)
    r = _show(r)
    if vals.numel() == 0:
        raise BendlabValueError(f"{name}: parameter is empty; accepted: a number or one number per batch item")
    if not torch.isfinite(vals).all():
        raise BendlabValueError(f"{name}: parameter {r} is NaN or infinite; accepted: finite numbers")
    if (vals.abs() > F32_MAX).any():
        raise BendlabValueError(f"{name}: parameter {r} is beyond the float32 range of the latent; accepted: "
                                f"|r| <= {F32_MAX:.3g}")
    if name in NO_PARAM_OPERATORS and (vals != 0).any():
        raise BendlabValueError(f"{name}: parameter {r} would be ignored ({name} has none); accepted: no parameter "
                                "(or 0)")
    if name == "invert" and (vals == 0).any():
        raise BendlabValueError("invert: parameter r = 0 has no inverse (f(x) = 1/r - x); accepted: any r != 0")
    if name == "invert" and (vals.abs() < 1 / F32_MAX).any():
        raise BendlabValueError(f"invert: parameter {r} makes 1/r overflow float32; accepted: |r| >= {1 / F32_MAX:.3g}")
    if name == "reflect" and ((vals != vals.round()) | (vals < 0) | (vals > 3)).any():
        raise BendlabValueError(f"reflect: channel {r} is not an integer in 0..3; accepted: 0, 1, 2 or 3")
    if name in ("erode", "dilate") and ((vals != vals.round()) | (vals < 1)).any():
        raise BendlabValueError(f"{name}: kernel size {r} is not an integer >= 1; accepted: 1, 2, 3, ...")
    if name == "attn_flip" and ((vals != 0) & (vals != 1)).any():
        raise BendlabValueError(f"attn_flip: axis {r} is not 0 or 1; accepted: 0 (upside down) or 1 (left-right)")
    if name == "attn_blur" and (vals < 0).any():
        raise BendlabValueError(f"attn_blur: sigma {r} is negative; accepted: r >= 0 pixels (0 is no blur)")


def _show(r) -> str:
    """A parameter as one short line (a tensor's repr wraps across lines)."""
    text = str(r.tolist()) if isinstance(r, torch.Tensor) else repr(r)
    return text if len(text) <= 80 else text[:77] + "..."


F32_MAX = float(torch.finfo(torch.float32).max)


def mean_normalise(x: torch.Tensor, along: str) -> torch.Tensor:
    """The paper's normalisation after a morphological operator: subtract the mean along one dimension.

    along="row": each row's mean (over its columns) is subtracted from that row; "column": each column's mean;
    "channel": each pixel's mean over the channels.
    """
    if along not in NORM_DIMS:
        raise BendlabValueError(f"unknown normalisation {along!r}; accepted: {', '.join(NORM_DIMS)}")
    return x - x.mean(dim=NORM_DIMS[along], keepdim=True)
