"""Every target per frame on the video method (issue 27 section 1): the UNet's blocks, a motion module's output,
the text, spatial attention and the VAE decoder take one parameter per video frame, and frame k is bent by frame
k's value; inside a motion module (its temporal attention and transformer) the batch is the pixels, so those are
refused in one line. Prompts interpolated along the frames, as method A interpolates them. On the shipped model
with the tiny random adapter of test_method_video."""

import numpy as np
import pytest
import torch

from bendlab import models
from bendlab.bend.bends import Bend
from bendlab.bend.hooks import NonFiniteLatentError, bending
from bendlab.checks import BendlabValueError
from bendlab.mapping import Mapping
from bendlab.video import VideoSpec
from bendlab.video.joint import WindowRenderer, render_clip
from bendlab.video.spec import Plan, prompt_weights, resolve

from conftest import to_frame, write_clip
from test_method_video import FRAMES, STEPS

HALF = FRAMES // 2


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.wav", onset=0.5, seconds=1.2)  # 24 frames at 20 fps


def spec_for(clip, adapter, mapping, **kw):
    return resolve(VideoSpec(audio=str(clip), method="video", motion_adapter=adapter, steps=STEPS,
                             mappings=[mapping], **kw))


def frames(pipe, spec, curve, n=FRAMES):
    return to_frame(render_clip(Plan(spec, None, np.asarray(curve, dtype=float)[None][:, :n]), pipe, "np"))


def per_frame_change(a, b) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int)).reshape(len(a), -1).mean(1)


# target, operator, identity value, bent value: at layer 1 of 4 steps
KINDS = [
    ("unet:down_blocks.1", "multiply", 1.0, 3.0),
    ("unet:down_blocks.1.motion_modules.0", "multiply", 1.0, 3.0),  # a motion module's output: one row per frame
    ("text", "multiply", 1.0, 3.0),
    ("attn:down_blocks.2.attentions.0.transformer_blocks.0.attn1", "add", 0.0, 1.0),  # spatial self-attention
    ("attn:down_blocks.2.attentions.0.transformer_blocks.0.attn2", "add", 0.0, 1.0),  # cross-attention to the prompt
]  # temporal attention: test_temporal_attention_is_bent_per_query_frame (the tiny random adapter's motion modules
#    add little to its frames, so a bend of them moves a pixel by under a level)


@pytest.mark.parametrize("target, op, identity, value", KINDS)
def test_each_target_bends_its_own_frames_most(animatediff, clip, adapter, target, op, identity, value):
    """The first half of the window unbent, the second bent: the motion modules carry part of a bend to the
    neighbouring frames in the steps and blocks after it, but the bent frames move at least twice as much."""
    spec = spec_for(clip, adapter, Mapping("rms", op, 1, identity, value, target=target))
    unbent = frames(animatediff, spec, [identity] * FRAMES)
    bent = frames(animatediff, spec, [identity] * HALF + [value] * HALF)
    d = per_frame_change(bent, unbent)
    assert d[HALF:].mean() > 2 * d[:HALF].mean() and d[HALF:].mean() > 1, d.round(1)


def test_a_vae_bend_changes_exactly_the_frames_from_its_step_across_windows(animatediff, clip, adapter):
    """The VAE decodes each frame on its own after the windows are blended: a step in the curve at frame 13 of a
    24-frame song in windows of 16 (0-15, 8-23; frames 8-23 decoded after the second window) changes frames 13..23
    and leaves 0..12 byte-identical."""
    spec = spec_for(clip, adapter, Mapping("rms", "multiply", None, 1.0, 3.0, target="vae:decoder.up_blocks.0"),
                    window=16, overlap=8)
    n = 24
    unbent = frames(animatediff, spec, [1.0] * n, n)
    bent = frames(animatediff, spec, [1.0] * 13 + [3.0] * (n - 13), n)
    assert len(bent) == n
    d = per_frame_change(bent, unbent)
    assert (d[:13] == 0).all() and (d[13:] > 1).all(), d.round(1)


@pytest.mark.parametrize("target, op, msg", [
    ("unet:mid_block.motion_modules.0.transformer_blocks.0", "multiply", "is inside the temporal module"),
    ("unet:up_blocks.0.motion_modules.0.proj_in", "multiply", "accepted: the module's output (unet:"),
    ("attn:down_blocks.1.motion_modules.0.transformer_blocks.0.attn1", "attn_rotate",
     "queries are the window's frames")])
