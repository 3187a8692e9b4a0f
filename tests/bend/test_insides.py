"""What a model computes inside (bendlab.bend.insides): feature maps of the modules `bendlab targets` lists, in the
shapes it lists; the latent at every step; cross-attention maps per token. Every capture leaves the pipeline as
it found it, and shows a bend from its layer on and not before."""

import numpy as np
import pytest
import torch

from bendlab import Bend, models, render
from bendlab.bend import insides
from bendlab.bend import NonFiniteLatentError, initial_noise
from conftest import LATENT_ATOL

STEPS = 6
PROMPT = "a floating orb"
SUM_ATOL = 77 * np.finfo(np.float32).eps
"""Bound on |sum over tokens - 1| of the cross-attention maps: each position's 77 probabilities (a float32
softmax, normalised to sum 1 up to one rounding each) are added in float32, each addition rounding by at most
eps/2 of a partial sum <= 1, and the softmax's own division by at most eps/2 per term: 77 eps in all (9.2e-6).
A map that were not a softmax over the tokens (a wrong axis, heads summed instead of averaged) is off by O(1)."""


def hooks_of(pipe) -> int:
    """Every forward hook and pre-hook on the UNet, the VAE and their modules."""
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for part in (pipe.unet, pipe.vae)
               for m in part.modules())


@pytest.mark.parametrize("target", ["unet:mid_block", "unet:up_blocks.1", "unet:down_blocks.2.attentions.0",
                                    "unet:conv_out", "vae:decoder.up_blocks.1", "vae:decoder.mid_block"])
def test_feature_maps_have_the_shape_bendlab_targets_lists(pipe, target):
    listed = {t.name: t.shape for t in models.bend_targets()}
    name = target.removeprefix("unet:")
    layer = 2 if target.startswith("unet:") else None
    maps = insides.feature_maps(pipe, PROMPT, target, layer, steps=STEPS)
    assert maps.shape == listed[name] and maps.dtype == np.float32 and np.isfinite(maps).all()


def test_every_capture_is_removed_after_the_call(pipe):
    hooks, processors = hooks_of(pipe), dict(pipe.unet.attn_processors)
    insides.feature_maps(pipe, PROMPT, "unet:mid_block", 1, [Bend("add", 1.0, 1, module="mid_block")], steps=STEPS)
    vae = [Bend("multiply", 2.0, target="vae:decoder.conv_in")]
    insides.feature_maps(pipe, PROMPT, "vae:decoder.up_blocks.1", bends=vae, steps=STEPS)
    insides.cross_attention(pipe, PROMPT, "mid_block", 2, [Bend("multiply", 2.0, (0, 3), "token:orb", target="text")],
                            steps=STEPS)
    with pytest.raises(NonFiniteLatentError):  # a render that fails midway removes its captures too
        insides.cross_attention(pipe, PROMPT, "up_blocks.0", 3, [Bend("multiply", 1e30, (0, 3))], steps=STEPS)
    assert hooks_of(pipe) == hooks == 0
    after = pipe.unet.attn_processors
    assert after.keys() == processors.keys() and all(after[k] is processors[k] for k in processors)


def test_a_bend_changes_the_feature_maps_from_its_layer_on_and_not_before(pipe):
    def maps(step, bends):
        return insides.feature_maps(pipe, PROMPT, "unet:up_blocks.1", step, bends, steps=STEPS)
    latent = [Bend("add", 1.0, 3)]  # the latent before step 3
    module = [Bend("add", 1.0, 3, module="mid_block")]  # mid_block's output in step 3, upstream of up_blocks.1
    for bends in (latent, module):
        for step in range(STEPS):
            same = np.array_equal(maps(step, []), maps(step, bends))
            assert same == (step < 3), (bends, step)  # the same computation before: exactly equal


def test_a_vae_bend_shows_at_decode_downstream_and_not_upstream(pipe):
    bend = [Bend("multiply", 2.0, target="vae:decoder.up_blocks.0")]
    for block, changed in (("vae:decoder.mid_block", False), ("vae:decoder.up_blocks.0", True),
                           ("vae:decoder.up_blocks.1", True)):
        plain = insides.feature_maps(pipe, PROMPT, block, steps=STEPS)
        bent = insides.feature_maps(pipe, PROMPT, block, None, bend, steps=STEPS)
        assert (not np.array_equal(plain, bent)) == changed, block
    assert np.allclose(insides.feature_maps(pipe, PROMPT, "vae:decoder.up_blocks.0", None, bend, steps=STEPS),
                       2 * insides.feature_maps(pipe, PROMPT, "vae:decoder.up_blocks.0", steps=STEPS))


def test_latent_steps_run_from_the_noise_to_the_renders_final_latent(pipe):
    lat = insides.latent_steps(pipe, PROMPT, steps=STEPS)
    assert lat.shape == (STEPS + 1, 4, 16, 16)
    np.testing.assert_array_equal(lat[0], initial_noise(pipe, 46)[0].numpy())
    final = render(PROMPT, pipe=pipe, steps=STEPS, output_type="latent")
    np.testing.assert_allclose(lat[-1], final.numpy(), atol=LATENT_ATOL, rtol=0)
    bent = insides.latent_steps(pipe, PROMPT, [Bend("rotate1", 1.0, 4)], steps=STEPS)
    assert np.array_equal(bent[:4], lat[:4]) and not np.isclose(bent[4:], lat[4:], atol=1e-3).all(axis=(1, 2, 3)).any()


