"""Targets per latent frame on the video transformers (Wan 2.x, LTX-Video), on tiny random pipelines built in code
(`video.tiny`): a transformer block's tokens bent latent frame by latent frame (`bend.hooks._apply_frames`), prompts
along the frames (`video.frame_prompts`: each block's cross-attention split by latent frame), and the targets that
cannot be per frame refused in one line with the reason, before the model loads; `bendlab targets` lists what can
be bent, per latent frame, and names what is refused.

What is exact and what is not. A block's tokens after the last block only go through the output norm and projection,
token by token: a bend on the last block at the last step changes exactly its own latent frames' latents. Earlier,
the later blocks' self-attention (and the later steps) carry a bend to every latent frame: its own frames change
most, bounded here by a ratio. The blocks' LayerNorms make a bend that adds or multiplies every feature of a token
alike almost invisible (they take the mean and the scale out), so the tests bend one feature (where="channel:0").
Cross-attention split by latent frame is each frame's own stock cross-attention (to float rounding: the same sums
in other batch shapes); over a whole render the self-attention mixes frames, so a clip on prompt A for its first
half and B for its second is compared with the clips all on A and all on B."""

import numpy as np
import pytest
import torch

from bendlab import models
from bendlab.bend.bends import Bend
from bendlab.checks import BendlabValueError
from bendlab.mapping import Mapping
from bendlab.models.family import LTX, WAN, family_of
from bendlab.video import VideoSpec, make_video
from bendlab.video.clip import clip_noise, render_clip
from bendlab.video.frame_prompts import (FrameContext, FrameCrossAttention, encode_each, frame_prompts,
                                         latent_weights)
from bendlab.video.tiny import tiny_ltx, tiny_wan

from conftest import write_clip

STEPS = 3
N_LATENT = 6  # latent frames: the first half (0..2) left alone, the second (3..5) bent or on another prompt
HALF = N_LATENT // 2
HEIGHT, WIDTH = 32, 64
A, B = "a floating orb", "waves over hills"
# family, maker, its first and last transformer block
MAKERS = {"wan": (WAN, tiny_wan, "blocks.0", "blocks.1"),
          "ltx": (LTX, tiny_ltx, "transformer_blocks.0", "transformer_blocks.0")}


@pytest.fixture(scope="module", params=list(MAKERS))
def dit(request):
    return MAKERS[request.param][1]()


def n_frames(pipe) -> int:
    return family_of(pipe).temporal_ratio_of(pipe) * (N_LATENT - 1) + 1


def rows(pipe, bends=(), prompt=A, **kw) -> torch.Tensor:
    """The clip's final latent as (F', everything else): one row per latent frame."""
    fam = family_of(pipe)
    latent = render_clip(pipe, bends, prompt=prompt, n_frames=n_frames(pipe), height=HEIGHT, width=WIDTH,
                         steps=STEPS, output_type="latent", **kw)
    grid = fam.latent_grid(pipe, n_frames(pipe), HEIGHT, WIDTH)
    return fam.layout.canonical(latent[None], grid).reshape(N_LATENT, -1)


def change(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """The largest change of each latent frame."""
    return (a - b).abs().max(1).values.numpy()


def half_curve(strong: float, identity: float = 0.0) -> torch.Tensor:
    """One value per latent frame: the identity on the first half, `strong` on the second."""
    return torch.tensor([identity] * HALF + [strong] * (N_LATENT - HALF), dtype=torch.float64)


def installed(pipe) -> tuple:
    """Hooks on the transformer and the VAE, the attention processors, and patched methods."""
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for part in (pipe.transformer, pipe.vae)
                for m in part.modules())
    processors = tuple(type(m.processor).__name__ for m in pipe.transformer.modules() if hasattr(m, "processor"))
    patched = tuple(sorted(n for obj in (pipe, pipe.scheduler) for n in vars(obj) if callable(vars(obj)[n])))
    return hooks, processors, patched


def blocks(pipe) -> tuple[str, str]:
    return MAKERS["wan" if family_of(pipe) is WAN else "ltx"][2:]


