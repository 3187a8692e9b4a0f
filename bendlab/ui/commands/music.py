"""`bendlab music`: bent music from a music model (`music.render`): one WAV, or a sweep of the parameter."""

from __future__ import annotations

from ...music import defaults
from .common import CLIError, parse_layer, parse_param


def add_parser(sub) -> None:
    m = sub.add_parser("music", help="render bent music (a WAV) from a music model",
                       description="Render a prompt on a music model (the shipped bendlab-tiny-music, or Stable "
                       "Audio Open's family) with a bend on its latent (channels x time), a DiT block, the VAE "
                       f"decoder or the text ({defaults.STEPS} steps, guidance {defaults.GUIDANCE:g}, seed "
                       f"{defaults.SEED}). The channel operators act on every group of 4 latent channels.")
    m.add_argument("prompt", help="text prompt, e.g. \"a slow piano phrase\"")
    g = m.add_argument_group("bend (one)")
    g.add_argument("--op", metavar="OP", help="operator, as `bendlab operators` lists (not the attn_* ones)")
    g.add_argument("--param", type=parse_param, help="the operator's r (radians for rotations, kernel size in "
                   "latent frames for erode/dilate, ...)")
    g.add_argument("--layer", type=parse_layer, help="denoising step 0..steps at which the latent is bent, or "
                   "FIRST-LAST (default 0)")
    g.add_argument("--where", help=f"what part of the latent: {defaults.WHERE_FORMS} (default all)")
    g.add_argument("--norm", help="mean-normalise along channel | row | column after the operator")
    g.add_argument("--target", help="latent (default), unet:BLOCK (a DiT block, e.g. unet:transformer_blocks.1), "
                   "vae:BLOCK (an Oobleck decoder block, e.g. vae:decoder.block.1) or text (`bendlab targets "
                   "--music` lists them)")
    g.add_argument("--sweep", type=parse_param, metavar="V1,V2,...",
                   help="render once per parameter value (OUT-1.wav, OUT-2.wav, ...) and draw their spectrograms "
                   "in OUT.png")
    g = m.add_argument_group("render")
    g.add_argument("--seconds", type=float, help="length of the output in seconds (default: the model's longest)")
    g.add_argument("--steps", type=int, default=defaults.STEPS, help=f"denoising steps (default {defaults.STEPS})")
    g.add_argument("--guidance", type=float, default=defaults.GUIDANCE,
                   help=f"classifier-free guidance (default {defaults.GUIDANCE:g})")
    g.add_argument("--seed", type=int, default=defaults.SEED, help=f"noise seed (default {defaults.SEED})")
    g.add_argument("--negative", help="negative prompt (default none)")
    g.add_argument("--audio", help="audio-to-audio: bend your own recording (wav, flac, ogg, mp3), re-imagined by "
                   "--strength")
    g.add_argument("--strength", type=float, help=f"audio-to-audio strength, 0 < s < 1 (default "
                   f"{defaults.STRENGTH:g}; layers then count the steps run, about strength x steps)")
    g.add_argument("--model", help="music model: a diffusers StableAudioPipeline folder or hub id (default: the "
                   "shipped bendlab-tiny-music; e.g. stabilityai/stable-audio-open-1.0 on a GPU)")
    g.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda if available)")
    g.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    m.add_argument("--out", required=True, help="output WAV (its folder must exist)")
    m.set_defaults(func=run)


def run(a) -> None:
    from ...bend.bends import Bend
    from ...files import check_output
    from ...music.render import render_music, render_music_grid
    from .common import setup_device
    out = check_output(a.out, (".wav",))
    if a.op is None and (a.param is not None or a.sweep is not None):
        raise CLIError("--param and --sweep need --op (the operator they set)")
    if a.param is not None and a.sweep is not None:
        raise CLIError("--param and --sweep both set the parameter; accepted: one of them")
    strength = a.strength if a.strength is not None or a.audio is None else defaults.STRENGTH
    if a.strength is not None and a.audio is None:
        raise CLIError("--strength needs --audio (the recording it re-imagines)")
    setup_device(a)
    kw = dict(seconds=a.seconds, steps=a.steps, guidance=a.guidance, seed=a.seed, negative_prompt=a.negative,
              audio=a.audio, strength=strength, model=a.model)
    bend = dict(layer=a.layer, where=a.where, norm=a.norm, target=a.target)
    bend = {k: v for k, v in bend.items() if v is not None}
    if a.sweep is None:
        bends = [Bend(a.op, **({"param": a.param} if a.param is not None else {}), **bend)] if a.op else []
        sound = render_music(a.prompt, bends, **kw)
        gain = sound.write(out)
        print(f"wrote {out} ({sound.seconds:.2f} s at {sound.sr} Hz; {len(bends)} bend(s)"
              f"{_gain_text(gain, sound.peak)})")
        return
    values = a.sweep if isinstance(a.sweep, list) else [a.sweep]
    sounds = render_music_grid(a.prompt, [Bend(a.op, v, **bend) for v in values], **kw)
    for i, (v, s) in enumerate(zip(values, sounds), 1):
        path = out.with_name(f"{out.stem}-{i}{out.suffix}")
        gain = s.write(path)
        print(f"wrote {path} ({a.op} {v:g}; {s.seconds:.2f} s{_gain_text(gain, s.peak)})")
    from ..plots import spectrogram_grid
    png = out.with_suffix(".png")
    spectrogram_grid(sounds, [f"{a.op} {v:g}" for v in values], path=png)
    print(f"wrote {png} (their spectrograms)")


def _gain_text(gain: float, peak: float) -> str:
    return "" if gain == 1 else f"; peak {peak:.2f} > 1, scaled by {gain:.2f}: nothing clipped"
