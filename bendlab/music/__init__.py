"""Bending a music model: Stable Audio's family (DiT denoiser, Oobleck VAE, T5 text encoder) through diffusers'
`StableAudioPipeline`, with the same operators, `where` (plus `time:A-B` and `group:G`) and targets as images.

    model   loading the shipped music model, a local folder or a hub id; a tiny random pipeline built in code
    render  render_music / render_music_grid: bent audio, text-to-audio and audio-to-audio; WAV out
    curve   a curve (one value per video frame) -> music bends: each latent frame bent by its own value

Notebook: notebooks/11_bending_music.ipynb
"""

from ..lazy import exports

__all__ = exports(__name__, {
    "render": ("render_music", "render_music_batch", "render_music_grid", "Sound"),
    "model": ("load_music_pipeline", "tiny_random_pipeline", "MusicConfig", "music_config", "music_fingerprint"),
    "curve": ("MusicBend", "curve_bends")})
