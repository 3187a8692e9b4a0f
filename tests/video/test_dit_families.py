"""Wan 2.x and LTX-Video on the engine's seam (issue 27, item 5): tiny random pipelines built in code
(`video.tiny`: configs and tokenizers made here, nothing downloaded), the latent bent per latent frame through the
stock pipeline call (`video.clip.render_clip`), with the contract of the engine (identity bit-identical, a bend
changes what it should, nothing left installed), LTX's packed tokens viewed and put back exactly, and the mapping
from video frames to latent frames under temporal compression (Wan 4x, LTX-Video 8x).

What the decoders do to a latent frame's neighbours, measured here on the tiny random VAEs (see docs/models.md):
in the latent a last-layer bend changes its latent frame and nothing else, exactly; Wan's causal decoder then
leaves every earlier video frame exactly as it was and carries the change into every later one (its cache of past
frames); LTX-Video's non-causal decoder carries it both ways. With random weights those carried changes are as
large as the bent frames' own, so no bound on their size is asserted: only a trained VAE could give one."""

import types

import numpy as np
import pytest
import torch

from bendlab.bend.bends import Bend
from bendlab.bend.hooks import NonFiniteLatentError, bending
from bendlab.checks import BendlabValueError
from bendlab.models.family import (ANIMATEDIFF, LTX, PACKED_VIDEO, VIDEO, VIDEO_FAMILIES, WAN, Layout, family,
                                   family_of)
from bendlab.video.clip import clip_noise, render_clip
from bendlab.video.latent_frames import (check_frames, frames_of, latent_frame_of, per_latent_frame,
                                         timing_error)
from bendlab.video.tiny import tiny_ltx, tiny_wan

STEPS = 3        # layers 0..3; layer 3 is the final latent, just before the VAE decodes
N_LATENT = 5     # latent frames of every clip: F = r (N_LATENT - 1) + 1 video frames (Wan 17, LTX 33)
HEIGHT, WIDTH = 32, 64  # px: a 4 x 8 latent (each side of the grid its own size: a swapped axis shows)
J = 2            # the latent frame bent
PROMPT = "a floating orb"
MAKERS = {"wan": (tiny_wan, WAN), "ltx": (tiny_ltx, LTX)}


@pytest.fixture(scope="module", params=list(MAKERS))
def dit(request):
    return MAKERS[request.param][0]()


def n_frames(pipe) -> int:
    return family_of(pipe).temporal_ratio_of(pipe) * (N_LATENT - 1) + 1


def clip(pipe, bends=(), **kw):
    return render_clip(pipe, bends, prompt=PROMPT, n_frames=n_frames(pipe), height=HEIGHT, width=WIDTH, steps=STEPS,
                       **kw)


def per_frame(value: float, j: int = J) -> torch.Tensor:
    """A multiply parameter per latent frame: 1 (the identity) everywhere but latent frame j."""
    p = torch.ones(N_LATENT, dtype=torch.float64)
    p[j] = value
    return p


def latent_rows(pipe, latent) -> torch.Tensor:
    """A clip's final latent (render_clip's output_type="latent": the item in the pipeline's layout) as the
    canonical view, (F', C, h, w): one row per latent frame."""
    fam = family_of(pipe)
    return fam.layout.canonical(latent[None], fam.latent_grid(pipe, n_frames(pipe), HEIGHT, WIDTH))


def changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The largest change of each frame (rows along the first axis)."""
    return np.abs(np.asarray(a, float) - np.asarray(b, float)).reshape(len(a), -1).max(1)


def installed(pipe) -> tuple:
    """What a render may install: hooks on the transformer and the VAE, and patched methods on the pipeline and
    its scheduler (instance attributes)."""
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for part in (pipe.transformer, pipe.vae)
                for m in part.modules())
    patched = tuple(sorted(n for obj in (pipe, pipe.scheduler) for n in vars(obj) if callable(vars(obj)[n])))
    return hooks, patched


# ------------------------------------------------------------------------------------------------ the seam
def test_the_families_are_found_with_their_layouts(dit):
    fam = family_of(dit)
    assert fam is MAKERS["wan" if type(dit).__name__ == "WanPipeline" else "ltx"][1]
    assert fam in VIDEO_FAMILIES and fam.medium == "video" and fam.denoiser_of(dit) is dit.transformer
    assert fam.layout is (VIDEO if fam is WAN else PACKED_VIDEO)
    r = dit.vae.config.scale_factor_temporal if fam is WAN else dit.vae.temporal_compression_ratio
    assert fam.temporal_ratio_of(dit) == r == (4 if fam is WAN else 8)


@pytest.mark.parametrize("p, q", [(1, 1), (2, 2)])
def test_ltx_tokens_unpack_to_one_row_per_latent_frame_and_pack_back_exactly(p, q):
    """The canonical view of LTX's packed tokens is VIDEO's view of the pipeline's own unpacking, and packing it
    back gives the tokens bit for bit (LTX-Video 0.9 uses 1 x 1 x 1 patches; 2 x 2 x 2 checks the general case)."""
    from diffusers import LTXPipeline
    layout = Layout("packed_video", p, q)
    x = torch.randn(2, 8, 4, 6, 4)  # (B, C, F', H', W')
    tokens = LTXPipeline._pack_latents(x, p, q)
    rows = layout.canonical(tokens, grid=(4, 6, 4))
    assert torch.equal(rows, VIDEO.canonical(x)) and rows.shape == (8, 8, 6, 4)
    assert torch.equal(rows, VIDEO.canonical(LTXPipeline._unpack_latents(tokens, 4 // q, 6 // p, 4 // p, p, q)))
    assert torch.equal(layout.restore(rows, tokens), tokens)
    assert layout.shape(2, 8, (4, 6, 4)) == tuple(tokens.shape)
    with pytest.raises(BendlabValueError, match="needs its grid") as e:
        layout.canonical(tokens)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("r", [4, 8])
def test_latent_frames_hold_frame_0_alone_then_r_frames_each(r):
    n = 5
    held = [k for j in range(n) for k in frames_of(j, r)]
    assert held == list(range(r * (n - 1) + 1)) and check_frames(len(held), r) == n  # every frame once, in order
    assert all(latent_frame_of(k, r) == j for j in range(n) for k in frames_of(j, r))
    assert list(frames_of(1, r)) == list(range(1, r + 1))


@pytest.mark.parametrize("r", [4, 8])
def test_a_step_in_the_curve_at_frame_k_first_changes_the_latent_frame_that_holds_k(r):
    F = r * 4 + 1
    flat = np.zeros(F)
    for k in range(1, F):
        step = np.where(np.arange(F) >= k, 1.0, 0.0)
        moved = np.nonzero(per_latent_frame(step, r) != per_latent_frame(flat, r))[0]
        assert moved[0] == latent_frame_of(k, r), k
        first = frames_of(moved[0], r).start  # the first video frame shown with the new value
        assert 0 <= k - first <= timing_error(r)  # early by at most r - 1 frames
    np.testing.assert_allclose(per_latent_frame(np.arange(9.0), 4), [0, 2.5, 6.5])  # the mean of each one's frames
    assert timing_error(4, 24) == pytest.approx(0.125) and timing_error(8, 24) == pytest.approx(7 / 24)


# ------------------------------------------------------------------------------------------------ the contract
def test_identity_is_the_stock_pipeline_call_bit_for_bit(dit):
    fam, F = family_of(dit), n_frames(dit)
    stock = dit(prompt=PROMPT, num_frames=F, height=HEIGHT, width=WIDTH, num_inference_steps=STEPS,
                latents=clip_noise(dit, 0, F, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(0),
                output_type="np", max_sequence_length=dit.tokenizer.model_max_length).frames[0]
    same = clip(dit, [Bend("multiply", per_frame(1.0), (0, STEPS))])
    assert stock.shape == (F, HEIGHT, WIDTH, 3)  # the VAE decodes N_LATENT latent frames into r (N_LATENT - 1) + 1
    assert np.array_equal(same, stock), fam.name


def test_a_last_layer_bend_changes_its_latent_frame_and_no_other(dit):
    """In the latent the bend is exact: latent frame J's rows and nothing else."""
    base = latent_rows(dit, clip(dit, output_type="latent"))
    bent = latent_rows(dit, clip(dit, [Bend("multiply", per_frame(0.5), STEPS)], output_type="latent"))
    diff = changed(bent, base)
    assert diff[J] > 0.1 and (np.delete(diff, J) == 0).all(), diff
    torch.testing.assert_close(bent[J], 0.5 * base[J], rtol=0, atol=0)


def test_a_last_layer_bend_on_the_decoded_frames(dit):
    """The frames latent frame J decodes into change; what the decoder does to the others is its own: Wan's causal
    decoder leaves every earlier frame exactly as it was (and carries the change into the later ones), LTX-Video's
    non-causal one carries it to both sides. (Wan's tiny random decoder, 3 channels wide, changes the bent frames
    least at their first, 0.003 of 1, and more with every later frame: a random cache, not a trained one.)"""
    fam, r = family_of(dit), family_of(dit).temporal_ratio_of(dit)
    base, bent = clip(dit), clip(dit, [Bend("multiply", per_frame(0.5), STEPS)])
    diff, own = changed(bent, base), frames_of(J, r)
    assert (diff[own.start:own.stop] > 0).all() and diff[own.start:own.stop].max() > 1 / 255, diff
    before, after = diff[:own.start], diff[own.stop:]
    if fam is WAN:
        assert (before == 0).all() and (after > 0).all(), diff
    else:
        assert (before > 0).any() and (after > 0).any(), diff


