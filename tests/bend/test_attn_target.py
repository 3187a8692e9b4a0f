"""The attention target of a bend (issue 20 part 1): "attn:<path>" bends the attention probabilities of one diffusers
`Attention` module of the UNet through an attention processor (`engine.AttnBendProcessor`) installed for the call
and replaced by the module's own afterwards; point-wise operators and AttentionBender's spatial transforms of a
token's map, rows renormalised. Shipped model (and the tiny SDXL pipeline of test_families), CPU, 2 steps."""

import gc
import math
import resource
import time

import numpy as np
import pytest
import torch
from PIL import Image

from bendlab import Bend, render, render_grid
from bendlab.bend import operators
from bendlab.ui import recipe
from bendlab.ui.cli import main
from bendlab.bend import AttnBendProcessor, attention_modules, encode_prompts, initial_noise, render_batch
from conftest import assert_frames_close

STEPS = 2
KW = dict(steps=STEPS, seed=3, output_type="np")
BLOCK = "down_blocks.2.attentions.0.transformer_blocks.0"
CROSS, SELF = f"attn:{BLOCK}.attn2", f"attn:{BLOCK}.attn1"
ALL_STEPS = (0, STEPS - 1)


def one_line(e) -> bool:
    return "\n" not in str(e.value)


def processors(unet) -> dict:
    return {n: m.processor for n, m in attention_modules(unet)}


def same_processors(before: dict, after: dict) -> bool:
    return before.keys() == after.keys() and all(after[n] is p for n, p in before.items())


@pytest.fixture
def spy(monkeypatch):
    """Every call of `AttnBendProcessor.bend_probs`: (step, probabilities in, probabilities out or None, h x w)."""
    seen = []
    real = AttnBendProcessor.bend_probs

    def bend_probs(self, probs, heads, active, hw):
        out = real(self, probs, heads, active, hw)
        seen.append((self.cb.step, probs.clone(), None if out is None else out.clone(), hw))
        return out
    monkeypatch.setattr(AttnBendProcessor, "bend_probs", bend_probs)
    return seen


def orb_column(pipe) -> int:
    ids = pipe.tokenizer("an orb").input_ids  # BOS an orb EOS
    return ids.index(pipe.tokenizer("orb", add_special_tokens=False).input_ids[0])


# ------------------------------------------------------------------------------------------ identities and changes
IDENTITIES = [Bend("add", 0.0, 0, target=CROSS), Bend("multiply", 1.0, ALL_STEPS, "token:orb", target=CROSS),
              Bend("add", 0.0, 1, "token:0", target=CROSS), Bend("multiply", 1.0, ALL_STEPS, target=SELF),
              Bend("gate", 0.0, 0, target=CROSS), Bend("attn_rotate", 0.0, ALL_STEPS, target=CROSS),
              Bend("attn_translate", [0.0, 0.0], 0, "token:orb", target=CROSS), Bend("attn_blur", 0.0, 1, target=SELF)]


def test_identity_attn_bend_is_bit_identical(pipe):
    plain = render("an orb", pipe=pipe, **KW)
    for b in IDENTITIES:
        assert np.array_equal(plain, render("an orb", [b], pipe=pipe, **KW)), b


@pytest.mark.parametrize("bend", [
    Bend("multiply", 0.0, ALL_STEPS, "token:orb", target=CROSS), Bend("add", 0.5, ALL_STEPS, target=SELF),
    Bend("threshold", 0.05, ALL_STEPS, target=CROSS), Bend("attn_rotate", math.pi / 2, ALL_STEPS, target=CROSS),
    Bend("attn_translate", [0.25, -0.25], ALL_STEPS, "token:orb", target=CROSS),
    Bend("attn_flip", 1, ALL_STEPS, target=CROSS), Bend("attn_blur", 1.0, ALL_STEPS, target=SELF),
    Bend("invert", 2.0, ALL_STEPS, target="attn:mid_block.attentions.0.transformer_blocks.0.attn2"),
], ids=lambda b: f"{b.op}-{b.target.rsplit('.', 1)[-1]}")
def test_a_real_attn_bend_changes_the_image(pipe, bend):
    plain = render("an orb", pipe=pipe, **KW)
    assert np.abs(render("an orb", [bend], pipe=pipe, **KW) - plain).max() > 2 / 255


