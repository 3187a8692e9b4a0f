"""Bending a music model: Stable Audio's family (DiT denoiser, Oobleck VAE, T5 text encoder) through diffusers'
`StableAudioPipeline`, with the same operators, `where` (plus `time:A-B` and `group:G`) and targets as images.

    model   loading the shipped music model, a local folder or a hub id; a tiny random pipeline built in code
    render  render_music / render_music_grid: bent audio, text-to-audio and audio-to-audio; WAV out
    curve   a curve (one value per video frame) -> music bends: each latent frame bent by its own value

Notebook: notebooks/11_bending_music.ipynb
"""

import importlib

_EXPORTS = {"render_music": "render", "render_music_batch": "render", "render_music_grid": "render",
            "Sound": "render", "load_music_pipeline": "model", "tiny_random_pipeline": "model",
            "MusicConfig": "model", "music_config": "model", "music_fingerprint": "model", "MusicBend": "curve",
            "curve_bends": "curve"}
__all__ = list(_EXPORTS)


def __getattr__(name: str):  # imported on first use: the command line's parser does not pay for torch
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
