"""The text target of a bend (issue 20 part 1): the prompt embedding the UNet is conditioned on, bent on its
positive half by a forward pre-hook on the UNet (removed after the call); `where` selects tokens. Shipped model,
CPU, 2 steps."""

import numpy as np
import pytest
import torch
from PIL import Image

from bendlab import Bend, render
from bendlab.ui.cli import main
from bendlab.bend import N_PARAMS, OPERATORS, POINTWISE_OPERATORS

STEPS = 2
KW = dict(steps=STEPS, seed=3, output_type="np")


def one_line(e) -> bool:
    return "\n" not in str(e.value)


def test_identity_text_bend_is_bit_identical(pipe):
    plain = render("an orb", pipe=pipe, **KW)
    for b in (Bend("add", 0.0, target="text"), Bend("multiply", 1.0, (0, STEPS - 1), "token:orb", target="text"),
              Bend("add", 0.0, 1, "token:0", target="text")):
        assert np.array_equal(plain, render("an orb", [b], pipe=pipe, **KW)), b


def test_multiply_zero_on_a_word_changes_the_image_and_only_the_positive_half(pipe):
    plain = render("an orb", pipe=pipe, **KW)
    seen = []
    h = pipe.unet.register_forward_pre_hook(lambda m, a, k: seen.append(k["encoder_hidden_states"].clone()),
                                            with_kwargs=True)
    try:
        bent = render("an orb", [Bend("multiply", 0.0, (0, STEPS - 1), "token:orb", target="text")], pipe=pipe, **KW)
    finally:
        h.remove()
    assert np.abs(bent - plain).max() > 0.02
    assert len(seen) == STEPS  # registered before ours: it sees the unbent conditioning, [negative, positive]
    ids = pipe.tokenizer("an orb").input_ids  # BOS an orb EOS
    orb = ids.index(pipe.tokenizer("orb", add_special_tokens=False).input_ids[0])
    assert orb == 2


def test_token_word_selects_the_right_positions(pipe):
    from bendlab.bend import token_mask
    tok = pipe.tokenizer
    prompt = "a red orb beside a blue orb"
    ids = tok(prompt).input_ids
    orb = tok("orb", add_special_tokens=False).input_ids
    expected = [i for i, t in enumerate(ids) if t == orb[0]]
    m = token_mask(pipe, Bend("add", 1.0, where="token:orb", target="text"), [prompt])
    assert m.shape == (1, tok.model_max_length, 1)
    assert torch.nonzero(m[0, :, 0]).flatten().tolist() == expected == [3, 7]
    assert torch.nonzero(token_mask(pipe, Bend("add", 1.0, where="token:5", target="text"))[0, :, 0]).flatten()\
        .tolist() == [5]
    assert token_mask(pipe, Bend("add", 1.0, target="text")) is None


def test_word_not_in_prompt_is_one_line(pipe):
    with pytest.raises(ValueError, match="'cat' is not in the prompt 'an orb'.*an orb") as e:
        render("an orb", [Bend("add", 1.0, where="token:cat", target="text")], pipe=pipe, **KW)
    assert one_line(e)
    with pytest.raises(ValueError, match="token 99 is out of range") as e:
        render("an orb", [Bend("add", 1.0, where="token:99", target="text")], pipe=pipe, **KW)
    assert one_line(e)
    assert not pipe.unet._forward_pre_hooks


def test_refused_operators_and_wheres_are_one_line():
    for op in sorted(set(OPERATORS) - set(POINTWISE_OPERATORS)):
        with pytest.raises(ValueError, match="not point-wise.*add, multiply") as e:
            Bend(op, [1.0] * N_PARAMS[op] if op in N_PARAMS else 0.0 if op == "hadamard" else 1.0, target="text")
        assert one_line(e)
    for kw in (dict(norm="row"), dict(where="row:3"), dict(where="channel:1")):
        with pytest.raises(ValueError) as e:
            Bend("add", 1.0, target="text", **kw)
        assert one_line(e)
    with pytest.raises(ValueError, match="target='text'") as e:
        Bend("add", 1.0, where="token:orb")
    assert one_line(e)
    with pytest.raises(ValueError, match="outside 0..1") as e:
        Bend("add", 1.0, STEPS, target="text").check(STEPS)
    assert one_line(e)
    with pytest.raises(ValueError, match="not a bend target"):
        Bend("add", 1.0, target="text:x")
    assert Bend.from_dict(Bend("add", 1.0, 1, "token:orb", target="text").to_dict()) == \
        Bend("add", 1.0, 1, "token:orb", target="text")


def test_batch_carries_one_text_parameter_per_item(pipe):
    from bendlab.bend import encode_prompts, initial_noise, render_batch
    x = initial_noise(pipe, 3).expand(2, -1, -1, -1).clone()
    embeds = encode_prompts(pipe, ["an orb"]).expand(2)
    both = render_batch(pipe, [Bend("multiply", torch.tensor([1.0, 0.0]), (0, STEPS - 1), "token:orb",
                                    target="text")], embeds=embeds, prompts=["an orb"] * 2, latents=x, steps=STEPS,
                        output_type="np")
    plain = render("an orb", pipe=pipe, **KW)
    zero = render("an orb", [Bend("multiply", 0.0, (0, STEPS - 1), "token:orb", target="text")], pipe=pipe, **KW)
    from conftest import assert_frames_close
    assert_frames_close(both[0], plain)
    assert_frames_close(both[1], zero)


def test_cli_text_target(tmp_path, pipe, monkeypatch):
    monkeypatch.setattr("bendlab.models.Model.load", lambda *a, **k: pipe)
    out = tmp_path / "o.png"
    assert main(["render", "an orb", "--steps", str(STEPS), "--seed", "3", "--op", "multiply", "--param", "0",
                 "--layer", "0", "--target", "text", "--where", "token:orb", "--out", str(out)]) == 0
    expected = render("an orb", [Bend("multiply", 0.0, 0, "token:orb", target="text")], pipe=pipe, steps=STEPS,
                      seed=3)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))


@pytest.mark.parametrize("target", ["text", "attn:mid_block.attentions.0.transformer_blocks.0.attn2"])
def test_a_video_mapping_bends_a_word(target, tmp_path):
    """token:WORD in a video mapping: the frame renderer passes each frame's prompt, so the word's tokens are
    found (loud frames bent, the picture differs from the unbent video)."""
    from conftest import spec_for, write_clip

    from bendlab.mapping import Mapping
    from bendlab.video import render_frames
    clip = write_clip(tmp_path / "c.wav")
    folders = {}
    for name, high in (("plain", 1.0 + 1e-9), ("bent", 3.0)):  # plain: multiply by ~1 (low == high is refused)
        spec = spec_for(clip, prompts=["a floating orb"],
                        mappings=[Mapping("rms", "multiply", 1, 1.0, high, where="token:orb", target=target)])
        folders[name] = render_frames(spec, tmp_path / f"{name}.mp4", progress=False)
    frames = {k: sorted(f.glob("*.png")) for k, f in folders.items()}
    assert len(frames["bent"]) == len(frames["plain"]) > 0
    assert any(a.read_bytes() != b.read_bytes() for a, b in zip(frames["plain"], frames["bent"]))