def test_bend_acts_at_its_step_only(pipe, spy):
    """A bend at step 1 of 2: the processor computes explicitly only at step 1 (at step 0 it hands over to the
    module's own processor before any probability is computed), and the first UNet output is the unbent one."""
    def unet_outputs(bends):
        outs = []
        h = pipe.unet.register_forward_hook(lambda m, i, o: outs.append(o[0].clone()))
        try:
            render("an orb", bends, pipe=pipe, **KW)
        finally:
            h.remove()
        return outs
    b0, b1 = unet_outputs([Bend("multiply", 0.0, 1, "token:orb", target=CROSS)])
    assert [s for s, *_ in spy] == [1]
    p0, p1 = unet_outputs([])
    assert torch.equal(b0, p0) and not torch.equal(b1, p1)


# ------------------------------------------------------------------------------------------ what is bent
def test_token_word_bends_only_its_column_and_only_the_prompt_half(pipe, spy):
    render("an orb", [Bend("multiply", 0.0, 0, "token:orb", target=CROSS)], pipe=pipe, **KW)
    ((step, probs, out, hw),) = spy
    assert step == 0 and hw == (4, 4) and probs.shape == (2 * 2, 16, 77)  # [negative, prompt] x 2 heads
    heads = 2
    neg, pos = slice(0, heads), slice(heads, 2 * heads)
    assert torch.equal(out[neg], probs[neg])  # the negative prompt's attention is left as it is
    j = orb_column(pipe)
    assert (out[pos, :, j] == 0).all() and (probs[pos, :, j] > 0).all()
    others = [k for k in range(77) if k != j]
    expected = probs[pos][..., others] / (1 - probs[pos, :, j:j + 1])  # the other columns, renormalised
    torch.testing.assert_close(out[pos][..., others], expected, atol=1e-6, rtol=1e-5)


