"""What a bend can act on in a music model (Stable Audio's family), read from its configs with the modules built on
the meta device: no weights load (`bendlab targets --music`).

Notebook: notebooks/11_bending_music.ipynb
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

from ..models.targets import Target
from .model import MusicConfig, resolve_music

DIT_PARTS = ("preprocess_conv", "proj_in", "transformer_blocks", "proj_out", "postprocess_conv")


def music_targets(model: str | os.PathLike | None = None) -> list[Target]:
    """The targets of a music model (None: the shipped one), in the order data flows: the latent (channels, latent
    frames); the text (prompt tokens + Stable Audio's 2 duration tokens, dim; the duration tokens are left alone);
    the DiT's parts and blocks ("unet:..."; shape (tokens, dim): the latent frames plus one global token); each
    block's attention ("attn:...attn1" over time, "attn:...attn2" to the text; shape (queries, keys)); the Oobleck
    decoder's blocks ("vae:decoder.block.K", (channels, samples)). A hub id is loaded to read its configs."""
    import torch
    from diffusers import AutoencoderOobleck, StableAudioDiTModel
    path = resolve_music(model)
    folder = Path(path)
    if not folder.is_dir():
        from .model import load_music_pipeline
        pipe = load_music_pipeline(path)
        dit_config, vae_config, tokens = dict(pipe.transformer.config), dict(pipe.vae.config), \
            pipe.tokenizer.model_max_length
    else:
        dit_config = json.loads((folder / "transformer" / "config.json").read_text())
        vae_config = json.loads((folder / "vae" / "config.json").read_text())
        tokens = json.loads((folder / "tokenizer" / "tokenizer_config.json").read_text()).get("model_max_length", 128)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.*")
        dit = StableAudioDiTModel.from_config(dit_config)
        vae = AutoencoderOobleck.from_config(vae_config)
        config = MusicConfig(int(vae.config.sampling_rate), int(vae.hop_length), int(dit.config.in_channels),
                             int(dit.config.sample_size))
        decoder = _decoder_shapes(vae, config)
    T, inner = config.frames, dit.config.num_attention_heads * dit.config.attention_head_dim
    keys = int(tokens) + 2
    out = [Target("latent", "latent", (config.channels, T)),
           Target("text", "prompt embedding", (keys, dit.config.cross_attention_input_dim))]
    attention = []
    for name, module in dit.named_children():
        if name == "transformer_blocks":
            for i, block in enumerate(module):
                out.append(Target(f"unet:transformer_blocks.{i}", type(block).__name__, (T + 1, inner)))
                attention += [Target(f"attn:transformer_blocks.{i}.attn1", "Attention (self)", (T + 1, T + 1)),
                              Target(f"attn:transformer_blocks.{i}.attn2", "Attention (cross)", (T + 1, keys))]
        elif name in DIT_PARTS:  # what each part outputs, as StableAudioDiTModel.forward uses it
            shape = {"preprocess_conv": (config.channels, T), "proj_in": (T, inner),
                     "proj_out": (T + 1, config.channels), "postprocess_conv": (config.channels, T)}[name]
            out.append(Target(f"unet:{name}", type(module).__name__, shape))
    return out + attention + [Target(f"vae:decoder.block.{i}", "OobleckDecoderBlock", s) for i, s in enumerate(decoder)]


def _decoder_shapes(vae, config: MusicConfig) -> list[tuple]:
    """(channels, samples) of each Oobleck decoder block's output, from one forward on the meta device."""
    import torch
    shapes: dict[int, tuple] = {}
    hooks = [b.register_forward_hook(lambda m, i, o, k=k: shapes.__setitem__(k, tuple(o.shape[1:])))
             for k, b in enumerate(vae.decoder.block)]
    try:
        with torch.no_grad():
            vae.decoder(torch.zeros(1, config.channels, config.frames))
    finally:
        for h in hooks:
            h.remove()
    return [shapes.get(k) for k in range(len(vae.decoder.block))]
