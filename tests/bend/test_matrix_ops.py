"""The authors' follow-up operators (matrix, rotate6, hadamard) against their formulas and the equalities the
issue names, from every front door (Python, --param, recipes), and the audio-driven matrix (feature embed16).

Renders use the shipped model with 4 steps; a bend at layer 2 acts mid-way."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from bendlab import Bend, render
from bendlab.bend import operators as ops
from bendlab.ui.cli import main
from conftest import LATENT_ATOL, assert_frames_close, assert_latents_close

torch.manual_seed(0)
X = torch.randn(3, 4, 8, 8)
IDENTITY = torch.eye(4).reshape(-1).tolist()
STEPS = 4

HADAMARD_ATOL = 2 * LATENT_ATOL
"""hadamard twice vs the input, |x| <= LATENT_MAGNITUDE = 8: H's entries are +-1/2 (exact), so each output is a
sum of 4 exact products with 3 roundings, error <= 3u sum|terms| <= 3u * 2M for inputs up to M (u = 2**-24). The
first pass: M = 8, error <= 2.9e-6, outputs up to 16; the second: <= 5.7e-6 of its own plus H times the first
pass's error (<= 2 x 2.9e-6): 1.15e-5 in all. 2e-5 is 1.7x that worst case; a wrong sign or scale is O(1)."""


def authors_six_plane(angles):
    """dzluke/StreamDiffusion utils/bending.py, make_six_plane_rotation_matrix, transcribed as the reference."""
    planes = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    combined = torch.eye(4)
    for angle, (i, j) in zip(angles, planes):
        m = torch.eye(4)
        a = torch.tensor(angle)
        m[i, i], m[j, j], m[i, j], m[j, i] = torch.cos(a), torch.cos(a), -torch.sin(a), torch.sin(a)
        combined = torch.matmul(combined, m)
    return combined


def draw(pipe, bends=()):
    return np.asarray(render("a floating orb", bends, pipe=pipe, steps=STEPS))


# ------------------------------------------------------------------------------------------ formulas
def test_matrix_is_the_authors_tensordot():
    M = torch.randn(4, 4)
    expected = torch.stack([torch.tensordot(M, x, dims=1) for x in X])  # tensor_multiply, item by item
    torch.testing.assert_close(ops.matrix(X, M.reshape(-1)), expected)
    torch.testing.assert_close(ops.matrix(X, M), expected)  # 4x4 form
    assert torch.equal(Bend("matrix", M.tolist()).param, M.reshape(-1).double())  # nested list -> 16, row by row