def test_token_index_and_all_select_columns(pipe, spy):
    render("an orb", [Bend("add", 0.3, 0, "token:5", target=CROSS)], pipe=pipe, **KW)
    render("an orb", [Bend("add", 0.3, 0, target=CROSS)], pipe=pipe, **KW)
    (_, p5, o5, _), (_, pall, oall, _) = spy
    # before renormalisation only column 5 grew: out * rowsum recovers probs + 0.3 there, probs elsewhere
    pos = slice(2, 4)
    scale5 = 1 + 0.3  # each row's sum after adding 0.3 to one column
    torch.testing.assert_close(o5[pos] * scale5, p5[pos] + 0.3 * (torch.arange(77) == 5), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(oall[pos] * (1 + 0.3 * 77), pall[pos] + 0.3, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("bend", [Bend("add", -0.05, 0, target=CROSS), Bend("multiply", -3.0, 0, target=SELF),
                                  Bend("threshold", 2.0, 0, target=CROSS), Bend("attn_rotate", 0.7, 0, target=CROSS),
                                  Bend("attn_translate", [0.5, 0.5], 0, target=SELF),
                                  Bend("attn_blur", 2.0, 0, "token:orb", target=CROSS)],
                         ids=lambda b: b.op)
def test_rows_are_renormalised(pipe, spy, bend):
    """After any bend every row is >= 0 and sums to 1 (float32: within 77 roundings of 2**-24); a row bent to all
    zeros (threshold above every probability) is uniform."""
    render("an orb", [bend], pipe=pipe, **KW)
    ((_, probs, out, _),) = spy
    assert (out >= 0).all()
    torch.testing.assert_close(out.sum(-1), torch.ones(out.shape[:2]), atol=1e-5, rtol=0)
    if bend.op == "threshold":
        assert torch.equal(out[2:], torch.full_like(out[2:], 1 / 77))


def test_spatial_ops_act_on_each_columns_map_over_the_image():
    """The maps a spatial operator sees: column k of every (item, head) as the h x w grid of queries, row-major;
    checked on a non-square 2 x 3 grid with known maps (flip, a one-pixel shift, a quarter turn of a square)."""
    B, heads, h, w, K = 2, 3, 2, 3, 5
    x = torch.rand(B, heads, h * w, K)
    flip = AttnBendProcessor._apply(Bend("attn_flip", [1, 0], 0, target=CROSS), x, (h, w))
    maps = x.transpose(2, 3).reshape(B, heads, K, h, w)
    got = flip.transpose(2, 3).reshape(B, heads, K, h, w)
    assert torch.equal(got[0], maps[0].flip(-1)) and torch.equal(got[1], maps[1].flip(-2))
    m = torch.zeros(1, 1, 4, 4)
    m[0, 0, 1, 2] = 1.0
    shifted = operators.attn_translate(m, [0.25, 0.25])  # a quarter of the side: one pixel right and down
    assert shifted[0, 0, 2, 3] == pytest.approx(1.0) and shifted.sum() == pytest.approx(1.0)
    turned = operators.attn_rotate(m, math.pi / 2)  # counter-clockwise as shown
    torch.testing.assert_close(turned, torch.rot90(m, 1, (-2, -1)), atol=1e-5, rtol=0)
    dot = torch.zeros(1, 1, 9, 9)
    dot[0, 0, 4, 4] = 1.0
    blurred = operators.attn_blur(dot, 0.8)[0, 0]  # a Gaussian of sigma 0.8 pixels, its mass kept
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5) and blurred[4, 4] == blurred.max() < 0.3
    assert blurred[4, 5] / blurred[4, 4] == pytest.approx(math.exp(-1 / (2 * 0.8**2)), rel=1e-4)
    for op, r in (("attn_rotate", 0.0), ("attn_translate", [0.0, 0.0]), ("attn_blur", 0.0)):
        assert torch.equal(operators.OPERATORS[op](x.reshape(B, -1, h, w), r), x.reshape(B, -1, h, w)), op


def test_map_shape_follows_the_latent(pipe, spy):
    """A non-square image: the 16 x 8 latent's 4 x 2 grid at the attention block."""
    render("an orb", [Bend("attn_rotate", 1.0, 0, target=CROSS)], pipe=pipe, steps=STEPS, height=64, width=32,
           output_type="np")
    assert spy[0][3] == (4, 2) and spy[0][1].shape[1] == 8


# ------------------------------------------------------------------------------------------ installed and removed
def test_processor_is_restored_after_a_render_and_after_an_error(pipe, monkeypatch):
    before = processors(pipe.unet)
    render("an orb", [Bend("multiply", 0.0, ALL_STEPS, "token:orb", target=CROSS),
                      Bend("attn_blur", 1.0, 0, target=SELF)], pipe=pipe, **KW)
    assert same_processors(before, processors(pipe.unet))
    # an error in the middle of the call (a later latent bend overflows) ...
    with pytest.raises(ValueError, match="made the latent NaN or infinite"):
        render("an orb", [Bend("add", 0.5, ALL_STEPS, target=CROSS), Bend("multiply", 3e38, 1)], pipe=pipe, **KW)
    assert same_processors(before, processors(pipe.unet))
    # ... and inside the processor itself
    def broken(*a, **k):
        raise RuntimeError("broken processor")
    monkeypatch.setattr(AttnBendProcessor, "bend_probs", broken)
    with pytest.raises(RuntimeError, match="broken processor"):
        render("an orb", [Bend("add", 0.5, 0, target=CROSS)], pipe=pipe, **KW)
    assert same_processors(before, processors(pipe.unet))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in pipe.unet.modules())


def test_nested_bending_restores_each_level(pipe):
    from bendlab.bend import bending
    module = pipe.unet.get_submodule(CROSS.removeprefix("attn:"))
    original = module.processor
    with bending(pipe, [Bend("add", 0.1, 0, target=CROSS)], prompts=["an orb"]):
        outer = module.processor
        assert isinstance(outer, AttnBendProcessor) and outer.original is original
        with bending(pipe, [Bend("add", 0.2, 0, target=CROSS)], prompts=["an orb"]):
            assert module.processor.original is outer
        assert module.processor is outer
    assert module.processor is original