def test_inside_a_motion_module_is_refused_in_one_line(animatediff, target, op, msg):
    with pytest.raises(BendlabValueError) as e:
        with bending(animatediff, [Bend(op, torch.ones(FRAMES, dtype=torch.float64), 1, target=target)]):
            pass
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_temporal_attention_is_bent_per_query_frame(animatediff):
    """In a motion module's attention the rows of the probabilities are (pixel, head, query frame): frame k's
    parameter bends the rows of query frame k. Captured: the probabilities the processor multiplies with the values,
    bent by add 0 on query frames 0..7 and add 1 on 8..15, against the unbent ones: rows 0..7 equal, 8..15 flattened
    toward uniform (each row + 1, renormalised)."""
    from bendlab.bend.attention import AttnBendProcessor
    from bendlab.bend.hooks import BendCallback
    path = "down_blocks.1.motion_modules.0.transformer_blocks.0.attn1"
    attn = animatediff.unet.get_submodule(path)
    bend = Bend("add", torch.tensor([0.0] * HALF + [1.0] * HALF, dtype=torch.float64), 1, target="attn:" + path)
    cb = BendCallback([bend])
    cb.step = 1
    proc = AttnBendProcessor(attn.processor, [(bend, None)], cb, lambda: False, frames=True)
    probs = torch.softmax(torch.randn(64 * attn.heads, FRAMES, FRAMES, generator=torch.Generator().manual_seed(0)), -1)
    bent = proc.bend_probs(probs, attn.heads, [(bend, None)], (1, FRAMES))
    torch.testing.assert_close(bent[:, :HALF], probs[:, :HALF], atol=1e-6, rtol=0)  # renormalised: sums were 1
    expected = (probs[:, HALF:] + 1) / (probs[:, HALF:] + 1).sum(-1, keepdim=True)
    torch.testing.assert_close(bent[:, HALF:], expected)


def test_a_motion_modules_output_is_listed_as_a_target(adapter):
    names = {t.name: t for t in models.bend_targets(None, motion_adapter=adapter)}
    assert names["down_blocks.1.motion_modules.0"].kind == "AnimateDiffTransformer3D"
    assert names["down_blocks.1.motion_modules.0"].shape == names["down_blocks.1.resnets.0"].shape == (64, 8, 8)
    assert "mid_block.motion_modules.0" in names and "up_blocks.2.motion_modules.1" in names
    assert "attn:down_blocks.1.motion_modules.0.transformer_blocks.0.attn1" in names  # temporal attention
    assert "attn:down_blocks.2.attentions.0.transformer_blocks.0.attn2" in names


# ------------------------------------------------------------------------------------------ prompts along frames
def test_prompts_are_interpolated_frame_by_frame(animatediff, clip, adapter):
    """Two prompts with keyframes at 0.2 s and 0.6 s: every frame's cross-attention sees its own mix of the two
    prompts' embeddings, the weights method A uses (`prompt_weights`); frames before the first keyframe the first
    prompt's exactly."""
    prompts = ["a floating orb", "a gorgeous landscape"]
    spec = spec_for(clip, adapter, Mapping("rms", "multiply", 1, 1.0, 2.0), prompts=prompts, keyframes=[0.2, 0.6])
    renderer = WindowRenderer(Plan(spec, None, np.ones((1, 24))), animatediff)
    seen = []
    attn2 = animatediff.unet.get_submodule("down_blocks.2.attentions.0.transformer_blocks.0.attn2")
    hook = attn2.register_forward_pre_hook(lambda m, a, kw: seen.append(kw["encoder_hidden_states"].clone()),
                                           with_kwargs=True)
    try:
        renderer.latents(0)
    finally:
        hook.remove()
    pos = seen[0][FRAMES:]  # [negative x F, positive x F]
    w = prompt_weights(spec, 24)[:FRAMES]
    both = animatediff.encode_prompt(prompts, "cpu", 1, False)[0]
    expected = torch.einsum("fp,p...->f...", torch.from_numpy(w).float(), both)
    torch.testing.assert_close(pos, expected, atol=1e-5, rtol=0)
    assert torch.equal(pos[0], pos[3]) and not torch.equal(pos[5], pos[9])  # 0.2 s is frame 4: one prompt before it