def test_rotate6_is_the_authors_six_plane_rotation():
    a = [0.3, -1.2, 0.7, 2.0, 0.1, -0.5]
    R = ops.six_plane_matrix(torch.tensor(a))
    torch.testing.assert_close(R, authors_six_plane(a), atol=1e-6, rtol=0)
    torch.testing.assert_close(R @ R.T, torch.eye(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(ops.rotate6(X, a), torch.einsum("ij,bjhw->bihw", R, X))


def test_hadamard_is_normalised_scipy_hadamard():
    import scipy.linalg
    H = torch.tensor(scipy.linalg.hadamard(4), dtype=torch.float32) / 2
    assert torch.equal(ops.HADAMARD, H)
    torch.testing.assert_close(ops.hadamard(X), torch.einsum("ij,bjhw->bihw", H, X))


@pytest.mark.parametrize("name,k", [("matrix", 16), ("rotate6", 6)])
def test_per_item_parameter_sets_equal_single(name, k):
    p = torch.randn(3, k) * 0.5
    batched = ops.OPERATORS[name](X, p)
    for b in range(3):
        assert_latents_close(batched[b:b + 1], ops.OPERATORS[name](X[b:b + 1], p[b]), X)


@pytest.mark.parametrize("name,r", [("matrix", torch.randn(16).tolist()), ("rotate6", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]),
                                    ("hadamard", 0.0)])
def test_float16_in_float16_out(name, r):
    f = ops.OPERATORS[name]
    y16 = f(X.half(), r)
    assert y16.dtype == torch.float16
    torch.testing.assert_close(y16.float(), f(X, r), atol=5e-2, rtol=1e-2)


# ------------------------------------------------------------------------------------------ the equalities
def test_matrix_identity_is_no_bend(pipe):
    assert torch.equal(ops.matrix(X, IDENTITY), X)
    assert np.array_equal(draw(pipe, [Bend("matrix", IDENTITY, 2)]), draw(pipe))


def test_matrix_diag_is_reflect_3(pipe):
    D = torch.diag(torch.tensor([1.0, 1.0, 1.0, -1.0]))
    assert torch.equal(ops.matrix(X, D), ops.reflect(X, 3))
    assert np.array_equal(draw(pipe, [Bend("matrix", D, 2)]), draw(pipe, [Bend("reflect", 3, 2)]))


def test_rotate6_zero_angles_is_no_bend(pipe):
    assert torch.equal(ops.rotate6(X, [0.0] * 6), X)
    assert np.array_equal(draw(pipe, [Bend("rotate6", [0.0] * 6, 2)]), draw(pipe))


# one non-zero angle: (its index among the six planes, the paper's R_k, the sign of R_k's angle). Planes 1-2 and
# 0-1 are R1 and R4 as printed; the paper prints R2 (0-2) and R3 (0-3) with the other sign of sin
ONE_PLANE = [(3, 1, +1), (1, 2, -1), (2, 3, -1), (0, 4, +1)]


@pytest.mark.parametrize("index,k,sign", ONE_PLANE, ids=[f"R{k}" for _, k, _ in ONE_PLANE])
def test_rotate6_one_angle_is_the_papers_rotation(index, k, sign):
    a = [0.0] * 6
    a[index] = 0.9
    assert torch.equal(ops.six_plane_matrix(torch.tensor(a)), ops.rotation_matrix(k, sign * 0.9))
    assert torch.equal(ops.rotate6(X, a), ops.OPERATORS[f"rotate{k}"](X, sign * 0.9))


def test_rotate6_one_angle_renders_as_rotate1(pipe):
    a = [0.0, 0.0, 0.0, 1.3, 0.0, 0.0]
    assert np.array_equal(draw(pipe, [Bend("rotate6", a, 2)]), draw(pipe, [Bend("rotate1", 1.3, 2)]))


def test_hadamard_twice_is_no_bend(pipe):
    assert_latents_close(ops.hadamard(ops.hadamard(X)), X, X, atol=HADAMARD_ATOL)
    assert not torch.allclose(ops.hadamard(X), X, atol=0.1)  # once is a bend
    twice = [Bend("hadamard", layer=2), Bend("hadamard", layer=2)]
    assert_frames_close(draw(pipe, twice), draw(pipe))


# ------------------------------------------------------------------------------------------ front doors
@pytest.mark.parametrize("param,msg", [
    ([1.0] * 15, "matrix: 15 parameter values; accepted: 16 numbers"),
    (1.0, "matrix: 1 parameter value; accepted: 16 numbers"),
    (torch.ones(2, 15), "matrix: parameter of shape (2, 15); accepted: 16 numbers"),
    ([[1.0, 2.0], [3.0]], "matrix: parameter [[1.0, 2.0], [3.0]] is not numbers"),
    ([1.0] * 15 + [float("nan")], "NaN or infinite"),
])
def test_wrong_matrix_is_one_line(param, msg):
    with pytest.raises(ValueError) as e:
        Bend("matrix", param)
    assert msg in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_wrong_rotate6_and_batch_are_one_line():
    with pytest.raises(ValueError, match=r"rotate6: 5 parameter values; accepted: 6 angles"):
        Bend("rotate6", [0.1] * 5)
    with pytest.raises(ValueError, match=r"matrix: 2 sets of 16 parameters for a batch of 3"):
        Bend("matrix", torch.ones(2, 16)).check(STEPS, (3, 4, 16, 16))
    with pytest.raises(ValueError, match="mixes the 4 latent channels"):
        Bend("matrix", IDENTITY, module="mid_block")


def test_render_grid_refuses_several_parameters():
    from bendlab import render_grid
    with pytest.raises(ValueError, match="render_grid sweeps one number per column; matrix takes 16"):
        render_grid("x", "matrix", IDENTITY, layers=[2])


def test_cli_param_comma_separated(pipe, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    out = tmp_path / "m.png"
    identity = ",".join(f"{v:g}" for v in IDENTITY)
    assert main(["render", "a floating orb", "--op", "matrix", "--param", identity, "--layer", "2", "--steps", "4",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(out)), draw(pipe))
    flip0 = "-1" + identity[1:]  # diag(-1, 1, 1, 1): a first value that argparse must not read as an option
    assert main(["render", "a floating orb", "--op", "matrix", "--param", flip0, "--layer", "2", "--steps", "4",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(out)), draw(pipe, [Bend("reflect", 0, 2)]))


def test_recipe_list_and_hadamard_without_param(pipe, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    recipe = tmp_path / "r.toml"
    recipe.write_text('prompt = "a floating orb"\nsteps = 4\n[[bend]]\nop = "rotate6"\n'
                      'param = [0.0, 0.0, 0.0, 1.3, 0.0, 0.0]\nlayer = 2\n')
    out = tmp_path / "r.png"
    assert main(["render", "--recipe", str(recipe), "--out", str(out)]) == 0, capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(out)), draw(pipe, [Bend("rotate1", 1.3, 2)]))
    assert main(["render", "a floating orb", "--op", "hadamard", "--layer", "2", "--steps", "4",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    assert np.array_equal(np.asarray(Image.open(out)), draw(pipe, [Bend("hadamard", layer=2)]))


def test_operators_lists_the_new_ones(capsys):
    assert main(["operators"]) == 0
    text = capsys.readouterr().out
    for needle in ("matrix", "16 values", "rotate6", "6 values", "hadamard", "no parameter"):
        assert needle in text, needle
    assert math.isclose(ops.PARAM_RANGES["rotate6"][1], 2 * math.pi)


# ------------------------------------------------------------------------------------------ the audio-driven matrix
def test_embed16_is_the_first_16_principal_components():
    from bendlab import audio
    feats = audio.audio_features("bendlab/data/piano.ogg", 20)
    e = feats["embed16"]
    assert e.shape == (feats.n_frames, 16)
    for k in (1, 2, 16):
        np.testing.assert_array_equal(e[:, k - 1], feats[f"pca:{k}"])
    # principal components: uncorrelated, variances falling, and together all of the log-mel's variance the
    # first 16 directions hold (the centred log-mel projected on them)
    logmel = feats.spectral()["_logmel"].T
    X = logmel - logmel.mean(axis=0)
    cov = np.cov(e.T)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 1e-6 * cov.max()
    assert (np.diff(np.diag(cov)) <= 0).all()
    top = np.linalg.eigvalsh(np.cov(X.T))[::-1][:16]
    np.testing.assert_allclose(np.diag(cov), top, rtol=1e-6)
    rms = feats["rms"]
    assert all(np.corrcoef(e[:, k], rms)[0, 1] >= 0 for k in range(16))  # each signed to rise with rms
    table = feats.table(["rms", "embed16"])  # a CSV or a plot: one column per value
    assert list(table)[:3] == ["rms", "embed16.1", "embed16.2"] and len(table) == 17


def test_embed16_mapping_is_identity_plus_offsets():
    from bendlab import audio
    from bendlab.mapping import Mapping
    feats = audio.audio_features("bendlab/data/piano.ogg", 20)
    m = Mapping("embed16", "matrix", 3, -0.3, 0.3, median=3)
    v = m.vectors(feats)
    eye = np.eye(4).reshape(-1)
    offsets = [audio.scale(audio.smooth(feats["embed16"][:, d], 20, median=3), -0.3, 0.3) for d in range(16)]
    assert v.shape == (feats.n_frames, 16)
    for d in (0, 5, 7, 15):  # each value shaped on its own, as a one-number feature is, then added to I's entry
        np.testing.assert_array_equal(v[:, d], eye[d] + offsets[d])
    np.testing.assert_allclose(m.params(feats), np.mean(offsets, axis=0), rtol=0, atol=1e-12)
    assert Mapping("rms", "add").vectors(feats) is None


@pytest.mark.parametrize("kw,msg", [
    (dict(feature="rms", op="matrix"), "matrix takes 16 parameters per frame and feature 'rms' gives one"),
    (dict(feature="embed16", op="rotate1"), "feature 'embed16' gives 16 values per frame; accepted: op matrix"),
    (dict(feature="rms", op="rotate6"), "rotate6 takes 6 parameters per frame"),
    (dict(feature="embed16:2", op="matrix"), "unknown feature 'embed16:2'"),
])
def test_embed16_mapping_refusals(kw, msg):
    from bendlab.mapping import Mapping
    with pytest.raises(ValueError) as e:
        Mapping(**kw)
    assert msg in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_embed16_video_frames_are_matrix_bends(pipe, clip):
    from bendlab.mapping import Mapping
    from bendlab.video import FrameRenderer
    from bendlab.video import plan
    from conftest import spec_for
    p = plan(spec_for(clip, walk="none", batch=4, mappings=[Mapping("embed16", "matrix", 3, -0.5, 0.5)]))
    assert p.curves.shape == (1, 12) and p.vectors[0].shape == (12, 16)
    frames = FrameRenderer(p, pipe).render([0, 6, 11], output_type="np")
    for i, frame in zip([0, 6, 11], frames):
        alone = render(p.spec.prompts[0], [Bend("matrix", p.vectors[0][i].tolist(), 3)], pipe=pipe, steps=STEPS,
                       seed=p.spec.seed, output_type="np")
        assert_frames_close(frame, alone)
    assert not np.array_equal(*(np.asarray(f) for f in frames[:2]))  # different matrices, different frames