# ------------------------------------------------------------------------------------------ batches, sweeps, videos
@pytest.mark.parametrize("op,params,target,where", [
    ("multiply", [1.0, 0.0], CROSS, "token:orb"), ("attn_rotate", [0.0, 1.5], CROSS, "all"),
    ("add", [0.3, 0.0], SELF, "all"),
])
def test_batch_carries_one_attn_parameter_per_item(pipe, op, params, target, where):
    x = initial_noise(pipe, 3).expand(2, -1, -1, -1).clone()
    embeds = encode_prompts(pipe, ["an orb"]).expand(2)
    both = render_batch(pipe, [Bend(op, torch.tensor(params), ALL_STEPS, where, target=target)], embeds=embeds,
                        prompts=["an orb"] * 2, latents=x, steps=STEPS, output_type="np")
    for img, p in zip(both, params):
        assert_frames_close(img, render("an orb", [Bend(op, p, ALL_STEPS, where, target=target)], pipe=pipe, **KW))
    assert not np.array_equal(both[0], both[1])


def test_batch_of_translations(pipe):
    x = initial_noise(pipe, 3).expand(2, -1, -1, -1).clone()
    embeds = encode_prompts(pipe, ["an orb"]).expand(2)
    pairs = [[0.0, 0.0], [0.5, 0.25]]
    both = render_batch(pipe, [Bend("attn_translate", torch.tensor(pairs), ALL_STEPS, target=CROSS)], embeds=embeds,
                        prompts=["an orb"] * 2, latents=x, steps=STEPS, output_type="np")
    for img, p in zip(both, pairs):
        assert_frames_close(img, render("an orb", [Bend("attn_translate", p, ALL_STEPS, target=CROSS)], pipe=pipe,
                                        **KW))


def test_without_guidance_the_whole_batch_is_bent(pipe, spy):
    render("an orb", [Bend("multiply", 0.0, 0, "token:orb", target=CROSS)], pipe=pipe, steps=STEPS, guidance=1.0,
           output_type="np")
    ((_, probs, out, _),) = spy
    assert probs.shape[0] == 2 and (out[:, :, orb_column(pipe)] == 0).all()  # one item x 2 heads, no negative half


def test_grid_of_an_attn_bend_branches_exactly(pipe):
    params = [1.0, 0.0, 2.0]
    kw = dict(where="token:orb", target=CROSS, pipe=pipe, steps=STEPS, seed=3, output_type="np")
    (shared,) = render_grid("an orb", "multiply", params, [1], **kw)
    (alone,) = render_grid("an orb", "multiply", params, [1], branch=False, **kw)
    for a, b in zip(shared, alone):
        assert_frames_close(a, b)
    assert np.array_equal(alone[0], render("an orb", pipe=pipe, **KW))


def test_video_mapping_drives_an_attn_target(pipe, clip, tmp_path):
    """RMS -> multiply of a token's column (token:I: a video's frames are rendered from embeddings, without the
    prompt's text): the silent frames equal the unbent video's within a level (multiply 1; batched with bent
    frames, so computed explicitly), the loud ones not."""
    from bendlab.mapping import Mapping
    from bendlab.video import render_frames
    from conftest import frame_path, spec_for
    m = Mapping("rms", "multiply", 0, 1.0, 0.0, where="token:2", target=CROSS)
    assert m.bend(0.5) == Bend("multiply", 0.5, 0, "token:2", target=CROSS)
    bent = render_frames(spec_for(clip, mappings=[m]), tmp_path / "a.mp4", pipe=pipe, progress=False)
    plain = render_frames(spec_for(clip, mappings=[Mapping("rms", "multiply", 0, 1.0, 1.0 + 1e-9, target=CROSS)]),
                          tmp_path / "b.mp4", pipe=pipe, progress=False)
    diff = [np.abs(np.asarray(Image.open(frame_path(bent, i)), float) - np.asarray(Image.open(frame_path(plain, i))))
            .max() for i in range(12)]
    assert max(diff[:6]) <= 1 and min(diff[6:8]) > 2, diff


