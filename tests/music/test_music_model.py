"""The shipped music model (bendlab/weights/bendlab-tiny-music, `make music-model`): a StableAudioPipeline folder of
float16 safetensors that loads offline as float32, with the shapes the engine relies on, and that follows its
prompts measurably: the prompt checks of its model card (training/music.py's PROMPT_CHECKS), here at fewer steps
and seeds so the file runs in under a minute on one CPU thread. Each asserted check was measured at these very
settings after training (the card lists the numbers), and each can fail: a model that ignored its prompt, or a
swapped prompt, fails it."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "bendlab" / "weights" / "bendlab-tiny-music"
sys.path.insert(0, str(ROOT / "training"))
import music  # noqa: E402

STEPS, GUIDANCE = 20, 7.0  # fewer steps than the card's 50: what the measured table below was measured at
SEEDS = (0, 1)  # the ratio checks pass at all 8 seeds measured, with margins of 2.3x to 15x
CHECKS = {c.name: c for c in music.PROMPT_CHECKS}


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableAudioPipeline
    p = StableAudioPipeline.from_pretrained(MODEL, use_safetensors=True)
    p.set_progress_bar_config(disable=True)
    return p


_clips: dict = {}


def clip(pipe, prompt, seed):
    if (prompt, seed) not in _clips:
        out = pipe(prompt, num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                   generator=torch.Generator().manual_seed(seed)).audios
        _clips[prompt, seed] = out[0, 0].float().numpy()
    return _clips[prompt, seed]


def test_folder_is_small_float16_safetensors():
    files = [f for f in MODEL.rglob("*") if f.is_file()]
    weights = [f for f in files if f.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    assert weights and all(f.suffix == ".safetensors" for f in weights)
    assert {f.parent.name for f in weights} == {"vae", "transformer", "text_encoder", "projection_model"}
    assert sum(f.stat().st_size for f in files) < 30e6
    from safetensors import safe_open
    with safe_open(MODEL / "transformer" / "diffusion_pytorch_model.safetensors", "pt") as f:
        assert all(f.get_slice(k).get_dtype() == "F16" for k in f.keys())


def test_shapes_the_engine_relies_on(pipe):
    assert pipe.vae.config.sampling_rate == music.SR == 8000 and pipe.vae.hop_length == music.HOP == 128
    assert pipe.transformer.config.in_channels == 16 and pipe.transformer.config.in_channels % 4 == 0
    assert pipe.transformer.config.sample_size == music.FRAMES == 128
    assert pipe.vae.config.decoder_input_channels == 16 and pipe.vae.config.audio_channels == 1
    cfg = pipe.scheduler.config
    assert type(pipe.scheduler).__name__ == "CosineDPMSolverMultistepScheduler"
    assert (cfg.prediction_type, cfg.sigma_data, cfg.sigma_min, cfg.sigma_max) == ("v_prediction", 1.0, 0.3, 500)
    assert all(p.dtype == torch.float32 for m in (pipe.vae, pipe.transformer, pipe.text_encoder,
                                                    pipe.projection_model) for p in m.parameters())
    # every caption word is a token of its own; nothing maps to <unk>
    ids = pipe.tokenizer(" ".join(music.VOCABULARY)).input_ids
    assert pipe.tokenizer.unk_token_id not in ids and len(set(ids)) == len(ids) == len(music.VOCABULARY) + 1


def test_a_clip_is_audio_and_seeded(pipe):
    y = clip(pipe, "a piano note in C", 0)
    again = pipe("a piano note in C", num_inference_steps=STEPS, guidance_scale=GUIDANCE,
                 generator=torch.Generator().manual_seed(0)).audios[0, 0].numpy()
    assert y.shape == (music.SAMPLES,) and np.isfinite(y).all() and np.array_equal(y, again)
    assert 0.01 < np.sqrt(np.mean(y ** 2)) < 0.5  # neither silent nor clipping


def check_ratio(pipe, c):
    f = music.FEATURES[c.feature]
    return [(f(clip(pipe, c.prompt, s)), f(clip(pipe, c.other, s))) for s in SEEDS]


def test_a_high_bell_is_brighter_than_a_low_bass_drone(pipe):
    c = CHECKS["bell above drone"]
    values = check_ratio(pipe, c)
    assert all(c.passes(a, b) for a, b in values), values


def test_a_fast_drum_loop_has_more_onsets_than_a_sustained_pad(pipe):
    c = CHECKS["drums busier than pad"]
    values = check_ratio(pipe, c)
    assert all(c.passes(a, b) for a, b in values), values


def test_a_piano_note_in_c_is_mostly_a_c(pipe):
    """C only, and not at every seed: the shipped model's notes mostly land on its VAE's 62.5 Hz frame comb, so "a
    piano note in A" or "in E" miss their key at every seed measured (0 of 8, see the model card); for "in C" a C4
    partial (262 Hz) comes out: at these settings 6 of seeds 0-7 (seed 2 unvoiced, seed 3 two semitones off)."""
    c = CHECKS["piano note in C"]
    errors = [music.pitch_class_error(clip(pipe, c.prompt, s), c.key, fmin=c.fmin) for s in range(8)]
    assert sum(c.passes(e) for e in errors) >= 5, errors


# ------------------------------------------------------------------------------------------ the engine's contract
def installed(pipe) -> tuple:
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for part in (pipe.transformer, pipe.vae)
                for m in part.modules())
    patched = tuple(sorted(n for obj in (pipe, pipe.scheduler) for n in vars(obj) if callable(vars(obj)[n])))
    return hooks, patched


def test_the_engine_contract_on_the_shipped_music_model(pipe):
    """As tests/music/test_render.py holds on a tiny random pipeline, here on the shipped model (8 steps): an
    identity bend is the stock pipeline call bit for bit; R1 at the last layer on time:1-2 leaves the first second
    untouched but for the Oobleck decoder's reach across the boundary (its receptive field: the first changed sample
    was at 0.834 s, so everything before 0.8 s is exact) and changes the span; a DiT block bend and a text bend leave
    nothing installed."""
    from bendlab.bend.bends import Bend
    from bendlab.music.render import render_music
    steps, seconds = 8, 2.0
    kw = dict(pipe=pipe, seconds=seconds, steps=steps)
    plain = render_music("a slow piano phrase", **kw)
    stock = pipe("a slow piano phrase", audio_end_in_s=seconds, num_inference_steps=steps, guidance_scale=7.0,
                 generator=torch.Generator().manual_seed(46), output_type="pt").audios[0].numpy()
    assert np.array_equal(plain.samples, stock)
    assert np.array_equal(render_music("a slow piano phrase", [Bend("rotate1", 0.0, 4)], **kw).samples, stock)
    bent = render_music("a slow piano phrase", [Bend("rotate1", 3.14, steps, "time:1-2")], **kw)
    diff = np.abs(bent.samples - plain.samples)[0]
    sr = plain.sr
    assert diff[: int(0.8 * sr)].max() == 0.0 and diff[int(1.05 * sr):].mean() > 0.01
    before = installed(pipe)
    render_music("a slow piano phrase", [Bend("multiply", 2.0, [0, steps - 1], target="unet:transformer_blocks.0"),
                                         Bend("multiply", 2.0, [0, steps - 1], target="text")], **kw)
    assert installed(pipe) == before
