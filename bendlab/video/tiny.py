"""Tiny random Wan 2.x and LTX-Video pipelines built in code: the shapes of diffusers' own fast tests
(tests/pipelines/wan/test_wan.py, tests/pipelines/ltx/test_ltx.py), seeded, with a small T5-family text encoder
made from a config and a word-level tokenizer built locally (`music.model.word_tokenizer`): nothing is
downloaded. For tests of the engine on the video transformer families (`models.family.WAN`, `models.family.LTX`)
and for quick checks; their pictures mean nothing.

Both keep their model's temporal layout: Wan's VAE compresses time 4x (`temperal_downsample` [False, True,
True]), LTX-Video's 8x (three spatio-temporal scaling blocks, as LTX-Video 0.9's own VAE); a clip of
F = r (F' - 1) + 1 frames has F' latent frames (`video.latent_frames`).
"""

from __future__ import annotations

import torch

from ..music.model import word_tokenizer

WORDS = "a an the orb floating glowing sun rising over hills waves mice running dance monkey slow fast".split()
TOKENS = 16  # the tokenizer's length: the pipelines' max_sequence_length for these


def _tokenizer():
    return word_tokenizer(WORDS, TOKENS)


def _ready(pipe):
    """Modules built from configs start in training mode (T5's dropout would make every call differ): evaluation
    mode, as `from_pretrained` leaves them; no progress bar."""
    for part in (pipe.transformer, pipe.vae, pipe.text_encoder):
        part.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def tiny_wan(seed: int = 0):
    """A `WanPipeline` (Wan 2.1's text-to-video) with tiny random components: a 2-layer transformer on 16 latent
    channels (patch 1 x 2 x 2), a Wan VAE (spatial 8x, temporal 4x, causal in time), a 2-layer UMT5 encoder,
    FlowMatchEulerDiscreteScheduler(shift=7) as diffusers' fast test."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel
    tok = _tokenizer()
    torch.manual_seed(seed)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    text = UMT5EncoderModel(UMT5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                       decoder_start_token_id=0))
    transformer = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                                        in_channels=16, out_channels=16, text_dim=32, freq_dim=256, ffn_dim=32,
                                        num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                                        rope_max_seq_len=32)
    pipe = WanPipeline(tokenizer=tok, text_encoder=text, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                       transformer=transformer)
    return _ready(pipe)


def tiny_ltx(seed: int = 0):
    """An `LTXPipeline` (LTX-Video 0.9's text-to-video) with tiny random components: a 1-layer transformer on 8
    latent channels (patch 1 x 1 x 1: one token per latent cell), an LTX-Video VAE (spatial 8x, temporal 8x, as the
    real one's time axis; a non-causal decoder, as LTX-Video 0.9's), a 2-layer T5 encoder,
    FlowMatchEulerDiscreteScheduler."""
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXPipeline,
                           LTXVideoTransformer3DModel)
    from transformers import T5Config, T5EncoderModel
    tok = _tokenizer()
    torch.manual_seed(seed)
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=1, caption_channels=32)
    scaling = (True, True, True, False)
    vae = AutoencoderKLLTXVideo(latent_channels=8, block_out_channels=(8, 8, 8, 8),
                                decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=scaling,
                                decoder_spatio_temporal_scaling=scaling, patch_size=1, patch_size_t=1,
                                encoder_causal=True, decoder_causal=False)
    text = T5EncoderModel(T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                   decoder_start_token_id=0))
    pipe = LTXPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text, tokenizer=tok,
                       transformer=transformer)
    return _ready(pipe)