# ------------------------------------------------------------------------------------------------ blocks
def test_an_identity_block_bend_is_the_stock_call_bit_for_bit(dit):
    first, last = blocks(dit)
    bends = [Bend("add", half_curve(0.0), (0, STEPS - 1), "channel:0", target=f"unet:{first}"),
             Bend("multiply", half_curve(1.0, 1.0), (0, STEPS - 1), target=f"unet:{last}")]
    assert torch.equal(rows(dit, bends), rows(dit))


def test_the_last_block_at_the_last_step_changes_exactly_its_latent_frames(dit):
    """After the last block each token goes through the output norm and projection alone: the latent frames whose
    parameter is the identity are exactly as they were, the others change."""
    last = blocks(dit)[1]
    bent = rows(dit, [Bend("add", half_curve(1.0), STEPS - 1, "channel:0", target=f"unet:{last}")])
    diff = change(bent, rows(dit))
    assert (diff[:HALF] == 0).all() and (diff[HALF:] > 0.01).all(), diff


def test_the_first_block_at_every_step_changes_its_latent_frames_most(dit):
    """The later blocks' self-attention and the later steps carry the bend to every latent frame; its own change at
    least 5 times as much (measured: Wan 9.6x, LTX-Video 34x)."""
    first = blocks(dit)[0]
    bent = rows(dit, [Bend("add", half_curve(1.0), (0, STEPS - 1), "channel:0", target=f"unet:{first}")])
    diff = change(bent, rows(dit))
    assert (diff[:HALF] > 0).all() and diff[HALF:].min() > 5 * diff[:HALF].max(), diff


def test_a_block_bend_and_prompts_along_the_frames_leave_nothing_installed(dit):
    before = installed(dit)
    weights = np.eye(2)[[0] * HALF + [1] * (N_LATENT - HALF)]
    rows(dit, [Bend("add", half_curve(1.0), (0, STEPS - 1), "channel:0", target=f"unet:{blocks(dit)[0]}")],
         prompt=[A, B], weights=weights)
    assert installed(dit) == before
    with pytest.raises(BendlabValueError):  # also when the call fails part-way: the latent overflows
        rows(dit, [Bend("add", half_curve(3e38), (0, STEPS - 1), target=f"unet:{blocks(dit)[0]}")],
             prompt=[A, B], weights=weights)
    assert installed(dit) == before


# ------------------------------------------------------------------------------------------------ prompts
def test_cross_attention_split_by_latent_frame_is_each_frames_own(dit):
    """The wrapper on one block's attn2: frame f's queries with frame f's context give what the stock processor
    gives on frame f alone (to float rounding: 1e-6 on outputs of size about 1); the negative prompt's row is the
    stock call's."""
    fam = family_of(dit)
    attn = dit.transformer.get_submodule(f"{fam.frame_blocks}.0.attn2")
    g = torch.Generator().manual_seed(0)
    F, n, L, C = 3, 4, 16, attn.to_q.in_features
    hidden, own = torch.randn(2, F * n, C, generator=g), torch.randn(2, L, C, generator=g)
    state = FrameContext()
    state.positive, state.context = [False, True], torch.randn(F, L, C, generator=g)
    with torch.no_grad():
        out = FrameCrossAttention(attn.processor, state)(attn, hidden, own)
        for f in range(F):
            q = hidden[1:, f * n:(f + 1) * n]
            stock = attn.processor(attn, q, state.context[f:f + 1], None)
            torch.testing.assert_close(out[1:, f * n:(f + 1) * n], stock, rtol=0, atol=1e-6)
        torch.testing.assert_close(out[:1], attn.processor(attn, hidden[:1], own[:1], None), rtol=0, atol=1e-6)