def test_one_prompt_all_along_a_window_is_the_stock_call(animatediff, clip, adapter):
    """A window lying wholly after the last keyframe is conditioned on that prompt alone, exactly as a render of
    that prompt: 24 frames in windows of 8 (the last: frames 16-23), the prompts' cross-fade over frames 0-6."""
    m = Mapping("rms", "multiply", 1, 1.0, 2.0)
    two = spec_for(clip, adapter, m, prompts=["a gorgeous landscape", "a floating orb"], keyframes=[0.0, 0.3],
                   window=8, overlap=2)
    one = spec_for(clip, adapter, m, prompts=["a floating orb"], window=8, overlap=2)
    last = [WindowRenderer(Plan(s, None, np.ones((1, 24))), animatediff) for s in (two, one)]
    assert last[0].windows[-1] == (16, 24)
    assert torch.equal(last[0].latents(3), last[1].latents(3))


def test_a_text_bend_acts_on_each_frames_prompt(animatediff, clip, adapter):
    """The text bend comes after the frames' prompts are written: multiply by 1 leaves the interpolated render as
    it is; multiplying the second half's text changes those frames most."""
    prompts = ["a floating orb", "a gorgeous landscape"]
    spec = spec_for(clip, adapter, Mapping("rms", "multiply", 1, 1.0, 3.0, target="text"), prompts=prompts)
    unbent = frames(animatediff, spec, [1.0] * FRAMES)
    bent = frames(animatediff, spec, [1.0] * HALF + [3.0] * HALF)
    d = per_frame_change(bent, unbent)
    assert d[HALF:].mean() > 2 * d[:HALF].mean(), d.round(1)


def test_cli_lists_the_motion_modules(adapter, capsys):
    from bendlab.ui.cli import main
    assert main(["targets", "--motion-adapter", adapter]) == 0
    out = capsys.readouterr().out
    assert "down_blocks.1.motion_modules.0  AnimateDiffTransformer3D" in out
    assert "attn:down_blocks.1.motion_modules.0.transformer_blocks.0.attn1" in out


def installed(pipe) -> tuple:
    """What a render may install: hooks on the UNet and the VAE, attention processors, and patched methods on the
    pipeline and its scheduler (instance attributes)."""
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for part in (pipe.unet, pipe.vae)
                for m in part.modules())
    processors = tuple(sorted((n, type(p).__name__) for n, p in pipe.unet.attn_processors.items()))
    patched = tuple(sorted(n for obj in (pipe, pipe.scheduler) for n in vars(obj) if callable(vars(obj)[n])))
    return hooks, processors, patched


def test_nothing_is_left_installed(animatediff, clip, adapter):
    """Every kind of target at once, two prompts interpolated, over two windows: afterwards the pipeline holds no
    hook, processor or patch it did not hold before, also when a render fails part-way."""
    before = installed(animatediff)
    targets = [t for t, *_ in KINDS] + ["latent", "vae:decoder.up_blocks.0",
                                        "attn:down_blocks.1.motion_modules.0.transformer_blocks.0.attn1"]
    prompts = ["a floating orb", "a gorgeous landscape"]
    for target in targets:
        op = "add" if target.startswith("attn:") else "multiply"
        spec = spec_for(clip, adapter, Mapping("rms", op, None if target.startswith("vae") else 1, 1.0, 2.0,
                                               target=target), prompts=prompts, window=8, overlap=2)
        frames(animatediff, spec, [1.0] * 6 + [2.0] * 6, 12)
        assert installed(animatediff) == before, target
    spec = spec_for(clip, adapter, Mapping("rms", "multiply", 1, 1.0, 2.0), prompts=prompts)
    with pytest.raises(NonFiniteLatentError):  # the frames' prompt hook installed, the call stopped at layer 1
        frames(animatediff, spec, [1.0] * 8 + [3e38] * 8)
    assert installed(animatediff) == before


def test_the_family_knows_the_attention_map_operators_by_their_prefix():
    """models.family refuses the attention-map operators on temporal attention without importing bend (a higher
    layer): by their "attn_" prefix, which every one of them has."""
    from bendlab.bend.catalogue import ATTN_OPERATORS
    assert ATTN_OPERATORS and all(op.startswith("attn_") for op in ATTN_OPERATORS)