def test_cross_attention_is_a_softmax_over_the_tokens(pipe):
    maps = insides.cross_attention(pipe, PROMPT, "mid_block", 2, steps=STEPS)
    assert list(maps) == ["<start>", "a", "floating", "orb", "<end>"]
    assert all(m.shape == (4, 4) and (m >= 0).all() for m in maps.values())
    assert np.abs(sum(maps.values()) - 1).max() <= SUM_ATOL
    whole = insides.cross_attention(pipe, PROMPT, "", 2, steps=STEPS)  # every block: maps upsampled to the finest
    assert np.abs(sum(whole.values()) - 1).max() <= SUM_ATOL
    one = insides.cross_attention(pipe, "a a orb", "mid_block.attentions.0.transformer_blocks.0.attn2", 0,
                                  steps=STEPS)
    assert list(one) == ["<start>", "a@1", "a@2", "orb", "<end>"]


def test_cross_attention_before_and_after_a_bend(pipe):
    """A text bend on the word's embedding changes what attends to it from its step on; a capture alone leaves
    the render bit-identical (it computes the probabilities beside the module's own processor)."""
    bend = [Bend("multiply", 3.0, (2, STEPS - 1), "token:orb", target="text")]
    before = [insides.cross_attention(pipe, PROMPT, "up_blocks.0", s, steps=STEPS)["orb"] for s in (1, 3)]
    after = [insides.cross_attention(pipe, PROMPT, "up_blocks.0", s, bend, steps=STEPS)["orb"] for s in (1, 3)]
    assert np.array_equal(before[0], after[0]) and np.abs(before[1] - after[1]).max() > 1e-3
    paths = insides.cross_attention_modules(pipe.unet)
    plain = render(PROMPT, pipe=pipe, steps=STEPS, output_type="np")
    with insides.capturing_attention(pipe.unet, paths, lambda: True) as caps:
        captured = render(PROMPT, pipe=pipe, steps=STEPS, output_type="np")
    assert np.array_equal(plain, captured) and all(len(c.probs) == STEPS for c in caps.values())


@pytest.mark.parametrize("family", ["sd2_folder", "sdxl_folder"])
def test_other_families(family, request):
    """The tiny SD 2.x-style and SDXL pipelines of test_families: feature maps in the shapes `bendlab targets`
    lists, attention a softmax over the tokens, the latent at every step."""
    from bendlab import load_pipeline
    folder = request.getfixturevalue(family)
    pipe = load_pipeline(folder, device="cpu")
    listed = {t.name: t.shape for t in models.bend_targets(folder)}
    for target in ("unet:mid_block", "unet:up_blocks.1", "vae:decoder.up_blocks.1"):
        layer = 1 if target.startswith("unet:") else None
        maps = insides.feature_maps(pipe, PROMPT, target, layer, steps=3)
        assert maps.shape == listed[target.removeprefix("unet:")], target
    block = insides.cross_attention_modules(pipe.unet)[0].split(".attentions")[0]
    maps = insides.cross_attention(pipe, PROMPT, block, 1, steps=3)
    assert np.abs(sum(maps.values()) - 1).max() <= SUM_ATOL
    assert insides.latent_steps(pipe, PROMPT, steps=3).shape == (4, 4, 16, 16)


def test_capture_processor_wraps_and_restores_on_error(pipe):
    paths = insides.cross_attention_modules(pipe.unet, "mid_block")
    before = dict(pipe.unet.attn_processors)
    with pytest.raises(RuntimeError, match="boom"):
        with insides.capturing_attention(pipe.unet, paths, lambda: True):
            assert isinstance(pipe.unet.attn_processors[f"{paths[0]}.processor"], insides.AttentionCapture)
            raise RuntimeError("boom")
    assert all(pipe.unet.attn_processors[k] is v for k, v in before.items())
    assert torch.is_grad_enabled()


def test_cross_attention_shows_an_attention_bend_as_the_module_uses_it(pipe):
    """Under an attention bend (engine.AttnBendProcessor) the capture records the bent probabilities: unchanged
    before the bend's first step, after it the word's map mirrored (attn_flip 1) and every position still summing
    to 1; both processors are gone after the call."""
    processors = dict(pipe.unet.attn_processors)
    path = insides.cross_attention_modules(pipe.unet, "mid_block")[0]
    bend = [Bend("attn_flip", 1, (3, STEPS - 1), "token:orb", target=f"attn:{path}")]
    plain = [insides.cross_attention(pipe, PROMPT, path, s, steps=STEPS) for s in (2, 3)]
    bent = [insides.cross_attention(pipe, PROMPT, path, s, bend, steps=STEPS) for s in (2, 3)]
    assert all(np.array_equal(plain[0][k], bent[0][k]) for k in plain[0])
    assert np.abs(sum(bent[1].values()) - 1).max() <= SUM_ATOL
    orb, mirror = bent[1]["orb"].ravel(), np.fliplr(plain[1]["orb"]).ravel()
    assert np.corrcoef(orb, mirror)[0, 1] > 0.9 > np.corrcoef(orb, plain[1]["orb"].ravel())[0, 1]
    after = pipe.unet.attn_processors
    assert all(after[k] is v for k, v in processors.items())


def test_the_insides_figures_are_valid_views():
    """Every insides figure's views name a module and a step their view takes, with bends that fit 50 steps."""
    from bendlab.ui import figures
    shown = [f for f in figures.FIGURES.values() if isinstance(f, figures.Insides)]
    assert {f.view for f in shown} == {"feature_maps", "latent_steps", "cross_attention"}
    for f in shown:
        for v in (v for views in f.rows.values() for v in views):
            for b in v.bends:
                Bend.from_dict(b).check(50, (1, 4, 16, 16))
            if f.view == "feature_maps":
                insides.check_feature_target(v.target, v.layer, 50, models.skeleton())
            if f.view == "cross_attention":
                insides.check_attention_module(models.skeleton().unet, v.target)
