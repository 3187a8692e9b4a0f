"""Every operator against its formula, on random tensors; batched parameters; float16; where-masks."""

import math

import pytest
import torch

from bendlab.bend import operators as ops
from bendlab.bend import Bend
from bendlab.bend import Where
from conftest import assert_latents_close

torch.manual_seed(0)
X = torch.randn(3, 4, 8, 8)


@pytest.mark.parametrize("name,r,expected", [
    ("add", 0.7, lambda x: x + 0.7),
    ("multiply", -2.5, lambda x: x * -2.5),
    ("threshold", 0.1, lambda x: (x >= 0.1).float()),
    ("gate", 0.5, lambda x: x * (x.abs() >= 0.5)),
    ("invert", 4.0, lambda x: 0.25 - x),
])
def test_pointwise_formulas(name, r, expected):
    torch.testing.assert_close(ops.OPERATORS[name](X, r), expected(X))


def test_the_catalogue_describes_every_operator_in_order():
    """`catalogue` (what the command line reads without torch) and `operators` (the functions) name the same
    operators in the same order, and the kinds and parameter counts name only operators."""
    from bendlab.bend import catalogue
    assert tuple(ops.OPERATORS) == catalogue.NAMES == tuple(catalogue.PARAM_RANGES)
    assert ops.FORMULAS is catalogue.FORMULAS and ops.N_PARAMS is catalogue.N_PARAMS
    kinds = (catalogue.N_PARAMS, catalogue.NO_PARAM_OPERATORS, catalogue.INTEGER_OPERATORS, catalogue.KERNEL_OPERATORS,
             catalogue.POINTWISE_OPERATORS, catalogue.CHANNEL_OPERATORS, catalogue.ATTN_OPERATORS)
    assert all(set(k) <= set(catalogue.NAMES) for k in kinds)


def test_threshold_and_gate_differ_as_documented():
    t, g = ops.threshold(X, 0.1), ops.gate(X, 0.1)
    assert set(t.unique().tolist()) <= {0.0, 1.0}
    assert (g[g != 0] == X[g != 0]).all() and (g[X.abs() < 0.1] == 0).all()


@pytest.mark.parametrize("k,plane", [(1, (1, 2)), (2, (0, 2)), (3, (0, 3)), (4, (0, 1))])
def test_rotation_matrices_as_printed(k, plane):
    t = 0.3
    R = ops.rotation_matrix(k, t)
    i, j = plane
    c, s = math.cos(t), math.sin(t)
    assert R[i, i] == pytest.approx(c) and R[j, j] == pytest.approx(c)
    # the paper's signs: R1, R4 have -sin above the diagonal, R2, R3 have +sin there
    sign_above = -1 if k in (1, 4) else 1
    assert R[i, j] == pytest.approx(sign_above * s) and R[j, i] == pytest.approx(-sign_above * s)
    others = [m for m in range(4) if m not in plane]
    for m in others:
        assert R[m, m] == 1


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_rotations_orthonormal_and_inverse(k):
    for t in (0.0, 0.4, math.pi / 2, 5.0):
        R = ops.rotation_matrix(k, t)
        torch.testing.assert_close(R @ R.T, torch.eye(4), atol=1e-6, rtol=0)
        torch.testing.assert_close(R @ ops.rotation_matrix(k, -t), torch.eye(4), atol=1e-6, rtol=0)
    y = ops.OPERATORS[f"rotate{k}"](X, 0.9)
    torch.testing.assert_close(ops.OPERATORS[f"rotate{k}"](y, -0.9), X, atol=1e-5, rtol=0)
    torch.testing.assert_close(y, torch.einsum("ij,bjhw->bihw", ops.rotation_matrix(k, 0.9), X))


def test_rotate1_turns_channels_1_and_2_only():
    y = ops.rotate1(X, math.pi / 2)
    torch.testing.assert_close(y[:, [0, 3]], X[:, [0, 3]])
    torch.testing.assert_close(y[:, 1], -X[:, 2])
    torch.testing.assert_close(y[:, 2], X[:, 1])


@pytest.mark.parametrize("c", range(4))
def test_reflection_involutive(c):
    y = ops.reflect(X, c)
    torch.testing.assert_close(y[:, c], -X[:, c])
    torch.testing.assert_close(ops.reflect(y, c), X)
    assert torch.allclose(ops.reflection_matrix(c) @ ops.reflection_matrix(c), torch.eye(4))


def test_morphology_matches_kornia_and_manual():
    import kornia.morphology as km
    k = torch.ones(3, 3)
    torch.testing.assert_close(ops.erode(X, 3), km.erosion(X, k))
    torch.testing.assert_close(ops.dilate(X, 3), km.dilation(X, k))
    # dilation with a 3x3 kernel of ones (kornia's geodesic border) is a max over the neighbourhood
    mx = torch.nn.functional.max_pool2d(X, 3, stride=1, padding=1)
    torch.testing.assert_close(ops.dilate(X, 3)[..., 1:-1, 1:-1], mx[..., 1:-1, 1:-1])
    assert (ops.erode(X, 1) == X).all()


