"""The engine's contract on the audio family (Stable Audio), on a tiny random pipeline built in code (nothing
downloaded): identity bit-identical to the stock pipeline, a bend changes the output where `time:` says and
nowhere else, one parameter per batch item, channel operators on every group of 4 channels, erosion along time,
audio-to-audio, nothing left installed, and bad input refused in one line before the model loads."""

import numpy as np
import pytest
import torch

from bendlab.bend.bends import Bend, by_groups
from bendlab.bend import operators
from bendlab.checks import BendlabValueError
from bendlab.music import model as music_model
from bendlab.music.model import MusicConfig, tiny_random_pipeline
from bendlab.music.render import Sound, render_music, render_music_batch

SR, STEPS, SECONDS = 4000, 8, 1.0


@pytest.fixture(scope="module")
def pipe():
    return tiny_random_pipeline(sampling_rate=SR)


@pytest.fixture(scope="module")
def plain(pipe):
    return render_music("a high bell", pipe=pipe, seconds=SECONDS, steps=STEPS)


@pytest.fixture(scope="module")
def folder(pipe, tmp_path_factory):
    path = tmp_path_factory.mktemp("music") / "tiny"
    pipe.save_pretrained(path, safe_serialization=True)
    return path


def test_identity_is_the_stock_pipeline_bit_for_bit(pipe, plain):
    stock = pipe("a high bell", audio_end_in_s=SECONDS, num_inference_steps=STEPS, guidance_scale=7.0,
                 generator=torch.Generator().manual_seed(46), output_type="pt").audios[0].numpy()
    assert plain.samples.shape == (1, int(SECONDS * SR))
    assert np.array_equal(stock, plain.samples)
    same = render_music("a high bell", [Bend("add", 0.0, 3), Bend("rotate1", 0.0, STEPS)], pipe=pipe,
                        seconds=SECONDS, steps=STEPS)
    assert np.array_equal(same.samples, plain.samples)


def test_a_time_bend_changes_its_span_and_nothing_else(pipe, plain):
    """At the last layer (the latent the VAE decodes) time:0.5-1 leaves every sample before the span untouched
    but for the decoder's reach across the boundary (a few latent frames: 0.05 s here)."""
    bent = render_music("a high bell", Bend("rotate1", 3.14, STEPS, "time:0.5-1"), pipe=pipe, seconds=SECONDS,
                        steps=STEPS)
    diff = np.abs(bent.samples - plain.samples)[0]
    assert diff[:int(0.45 * SR)].max() == 0.0
    assert diff[int(0.55 * SR):].mean() > 0.05


def test_one_parameter_per_batch_item(pipe):
    prompts = ["a high bell"] * 3
    bent = render_music_batch(prompts, Bend("rotate1", [0.0, 1.0, 3.0], 4), pipe=pipe, seconds=SECONDS, steps=STEPS)
    plain = render_music_batch(prompts, (), pipe=pipe, seconds=SECONDS, steps=STEPS)
    assert np.array_equal(bent[0].samples, plain[0].samples)
    assert all(np.abs(bent[i].samples - plain[i].samples).max() > 0.01 for i in (1, 2))


def test_channel_operators_act_on_every_group_of_4():
    x = torch.randn(2, 12, 1, 10)
    for op, r in (("rotate1", 0.7), ("reflect", 2), ("hadamard", 0.0), ("matrix", list(range(16)))):
        p = operators.canonical_param(op, r)
        y = by_groups(operators.OPERATORS[op], x, p)
        for g in range(3):
            assert torch.allclose(y[:, 4 * g:4 * g + 4], operators.OPERATORS[op](x[:, 4 * g:4 * g + 4], p))
    b = Bend("rotate1", 1.0, 0, "group:1")
    y = b.apply(x)
    assert torch.equal(y[:, :4], x[:, :4]) and torch.equal(y[:, 8:], x[:, 8:]) and not torch.equal(y[:, 4:8], x[:, 4:8])


def test_erosion_acts_along_time():
    x = torch.randn(1, 8, 1, 20)
    y = Bend("erode", 3, 0).apply(x)
    pad = torch.nn.functional.pad(x[0, :, 0], (1, 1), value=float("inf"))
    expect = pad.unfold(-1, 3, 1).min(-1).values
    assert torch.allclose(y[0, :, 0], expect)


@pytest.mark.parametrize("target,layer", [("unet:transformer_blocks.1", 3), ("vae:decoder.block.0", None),
                                          ("text", 2)])
def test_other_targets_bend_and_leave_nothing_installed(pipe, plain, target, layer):
    def state():
        mods = list(pipe.transformer.modules()) + list(pipe.vae.modules())
        return (sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in mods),
                set(vars(pipe)) - {"_bendlab_img2img"}, set(vars(pipe.scheduler)))
    before = state()
    bent = render_music("a high bell", Bend("multiply", 3.0, layer, target=target), pipe=pipe, seconds=SECONDS,
                        steps=STEPS)
    assert np.abs(bent.samples - plain.samples).max() > 1e-4
    assert state() == before


def test_audio_to_audio_runs_strength_x_steps_and_bends(pipe, plain):
    keep = render_music("a high bell", pipe=pipe, seconds=SECONDS, steps=STEPS, audio=plain.samples, strength=0.5)
    bent = render_music("a high bell", Bend("add", 1.0, 4), pipe=pipe, seconds=SECONDS, steps=STEPS,
                        audio=plain.samples, strength=0.5)  # layer 4 = the last of int(8 x 0.5) steps run
    assert keep.samples.shape == plain.samples.shape and np.isfinite(keep.samples).all()
    assert np.abs(bent.samples - keep.samples).max() > 0.01
    with pytest.raises(BendlabValueError, match=r"layer 5 is outside 0..4"):
        render_music("a high bell", Bend("add", 1.0, 5), pipe=pipe, seconds=SECONDS, steps=STEPS,
                     audio=plain.samples, strength=0.5)