def test_a_step_at_frame_k_first_changes_the_frames_of_its_latent_frame(dit):
    """A curve over the video frames with a step inside latent frame J (not at its first frame), one parameter per
    latent frame from it: the final latent first changes at latent frame J, and Wan's causal decoder first changes
    video frame r (J - 1) + 1, at most r - 1 frames before k."""
    fam, r, F = family_of(dit), family_of(dit).temporal_ratio_of(dit), n_frames(dit)
    k = frames_of(J, r).start + 1
    curve = np.where(np.arange(F) >= k, 0.5, 1.0)
    bend = Bend("multiply", torch.tensor(per_latent_frame(curve, r)), STEPS)
    base = latent_rows(dit, clip(dit, output_type="latent"))
    moved = np.nonzero(changed(latent_rows(dit, clip(dit, [bend], output_type="latent")), base))[0]
    assert moved[0] == latent_frame_of(k, r) == J
    if fam is WAN:
        first = np.nonzero(changed(clip(dit, [bend]), clip(dit)))[0][0]
        assert first == frames_of(J, r).start and 0 < k - first <= timing_error(r)


def test_an_earlier_layer_bend_changes_its_frames_most_and_reaches_the_others(dit):
    """Before the last steps the transformer attends across latent frames: the bend's own latent frame changes
    most, the others a little, and the decoded frames change."""
    base = latent_rows(dit, clip(dit, output_type="latent"))
    bent = latent_rows(dit, clip(dit, [Bend("multiply", per_frame(0.5), 1)], output_type="latent"))
    diff = changed(bent, base)
    others = np.delete(diff, J)
    assert (others > 0).all() and diff[J] > 10 * others.max(), diff
    assert changed(clip(dit, [Bend("multiply", per_frame(0.5), 1)]), clip(dit)).max() > 1 / 255


def test_nothing_is_left_installed(dit):
    before = installed(dit)
    clip(dit, [Bend("multiply", per_frame(0.5), (1, STEPS))])
    assert installed(dit) == before
    with pytest.raises(NonFiniteLatentError):  # also when the call fails part-way
        clip(dit, [Bend("multiply", per_frame(3e38), 1)])  # the latent overflows float32
    assert installed(dit) == before


# ------------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("change, msg", [
    (dict(bends=[Bend("multiply", 2.0, (0, STEPS - 1), target="unet:proj_out")]),
     "target 'unet:proj_out' on {name} is not one of its transformer blocks"),
    (dict(bends=[Bend("multiply", 2.0, STEPS, target="vae:decoder")]),
     "target 'vae:decoder' on {name}: the 3D VAE decoder mixes neighbouring latent frames"),
    (dict(n_frames=14), "14 video frames do not fill whole latent frames"),
    (dict(height=40), "height 40 is not a multiple of"),
    (dict(per_video_frame=True), "one value per video frame"),
])
def test_what_cannot_work_yet_is_refused_in_one_line(dit, change, msg):
    kw = dict(prompt=PROMPT, n_frames=n_frames(dit), height=HEIGHT, width=WIDTH, steps=STEPS)
    change = dict(change)
    bends = change.pop("bends", [])
    if change.pop("per_video_frame", False):
        bends = [Bend("multiply", torch.ones(n_frames(dit), dtype=torch.float64), STEPS)]
    with pytest.raises(BendlabValueError) as e:
        render_clip(dit, bends, **{**kw, **change})
    assert msg.format(name=family_of(dit).name) in str(e.value) and "\n" not in str(e.value)


def test_the_engine_itself_refuses_an_unchecked_target_on_these_families(dit):
    with pytest.raises(BendlabValueError, match="the prompt embedding is one .* per call") as e:
        with bending(dit, [Bend("multiply", 2.0, 0, target="text")]):
            pass
    assert "\n" not in str(e.value)


def test_other_pipelines_and_folders_are_refused_in_one_line():
    with pytest.raises(BendlabValueError, match="render_clip renders a video transformer pipeline") as e:
        render_clip(types.SimpleNamespace(family=ANIMATEDIFF), prompt=PROMPT, n_frames=13, height=HEIGHT, width=WIDTH)
    assert "video.joint.render_window" in str(e.value) and "\n" not in str(e.value)
    for name in ("WanPipeline", "LTXPipeline"):
        with pytest.raises(BendlabValueError, match=f"is a video model \\({name}") as e:
            family(name, "some/folder")
        assert "\n" not in str(e.value)