def test_mean_normalise_dims():
    y = ops.mean_normalise(X, "row")
    assert y.mean(dim=-1).abs().max() < 1e-6  # each row's mean is removed
    assert ops.mean_normalise(X, "column").mean(dim=-2).abs().max() < 1e-6
    assert ops.mean_normalise(X, "channel").mean(dim=1).abs().max() < 1e-6


@pytest.mark.parametrize("name,params", [
    ("add", [0.0, 1.0, -2.0]), ("multiply", [1.0, 2.0, 0.5]), ("threshold", [0.0, 0.5, 1.0]),
    ("gate", [0.0, 0.5, 1.0]), ("invert", [1.0, 2.0, -4.0]), ("rotate1", [0.0, 1.0, 3.0]),
    ("rotate3", [0.5, 1.0, 2.0]), ("reflect", [0, 2, 3]), ("erode", [1, 2, 3]), ("dilate", [3, 1, 3]),
])
def test_batched_parameters_equal_per_item(name, params):
    f = ops.OPERATORS[name]
    batched = f(X, torch.tensor(params))
    for b, p in enumerate(params):
        assert_latents_close(batched[b:b + 1], f(X[b:b + 1], p), X)  # bmm vs mm: within LATENT_ATOL


@pytest.mark.parametrize("name,r", [("add", 1.0), ("multiply", 2.0), ("threshold", 0.1), ("gate", 0.1),
                                    ("invert", 2.0), ("rotate2", 1.0), ("reflect", 1), ("erode", 2),
                                    ("dilate", 2)])
def test_float16(name, r):
    f = ops.OPERATORS[name]
    y16 = f(X.half(), r)
    assert y16.dtype == torch.float16
    torch.testing.assert_close(y16.float(), f(X, r), atol=2e-2, rtol=1e-2)


@pytest.mark.parametrize("name,r,msg", [
    ("invert", 0, "r = 0"), ("erode", 0, "kernel size"), ("dilate", 2.5, "kernel size"),
    ("reflect", 4, "0..3"), ("add", float("nan"), "NaN"), ("multiply", float("inf"), "infinite"),
])
def test_bad_parameters_one_line(name, r, msg):
    with pytest.raises(ValueError, match=msg) as e:
        ops.check_param(name, r)
    assert "\n" not in str(e.value)


def test_unknown_operator_lists_valid():
    with pytest.raises(ValueError, match="accepted: add, multiply"):
        Bend("rotate9", 1.0)


@pytest.mark.parametrize("spec,count", [("all", None), ("row:3", 4 * 8), ("column:0", 4 * 8),
                                        ("channel:2", 64), ("fraction:0.05", round(0.05 * 256)),
                                        ("region:0,0,0.5,0.25", 4 * 2 * 4)])
def test_where_masks(spec, count):
    w = Where.parse(spec)
    m = w.mask((1, 4, 8, 8))
    if count is None:
        assert m is None
    else:
        assert int(m.sum()) == count
    y = Bend("add", 1.0, 0, spec).apply(X)
    sel = torch.ones_like(X, dtype=torch.bool) if m is None else m.expand_as(X)
    torch.testing.assert_close(y[sel], X[sel] + 1)
    torch.testing.assert_close(y[~sel], X[~sel])


def test_fraction_mask_seeded_and_independent_of_global_rng():
    a = Where.parse("fraction:0.1:seed=3").mask((1, 4, 8, 8))
    torch.manual_seed(123)
    torch.rand(10)
    b = Where.parse("fraction:0.1:seed=3").mask((1, 4, 8, 8))
    c = Where.parse("fraction:0.1:seed=4").mask((1, 4, 8, 8))
    assert (a == b).all() and not (a == c).all()


@pytest.mark.parametrize("spec,msg", [("row:16", "0..15"), ("channel:4", "0..3"), ("fraction:0", r"\(0, 1\]"),
                                      ("fraction:1.5", r"\(0, 1\]"), ("region:0.5,0.5,0.5,0.9", "empty"),
                                      ("region:0,0,1.2,1", "unit square"), ("blob", "accepted forms")])
def test_bad_where_one_line(spec, msg):
    with pytest.raises(ValueError, match=msg) as e:
        Bend("add", 1.0, 0, spec).check(50, (1, 4, 16, 16))
    assert "\n" not in str(e.value)


def test_norm_after_operator_and_layer_ranges():
    b = Bend("dilate", 3, (0, 2), norm="row")
    assert b.layers == (0, 1, 2)
    torch.testing.assert_close(b.apply(X), ops.mean_normalise(ops.dilate(X, 3), "row"))
    with pytest.raises(ValueError, match="outside 0..50"):
        Bend("add", 1.0, 51).check(50, (1, 4, 16, 16))
    with pytest.raises(ValueError, match="cannot bend a UNet module"):
        Bend("rotate1", 1.0, 3, module="mid_block")