def test_frame_prompts_all_on_one_prompt_are_that_prompts_stock_call(dit):
    """Installed with every latent frame on prompt A (the split taken, not skipped): the stock call with A, to float
    rounding (1e-4 on latents of size about 1; measured 2e-6)."""
    F, tokens = n_frames(dit), dit.tokenizer.model_max_length
    embeds, masks = encode_each(dit, [B, A], tokens)
    kw = dict(num_frames=F, height=HEIGHT, width=WIDTH, num_inference_steps=STEPS, output_type="latent",
              max_sequence_length=tokens)
    with frame_prompts(dit, embeds, masks, np.eye(2)[[1] * N_LATENT], 1, tokens) as text:
        split = dit(**text, latents=clip_noise(dit, 0, F, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(0),
                    **kw).frames[0]
    stock = dit(prompt=A, latents=clip_noise(dit, 0, F, HEIGHT, WIDTH), generator=torch.Generator().manual_seed(0),
                **kw).frames[0]
    assert not torch.equal(split, dit(prompt=B, latents=clip_noise(dit, 0, F, HEIGHT, WIDTH), **kw).frames[0])
    torch.testing.assert_close(split, stock, rtol=0, atol=1e-4)


def test_one_prompt_all_along_installs_nothing(dit, monkeypatch):
    import bendlab.video.clip as clip
    monkeypatch.setattr(clip, "frame_prompts", None)  # would fail if called
    assert torch.equal(rows(dit, prompt=[A, B], weights=np.eye(2)[[0] * N_LATENT]), rows(dit, prompt=A))


def test_two_prompts_along_the_frames_each_half_near_its_own_prompt(dit):
    """A for the first half, B for the second: each half's latent frames are far nearer the clip all on its own
    prompt than the clip all on the other (measured: at most 0.03 from their own, at least 0.36 from the other's);
    swapped frames or a split on the wrong rows would put them at the other's distance."""
    mixed = rows(dit, prompt=[A, B], weights=np.eye(2)[[0] * HALF + [1] * (N_LATENT - HALF)])
    to_a, to_b = change(mixed, rows(dit, prompt=A)), change(mixed, rows(dit, prompt=B))
    assert (to_a[:HALF] * 5 < to_b[:HALF]).all() and (to_b[HALF:] * 5 < to_a[HALF:]).all(), (to_a, to_b)


def test_latent_weights_are_the_mean_over_their_frames():
    w = np.stack([np.linspace(1, 0, 9), np.linspace(0, 1, 9)], 1)  # 9 video frames, r = 4: latent frames 0, 1-4, 5-8
    np.testing.assert_allclose(latent_weights(w, 4), [[1, 0], [0.6875, 0.3125], [0.1875, 0.8125]])


# ------------------------------------------------------------------------------------------------ listing
# `bendlab targets` at the pipeline's default size (Wan 480x832, LTX-Video 512x704; the tiny VAEs compress 8x): the
# latent per latent frame (C, h, w), a block's tokens per latent frame (D, h / p, w / p): Wan D 2 heads x 12, p 2;
# LTX-Video D 4 heads x 8, p 1
LISTED = {WAN: ("16x60x104", "WanTransformerBlock", "24x30x52"),
          LTX: ("8x64x88", "LTXVideoTransformerBlock", "32x64x88")}


@pytest.fixture(scope="module")
def dit_folder(dit, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dit") / "model"
    dit.save_pretrained(folder, safe_serialization=True)
    return str(folder)


def test_targets_lists_the_blocks_per_latent_frame_and_what_is_refused(dit, dit_folder, capsys, monkeypatch):
    from bendlab.ui.cli import main

    def boom(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(models.load, "_load", boom)
    monkeypatch.setenv("COLUMNS", "100")
    fam = family_of(dit)
    latent, block, shape = LISTED[fam]
    assert main(["targets", "--model", dit_folder]) == 0
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    assert ["latent", "latent", latent, "bendable", "(default)"] in lines, out
    assert [f"unet:{blocks(dit)[0]}", block, shape, "bendable"] in lines, out
    assert f"  unet:{blocks(dit)[0]}.attn1 " in out and "viewed as (B F', D, h, w)" in " ".join(out.split())
    refused = " ".join(out.split("\n\n")[-1].split())
    assert refused.startswith(f"Refused on {fam.name}") and "text (the prompt embedding is one" in refused
    assert "attn:PATH (its attention runs" in refused and "vae:PATH (the 3D VAE decoder mixes" in refused
    assert max(map(len, out.splitlines())) <= 100


def test_every_listed_module_is_a_block_bend_per_latent_frame(dit, dit_folder):
    """What the listing names the engine bends latent frame by latent frame: each module listed inside the last
    block, bent at the last step, changes exactly its own latent frames (after it every token goes on alone, as in
    `test_the_last_block_at_the_last_step_changes_exactly_its_latent_frames`)."""
    last = blocks(dit)[1]
    listed = [t.name for t in models.bend_targets(dit_folder) if t.name.startswith(f"unet:{last}.")]
    assert len(listed) == 3, listed  # attn1, attn2 and the feed-forward
    unbent = rows(dit)
    for name in listed:
        diff = change(rows(dit, [Bend("add", half_curve(1.0), STEPS - 1, "channel:0", target=name)]), unbent)
        assert (diff[:HALF] == 0).all() and (diff[HALF:] > 0).all(), (name, diff)


# ------------------------------------------------------------------------------------------------ refusals
@pytest.mark.parametrize("target, msg", [
    ("text", "the prompt embedding is one (tokens, dim) tensor per call that every latent frame attends to"),
    ("attn:{first}.attn1", "no explicit probabilities, and a self-attention's rows run over every latent frame's"),
    ("vae:decoder.up_blocks.0", "the 3D VAE decoder mixes neighbouring latent frames"),
    ("unet:proj_out", "is not one of its transformer blocks"),
    ("unet:{first}.attn2.to_k", "is the key/value side of a cross-attention"),
])
def test_what_cannot_be_per_frame_is_refused_in_one_line_saying_why(dit, target, msg):
    target = target.format(first=blocks(dit)[0])
    with pytest.raises(BendlabValueError) as e:
        rows(dit, [Bend("add", half_curve(1.0), STEPS - 1 if target.startswith("vae") else 0, target=target)])
    assert msg in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("weights, msg", [(None, "prompt weights of shape ()"),
                                          (np.full((N_LATENT, 2), 0.6), "each row summing to 1")])
def test_bad_prompt_weights_are_refused_in_one_line(dit, weights, msg):
    with pytest.raises(BendlabValueError) as e:
        rows(dit, prompt=[A, B], weights=weights)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_a_bad_target_on_a_wan_folder_is_refused_before_the_model_loads(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    tiny_wan().save_pretrained(folder, safe_serialization=True)

    def boom(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(models.load, "_load", boom)
    song = write_clip(tmp_path / "song.wav", onset=0.5, seconds=0.8)
    for target, msg in (("text", "the prompt embedding is one"), ("unet:blocks.7", "has no module 'blocks.7'")):
        spec = VideoSpec(audio=str(song), method="video", model=str(folder), steps=2, window=9, overlap=5, height=32,
                         width=32, prompts=[A, B], mappings=[Mapping("rms", "add", 0, 0, 1, target=target)])
        with pytest.raises(BendlabValueError) as e:
            make_video(spec, tmp_path / "v.mp4", progress=False)
        assert msg in str(e.value) and "\n" not in str(e.value)


def test_a_song_with_two_prompts_renders_each_window_on_its_latent_frames_mix(tmp_path):
    """TransformerWindows hands each window its latent frames' prompt weights (`spec.prompt_weights`, then the mean
    over each latent frame's video frames): window 0 is render_clip with those weights, and not the first prompt's."""
    from bendlab.video.clip import TransformerWindows
    from bendlab.video.spec import Plan, prompt_weights, resolve
    pipe, folder = tiny_wan(), tmp_path / "model"
    pipe.save_pretrained(folder, safe_serialization=True)
    song = write_clip(tmp_path / "song.wav", onset=0.5, seconds=0.8)
    spec = VideoSpec(audio=str(song), method="video", model=str(folder), steps=2, window=17, overlap=1, height=32,
                     width=32, prompts=[A, B], mappings=[Mapping("rms", "multiply", 2, 1, 2)])
    plan = Plan(resolve(spec, spec.model_of()), None, np.ones((1, 16)))
    got = TransformerWindows(plan, pipe).latents(0)
    weights = latent_weights(np.pad(prompt_weights(plan.spec, 16), ((0, 1), (0, 0)), mode="edge"), 4)
    kw = dict(n_frames=17, height=32, width=32, steps=2, guidance=plan.spec.guidance, seed=plan.spec.seed,
              output_type="pt")
    want = render_clip(pipe, prompt=[A, B], weights=weights, **kw)
    assert torch.equal(got[0].permute(1, 0, 2, 3), want.float())
    assert not torch.equal(want, render_clip(pipe, prompt=A, **kw))