# ------------------------------------------------------------------------------------------ front doors and errors
def test_recipe_and_cli_attn_target(tmp_path, pipe, monkeypatch):
    p = tmp_path / "r.toml"
    p.write_text(f'prompt = "an orb"\nsteps = {STEPS}\n[[bend]]\nop = "attn_flip"\nparam = 1\nlayer = [0, 1]\n'
                 f'target = "{CROSS}"\nwhere = "token:orb"\n')
    (b,) = recipe.read_render(p)["bends"]
    assert b == Bend("attn_flip", 1, ALL_STEPS, "token:orb", target=CROSS)
    assert Bend.from_dict(b.to_dict()) == b and b.to_dict()["target"] == CROSS
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    out = tmp_path / "o.png"
    assert main(["render", "an orb", "--steps", str(STEPS), "--seed", "3", "--op", "attn_translate", "--param",
                 "0.25,0", "--layer", "0-1", "--target", CROSS, "--where", "token:orb", "--out", str(out)]) == 0
    expected = render("an orb", [Bend("attn_translate", [0.25, 0.0], ALL_STEPS, "token:orb", target=CROSS)],
                      pipe=pipe, steps=STEPS, seed=3)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))


def test_word_not_in_prompt_is_one_line_and_installs_nothing(pipe):
    before = processors(pipe.unet)
    with pytest.raises(ValueError, match="'cat' is not in the prompt 'an orb'") as e:
        render("an orb", [Bend("add", 1.0, where="token:cat", target=CROSS)], pipe=pipe, **KW)
    assert one_line(e)
    with pytest.raises(ValueError, match="token 99 is out of range") as e:
        render("an orb", [Bend("add", 1.0, where="token:99", target=CROSS)], pipe=pipe, **KW)
    assert one_line(e)
    assert same_processors(before, processors(pipe.unet))


def test_refused_operators_wheres_and_layers_are_one_line():
    allowed = set(operators.POINTWISE_OPERATORS + operators.ATTN_OPERATORS)
    for op in sorted(set(operators.OPERATORS) - allowed):
        k = operators.N_PARAMS.get(op)
        with pytest.raises(ValueError, match=f"{op} cannot bend attention probabilities; accepted .*attn_rotate") as e:
            Bend(op, [1.0] * k if k else 0.0 if op in operators.NO_PARAM_OPERATORS else 1.0, target=CROSS)
        assert one_line(e)
    for op in operators.ATTN_OPERATORS:
        for target in (None, "unet:mid_block", "vae:decoder.up_blocks.1"):
            with pytest.raises(ValueError, match=f"{op} transforms a token's attention map") as e:
                Bend(op, [0.1, 0.1] if op == "attn_translate" else 1.0, target=target)
            assert one_line(e)
    for kw, msg in ((dict(norm="row"), "norm 'row' has no meaning"), (dict(where="row:1"), "not among attention"),
                    (dict(where="token:orb", target=SELF), "is self-attention")):
        with pytest.raises(ValueError, match=msg) as e:
            Bend("add", 1.0, **{"target": CROSS, **kw})
        assert one_line(e)
    with pytest.raises(ValueError, match="outside 0..1 .attn bends act on the UNet evaluations") as e:
        Bend("add", 1.0, STEPS, target=CROSS).check(STEPS)
    assert one_line(e)


# ------------------------------------------------------------------------------------------ another family
@pytest.fixture(scope="module")
def sdxl(sdxl_folder):
    from bendlab import load_pipeline
    return load_pipeline(sdxl_folder, device="cpu")


@pytest.fixture(scope="module")
def sd2(sd2_folder):
    """The SD 2.x-style pipeline conftest builds (linear projections, per-block head counts, v-prediction)."""
    from bendlab import load_pipeline
    return load_pipeline(sd2_folder, device="cpu")


@pytest.mark.parametrize("family,first", [("sdxl", "down_blocks.1.attentions.0.transformer_blocks.0.attn2"),
                                          ("sd2", "down_blocks.0.attentions.0.transformer_blocks.0.attn2")])
