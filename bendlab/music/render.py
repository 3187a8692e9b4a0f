"""Rendering bent music: text-to-audio and audio-to-audio on a Stable Audio pipeline, with the image engine's
bends (`bend.hooks.bending`) on the audio family's latent (B, C, T), viewed as (B, C, 1, T).

What a bend means here (the audio family, `models.family.STABLE_AUDIO`):
- target "latent" at layer L in 0..N (N = steps): the latent just before the DiT's evaluation of step L, through
  the pipeline's per-step callback (the bent latent written in place: that pipeline ignores a callback's return);
  layer 0 is the initial noise (audio-to-audio: the noised recording), layer N the latent the VAE decodes;
- point-wise operators act element-wise; the channel operators (rotations, reflections, matrix, rotate6,
  hadamard) act on **every group of 4 latent channels** (channels 4g..4g+3 mixed among themselves:
  `bend.bends.by_groups`); `where="group:G"` keeps one group, "channel:C" one channel, "time:A-B" the latent frames
  that cover seconds A to B of the output, "fraction:P" a seeded fraction; erode / dilate act along time (the
  latent is one row);
- "unet:PATH": a block of the denoiser (the DiT: e.g. "unet:transformer_blocks.3"), at the DiT evaluations of
  steps 0..N-1; "vae:PATH": a block of the Oobleck decoder (e.g. "vae:decoder.block.1"), once, at decode;
  "text": the prompt's embedding (its tokens; Stable Audio's two duration tokens are left alone); "attn:PATH" the
  attention probabilities of a DiT attention module (attn1 over time, attn2 to the prompt: token:WORD selects a
  word's columns), point-wise operators only. Block targets take `where="all"`.

The output is cropped to `seconds` as the pipeline crops it; the latent always spans the model's longest output,
so `time:A-B` must lie within the requested seconds.

Notebook: notebooks/11_bending_music.ipynb
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from ..bend.bends import Bend, as_bends
from ..bend.operators import POINTWISE_OPERATORS
from ..checks import BendlabValueError, check_number
from .model import MusicConfig, load_music_pipeline, music_config

from .defaults import GUIDANCE, SEED, STEPS, WHERE_FORMS
MUSIC_WHERE = ("all", "channel", "group", "fraction", "time")  # what `where` may select in a music latent
MUSIC_TARGETS = ("latent", "unet", "vae", "text", "attn")


@dataclass
class Sound:
    """A rendered sound: `samples` (channels, n) float32 in the model's range (about -1..1), at `sr` Hz."""

    samples: np.ndarray
    sr: int

    @property
    def seconds(self) -> float:
        return self.samples.shape[-1] / self.sr

    @property
    def peak(self) -> float:
        return float(np.abs(self.samples).max()) if self.samples.size else 0.0

    def write(self, path: str | os.PathLike, headroom_db: float = 1.0) -> float:
        """Write a 16-bit WAV; returns the gain applied. A sound whose peak exceeds 1 (it would clip) is scaled to
        peak at -headroom_db dBFS, never clipped: the gain is returned (and `bendlab music` prints it). The file is
        written to a temporary name and renamed, so a half-written WAV never stands under `path`."""
        import soundfile as sf
        path = Path(path)
        if path.suffix.lower() != ".wav":
            raise BendlabValueError(f"output {str(path)!r} is not a .wav file; accepted: a path ending in .wav")
        gain = 1.0 if self.peak <= 1.0 else 10 ** (-headroom_db / 20) / self.peak
        tmp = path.with_name(f".{path.name}.part")
        sf.write(tmp, (self.samples * gain).T, self.sr, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
        return gain

    def _repr_html_(self) -> str:  # a player in a notebook
        from IPython.display import Audio
        return Audio(self.samples, rate=self.sr, normalize=self.peak > 1)._repr_html_()


# ------------------------------------------------------------------------------------------ checks
def check_music(config: MusicConfig, bends: Sequence[Bend], *, seconds: float, steps: int, guidance: float,
                seed: int, strength: float | None = None, batch: int = 1) -> None:
    """One-line errors for a music render that does not fit the model, before any model work: seconds within the
    model's longest output, settings, and each bend's target, where (a time span within the output, a channel or
    group that exists) and layer."""
    from ..bend.fit import check_settings, img2img_layers
    check_number("seconds", seconds, 0, config.max_seconds, low_open=True,
                 accepted=f"0 < seconds <= {config.max_seconds:g} (this model's longest output)")
    check_settings(steps, guidance, seed, strength)
    n = steps if strength is None else img2img_layers(steps, strength)
    shape = (batch, config.channels, 1, config.frames)
    for b in bends:
        if b.kind not in MUSIC_TARGETS:
            raise BendlabValueError(f"target {b.target} is not available for a music model; accepted: latent, "
                                    "unet:<DiT block>, vae:<decoder block>, text, attn:<attention module>")
        if b.kind == "attn" and b.op not in POINTWISE_OPERATORS:
            raise BendlabValueError(f"{b.op} on {b.target}: a music model's attention maps have no image grid; "
                                    f"accepted for its attention: {', '.join(POINTWISE_OPERATORS)}")
        if b.kind == "latent" and b.where.kind not in MUSIC_WHERE:
            raise BendlabValueError(f"where {b.where} selects in an image latent; accepted for music: {WHERE_FORMS}")
        if b.kind in ("unet", "vae") and b.where.kind != "all":
            raise BendlabValueError(f"where {b.where} on {b.target}: a block's output is bent whole; accepted: all")
        if b.where.kind == "time" and b.where.span[1] > seconds + 1e-9:
            raise BendlabValueError(f"where {b.where} ends after the {seconds:g} s output; accepted: a span within "
                                    f"0-{seconds:g}")
        replace(b, where=b.where.at_rate(config.rate)).check(n, shape)


def _with_rate(bends: Sequence[Bend], rate: float) -> list[Bend]:
    return [replace(b, where=b.where.at_rate(rate)) for b in bends]


def check_music_modules(pipe, bends: Sequence[Bend]) -> None:
    """One-line errors for a DiT, attention or VAE path that the loaded model does not have."""
    from ..bend.fit import check_attn_module, check_vae_module
    for b in bends:
        if b.kind == "attn":
            check_attn_module(pipe.transformer, b)
        if b.kind == "unet":
            try:
                pipe.transformer.get_submodule(b.path)
            except AttributeError:
                names = [f"transformer_blocks.{i}" for i in range(len(pipe.transformer.transformer_blocks))]
                raise BendlabValueError(f"the DiT has no module {b.path!r}; accepted: {', '.join(names)}, or "
                                        "proj_in, proj_out (`bendlab targets --music` lists them)") from None
        if b.kind == "vae":
            check_vae_module(pipe.vae, b.path)


# ------------------------------------------------------------------------------------------ rendering
def render_music(prompt: str = "a slow piano phrase", bends=(), *, seconds: float | None = None, steps: int = STEPS,
                 guidance: float = GUIDANCE, seed: int = SEED, negative_prompt: str | None = None,
                 audio=None, strength: float | None = None, model=None, pipe=None) -> Sound:
    """Render `prompt` with `bends` on a music model: one `Sound`.

    prompt:   what to play ("a high bell", "a fast drum loop", ...)
    bends:    a Bend, dict or list of them (see the module docstring for what each target and where means)
    seconds:  the output's length, s (default: the model's longest output)
    steps:    denoising steps N; layers are 0..N
    guidance: classifier-free guidance scale (<= 1: off)
    seed:     the initial noise's seed
    audio:    audio-to-audio: a recording (a file path, or a (samples,) / (channels, samples) array at the model's
              rate), encoded by the VAE and noised to layer N - int(N strength), then denoised with the bends
    strength: audio-to-audio only: 0 < strength < 1, how much of the recording is re-imagined
    model / pipe: the music model (`load_music_pipeline`'s argument), or a loaded StableAudioPipeline
    """
    return render_music_batch([prompt], bends, seconds=seconds, steps=steps, guidance=guidance, seed=seed,
                              negative_prompt=negative_prompt, audio=audio, strength=strength, model=model,
                              pipe=pipe)[0]


def render_music_batch(prompts: Sequence[str], bends=(), *, seconds: float | None = None, steps: int = STEPS,
                       guidance: float = GUIDANCE, seed: int = SEED, negative_prompt: str | None = None,
                       audio=None, strength: float | None = None, model=None, pipe=None) -> list[Sound]:
    """Render a batch in one pipeline call: one prompt per item (the same seed's noise for each), and a bend's
    parameter may be one value per item (a list or (B,) tensor), as for images. Returns one `Sound` per prompt."""
    bends = as_bends(bends)
    if isinstance(prompts, str) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise BendlabValueError(f"prompts {prompts!r:.60} are not a non-empty list of strings")
    if (audio is None) != (strength is None):
        raise BendlabValueError("audio-to-audio needs both audio= (a recording) and strength= (0..1); accepted: "
                                "both, or neither for text-to-audio")
    config = MusicConfig.of(pipe) if pipe is not None else music_config(model)
    seconds = config.max_seconds if seconds is None else seconds
    check_music(config, bends, seconds=seconds, steps=steps, guidance=guidance, seed=seed, strength=strength,
                batch=len(prompts))
    wave = None if audio is None else _recording(audio, config.sampling_rate)
    pipe = pipe if pipe is not None else load_music_pipeline(model)
    check_music_modules(pipe, bends)
    bends = _with_rate(bends, config.rate)
    return _call(pipe, list(prompts), bends, seconds, steps, guidance, seed, negative_prompt, wave, strength)


def render_music_grid(prompt: str, bends: Sequence, *, share: bool = True, **kwargs) -> list[Sound]:
    """One render per entry of `bends` (each a Bend, a dict, a list of them, or None for no bend), same prompt and
    seed: the sound counterpart of the paper's operator grids. Keyword arguments as `render_music`; the pipeline
    is loaded once.

    share: the DiT evaluations before the first step any entry bends are computed once (`shared_steps`) and
    replayed into the other renders (`_replaying`): every render is bit-identical to an independent one (the same
    inputs give the same outputs), and a sweep at layer L of N costs about N + (K - 1)(N - L) DiT calls for K
    entries instead of K N."""
    if kwargs.get("pipe") is None:
        kwargs["pipe"] = load_music_pipeline(kwargs.pop("model", None))
    entries = [as_bends(() if b is None else b) for b in bends]
    shared = shared_steps(entries, kwargs.get("steps", STEPS)) if share and "audio" not in kwargs else 0
    if not shared or len(entries) < 2:
        return [render_music(prompt, b, **kwargs) for b in entries]
    recorded: list = []
    with _replaying(kwargs["pipe"].transformer, recorded, shared, record=True):
        out = [render_music(prompt, entries[0], **kwargs)]
    for b in entries[1:]:
        with _replaying(kwargs["pipe"].transformer, recorded, shared, record=False):
            out.append(render_music(prompt, b, **kwargs))
    return out


def shared_steps(entries: Sequence[Sequence[Bend]], steps: int) -> int:
    """How many DiT evaluations (steps 0..S-1) come before every entry's first bend: a latent bend at layer L acts
    before evaluation L, a DiT, attention or text bend at step s during evaluation s, a VAE bend after them all."""
    first = steps
    for bends in entries:
        for b in bends:
            if b.kind != "vae" and b.layers:
                first = min(first, min(b.layers))
    return first


@contextlib.contextmanager
def _replaying(dit, recorded: list, shared: int, record: bool):
    """The DiT's first `shared` evaluations in the next pipeline call: recorded (their outputs appended to
    `recorded`), or replayed from it without computing them; later evaluations run as usual."""
    original = dit.forward
    calls = [0]

    def forward(*args, **kwargs):
        i = calls[0]
        calls[0] += 1
        if i >= shared:
            return original(*args, **kwargs)
        if record:
            out = original(*args, **kwargs)
            recorded.append(out)
            return out
        return recorded[i]

    dit.forward = forward
    try:
        yield
    finally:
        del dit.forward  # the class's forward again


def _recording(audio, sr: int) -> np.ndarray:
    """A recording as (channels, samples) float32 at `sr` Hz: a file is decoded and resampled (mono), an array is
    taken as it is (at the model's rate)."""
    if isinstance(audio, (str, os.PathLike)):
        import librosa
        from ..audio.signal import AUDIO_SUFFIXES
        from ..checks import check_input_file
        path = check_input_file("audio", audio, AUDIO_SUFFIXES)
        return librosa.load(path, sr=sr, mono=True)[0][None].astype(np.float32)  # at the model's rate, any rate
    wave = np.asarray(audio, dtype=np.float32)
    if wave.ndim == 1:
        wave = wave[None]
    if wave.ndim != 2 or not wave.size or not np.isfinite(wave).all():
        raise BendlabValueError(f"audio of shape {wave.shape} is not a finite (samples,) or (channels, samples) "
                                f"array; accepted: a recording at {sr} Hz, or a path to an audio file")
    return wave


def _call(pipe, prompts, bends, seconds, steps, guidance, seed, negative_prompt, wave, strength) -> list[Sound]:
    """One pipeline call with the bends installed (`bend.hooks.bending`, the image engine's)."""
    import torch
    from ..bend.fit import img2img_layers
    from ..bend.hooks import _patched, bending
    start, latents = 0, None
    g = torch.Generator().manual_seed(seed)
    if wave is not None:  # layers count the steps run (0..n), as in image-to-image; the engine counts from start
        start = steps - img2img_layers(steps, strength)
        latents = _noised_recording(pipe, wave, len(prompts), steps, start, g)
        bends = [b if b.layer is None else replace(b, layer=_shifted(b.layer, start)) for b in bends]
    with contextlib.ExitStack() as stack:
        stack.enter_context(_patched(pipe, "do_classifier_free_guidance", guidance > 1))  # the text bend reads it
        cb = stack.enter_context(bending(pipe, bends, start=start, prompts=prompts))
        stack.enter_context(warnings.catch_warnings())
        # torchsde's Brownian tree warns when the sampler asks for a time a rounding error outside its interval
        warnings.filterwarnings("ignore", message="Should have (ta|tb)", category=UserWarning)
        with torch.no_grad():
            out = pipe(prompt=prompts, negative_prompt=negative_prompt and [negative_prompt] * len(prompts),
                       audio_end_in_s=seconds, num_inference_steps=steps, guidance_scale=guidance, generator=g,
                       latents=latents, callback=cb.step_callback, output_type="pt")
    audios = out.audios.float().cpu().numpy()
    return [Sound(a, int(pipe.vae.sampling_rate)) for a in audios]


def _shifted(layer, start: int):
    return (layer[0] + start, layer[1] + start) if isinstance(layer, tuple) else layer + start


def _noised_recording(pipe, wave: np.ndarray, batch: int, steps: int, start: int, g):
    """The recording's latent at layer `start` of `steps`: the VAE's mean encoding of the recording (padded or cut
    to the model's length) plus the scheduler's noise level at that step times seeded noise."""
    import torch
    n = int(pipe.transformer.config.sample_size) * int(pipe.vae.hop_length)
    channels = int(pipe.vae.config.audio_channels)
    x = torch.zeros(1, channels, n)
    w = torch.from_numpy(wave[:, :n])
    x[..., :w.shape[-1]] = w.mean(0, keepdim=True) if channels == 1 else w.expand(channels, -1)
    dtype = pipe.transformer.dtype
    with torch.no_grad():
        z = pipe.vae.encode(x.to(pipe.device, pipe.vae.dtype)).latent_dist.mean.to(dtype)
    pipe.scheduler.set_timesteps(steps, device=pipe.device)
    sigma = pipe.scheduler.sigmas[start].to(pipe.device, dtype)
    noise = torch.randn(z.shape, generator=g).to(pipe.device, dtype)
    return (z + sigma * noise).repeat(batch, 1, 1)