def test_a_saved_folder_renders_as_the_pipeline_in_memory(folder, plain):
    assert MusicConfig.read(folder) == MusicConfig(SR, 8, 8, 1024)
    loaded = render_music("a high bell", model=str(folder), seconds=SECONDS, steps=STEPS)
    # the Oobleck VAE's weight-normed convolutions recompute weight = g v / |v| on load: float32 rounding only
    assert np.abs(loaded.samples - plain.samples).max() < 1e-5


@pytest.mark.parametrize("kwargs,msg", [
    (dict(bends=Bend("rotate1", 1.0, 3, "time:0.5-3")), r"^where time:0.5-3 ends after the 1 s output"),
    (dict(bends=Bend("rotate1", 1.0, 3, "group:2")), r"^group 2 is out of range for 8 channels; accepted: 0..1$"),
    (dict(bends=Bend("rotate1", 1.0, 3, "channel:8")), r"^channel 8 is out of range for 8 channels"),
    (dict(bends=Bend("add", 1.0, 3, "row:0")), r"^where row:0 selects in an image latent; accepted for music"),
    (dict(bends=Bend("add", 1.0, 9)), r"^layer 9 is outside 0..8"),
    (dict(bends=Bend("attn_rotate", 1.0, 2, target="attn:transformer_blocks.0.attn2")),
     r"^attn_rotate on attn:transformer_blocks.0.attn2: a music model's attention maps have no image grid"),
    (dict(seconds=5.0), r"^seconds 5.0 is not > 0 and <= 2.048; accepted: 0 < seconds <= 2.048"),
    (dict(audio=np.zeros(100)), r"^audio-to-audio needs both"),
])
def test_bad_input_is_one_line_before_the_model_loads(folder, monkeypatch, kwargs, msg):
    def no_load(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(music_model, "_load", no_load)
    kwargs = {"seconds": SECONDS, "steps": STEPS, **kwargs}
    with pytest.raises(BendlabValueError, match=msg) as e:
        render_music("a high bell", model=str(folder), **kwargs)
    assert "\n" not in str(e.value)


def test_an_image_only_operator_is_refused():
    with pytest.raises(BendlabValueError, match="attn_rotate transforms a token's attention map"):
        Bend("attn_rotate", 1.0, 2)


def test_a_loud_sound_is_scaled_not_clipped(tmp_path):
    import soundfile as sf
    t = np.arange(SR) / SR
    loud = Sound((2.5 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32), SR)
    gain = loud.write(tmp_path / "loud.wav")
    back, sr = sf.read(tmp_path / "loud.wav")
    assert sr == SR and 0.35 < gain < 0.4 and 0.85 < np.abs(back).max() <= 0.9
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loud.wav"]
    quiet = Sound((0.5 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32), SR)
    assert quiet.write(tmp_path / "quiet.wav") == 1.0


def test_attention_explicit_equals_stable_audio_processor(pipe):
    """bendlab's explicit attention (grouped key/value heads, rotary embeddings) computes what diffusers'
    StableAudioAttnProcessor2_0 computes, so a bend acts on the model's own probabilities."""
    from diffusers.models.embeddings import get_1d_rotary_pos_embed
    from bendlab.bend.attention import attention_call
    torch.manual_seed(0)
    for path, context in (("transformer_blocks.0.attn1", None), ("transformer_blocks.1.attn2", torch.randn(2, 7, 32))):
        m = pipe.transformer.get_submodule(path)
        x = torch.randn(2, 10, m.to_q.in_features)
        rot = get_1d_rotary_pos_embed(pipe.rotary_embed_dim, 10, use_real=True, repeat_interleave_real=False)
        with torch.no_grad():
            ref = m.processor(m, x, encoder_hidden_states=context, rotary_emb=rot)
            call = attention_call(m, x, context, rotary_emb=rot)
            assert (call.output(m, call.probs) - ref).abs().max() < 1e-5


def test_cross_attention_to_a_word_bends_and_an_identity_is_exact(pipe, plain):
    kw = dict(pipe=pipe, seconds=SECONDS, steps=STEPS)
    bent = render_music("a high bell", Bend("multiply", 3.0, (0, STEPS - 1), "token:bell",
                                            target="attn:transformer_blocks.1.attn2"), **kw)
    same = render_music("a high bell", Bend("multiply", 1.0, (0, STEPS - 1), "token:bell",
                                            target="attn:transformer_blocks.1.attn2"), **kw)
    assert np.abs(bent.samples - plain.samples).max() > 1e-3
    assert np.array_equal(same.samples, plain.samples)


def test_a_shared_sweep_is_bit_identical_to_independent_renders(pipe):
    """render_music_grid computes the DiT evaluations before the first bent step once and replays them: every
    render equals its independent render exactly, and nothing is left patched on the DiT."""
    from bendlab.music.render import render_music_grid, shared_steps
    bends = [Bend("rotate1", a, 5) for a in (0.0, 1.5, 3.0)] + [
        [Bend("multiply", 2.0, (6, 7), target="unet:transformer_blocks.1")], None]
    assert shared_steps([[b] if isinstance(b, Bend) else b or [] for b in bends], STEPS) == 5
    kw = dict(pipe=pipe, seconds=SECONDS, steps=STEPS)
    shared = render_music_grid("a high bell", bends, **kw)
    alone = render_music_grid("a high bell", bends, share=False, **kw)
    assert all(np.array_equal(a.samples, b.samples) for a, b in zip(shared, alone))
    assert not np.array_equal(shared[0].samples, shared[2].samples)
    assert "forward" not in vars(pipe.transformer)