def test_attn_target_on_other_families(request, spy, family, first):
    """The tiny SDXL pipeline (two text encoders, 3-D hidden states in linear-projection transformers) and an SD
    2.x-style one (v-prediction, attention at the 16x16 latent itself): identity bit-identical, real bends change
    the image, the word's column zeroed in the prompt half, processors put back."""
    sdxl = request.getfixturevalue(family)
    kw = dict(steps=STEPS, seed=3, output_type="np")
    names = [n for n, m in attention_modules(sdxl.unet) if m.is_cross_attention]
    target = f"attn:{names[0]}"
    assert target == f"attn:{first}"
    before = processors(sdxl.unet)
    plain = render("mice", pipe=sdxl, **kw)
    assert np.array_equal(plain, render("mice", [Bend("multiply", 1.0, ALL_STEPS, "token:mice", target=target)],
                                        pipe=sdxl, **kw))
    assert len(spy) == STEPS and all(o is None for _, _, o, _ in spy)  # an identity: the stock processor ran
    for b in (Bend("multiply", 0.0, ALL_STEPS, "token:mice", target=target),
              Bend("attn_rotate", 1.0, ALL_STEPS, target=target.replace("attn2", "attn1"))):
        assert np.abs(render("mice", [b], pipe=sdxl, **kw) - plain).max() > 2 / 255, b
    assert same_processors(before, processors(sdxl.unet))
    j = sdxl.tokenizer("mice").input_ids.index(sdxl.tokenizer("mice", add_special_tokens=False).input_ids[0])
    out = next(o for _, _, o, _ in spy if o is not None and o.shape[-1] == 77)
    assert (out[out.shape[0] // 2:, :, j] == 0).all()


# ------------------------------------------------------------------------------------------ no leak
def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))  # type(): no proxy lookups


def _rss_mb() -> float:
    """The process's resident memory now, in MB (VmRSS)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def _hooks(pipe) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for c in (pipe.unet, pipe.vae) for m in c.modules())


def test_a_thousand_bent_renders_leave_no_memory_behind(pipe):
    """1,000 renders (1 step, 32x32, classifier-free guidance; decoded when a VAE bend is among them) mixing
    latent, unet:, vae:, text and attn: targets with a new parameter each time: no hook or processor left, the
    live tensor count flat between render 100 and 1,000, and the resident memory (VmRSS) and its peak grown by
    less than 8 MB after the warm-up."""
    embeds = encode_prompts(pipe, ["an orb"])
    x = initial_noise(pipe, 3, 1, 32, 32)
    before, hooks = processors(pipe.unet), _hooks(pipe)
    kinds = [lambda r: Bend("add", r, 1), lambda r: Bend("multiply", 1 + r, 0, module="mid_block"),
             lambda r: Bend("add", r, target="vae:decoder.up_blocks.1"),
             lambda r: Bend("add", r, 0, "token:orb", target="text"),
             lambda r: Bend("multiply", 1 - r, 0, "token:orb", target=CROSS),
             lambda r: Bend("attn_rotate", r, 0, target=SELF)]
    counts, rss = {}, {}
    t = time.monotonic()
    peak0 = None
    for i in range(1, 1001):
        r = (i % 97) / 97
        bends = [kinds[i % len(kinds)](r), kinds[(i + 3) % len(kinds)](r / 2)]
        decodes = any(b.kind == "vae" for b in bends)  # the VAE runs when a VAE bend needs it
        render_batch(pipe, bends, embeds=embeds, prompts=["an orb"], latents=x.clone(), steps=1,
                     output_type="np" if decodes else "latent")
        if i in (100, 1000):
            counts[i], rss[i] = _live_tensors(), _rss_mb()
            if i == 100:
                peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = time.monotonic() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"live tensors {counts}, VmRSS MB {rss}, peak RSS MB {peak0:.1f} -> {peak:.1f}, {seconds:.1f} s")
    assert same_processors(before, processors(pipe.unet)) and _hooks(pipe) == hooks
    assert all(not isinstance(m.processor, AttnBendProcessor) for _, m in attention_modules(pipe.unet))
    assert abs(counts[1000] - counts[100]) <= 5, counts
    assert rss[1000] - rss[100] < 8 and peak - peak0 < 8, (rss, peak0, peak)
