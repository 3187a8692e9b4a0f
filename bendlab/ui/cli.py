"""The `bendlab` command line: render bent images, audio-reactive video, and the audio features behind it.

    bendlab render "a floating orb" --op add --param 1 --layer 40 --out orb.png
    bendlab render "a floating orb" --recipe bends.toml --out orb.png
    bendlab video song.wav --op rotate1 --feature lfo:0.25 --layer 40 --out song.mp4
    bendlab features song.wav --out features.csv --plot features.png
    bendlab operators
    bendlab targets --model path/to/diffusers-folder
"""

from __future__ import annotations

import argparse
import re
import sys

from .. import models
from ..bend import operators
from ..bend.bends import Bend
from ..video.cluster import WORKER_THREADS, ClusterError
from ..video.folder import IMAGE_SUFFIXES
from .recipe import merge, read_render, read_video

LAYERS_HELP = ("denoising step the bend acts before, 0..STEPS (0 = initial noise, STEPS = final latent before "
               "decoding; 49 = before the last of 50 steps); 'A-B' for an inclusive range")
WHERE_HELP = ("where in the latent: all | row:I | column:I | channel:C (0..3) | fraction:P[:seed=S] with 0 < P <= 1 "
              "(e.g. fraction:0.05, the paper's 5%% of the features) | region:X0,Y0,X1,Y1 in [0, 1], top-left origin; "
              "for --target text: all | token:I (0 = start token) | token:WORD (the tokens of a word of the prompt)")


class CLIError(ValueError):
    """A bad input, reported as one line."""


class Parser(argparse.ArgumentParser):
    """argparse that reads any number as a value, not an option: `--param -inf`, `--range -1e3 5`
    (argparse alone takes only -1 and -1.5 as numbers)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        number = r"(\d+\.?\d*(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?|inf(inity)?|nan)"
        # a number, or comma-separated numbers (--param -1,0,0,1) whose first is negative
        self._negative_number_matcher = re.compile(rf"^-{number}(\s*,\s*-?{number})*$", re.I)

    def error(self, message):
        """One line, as for every other bad input (argparse alone prints the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_layer(s: str) -> int | tuple[int, int]:
    try:
        if "-" in s.strip("-"):
            a, b = s.split("-")
            return int(a), int(b)
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"layer {s!r} is not an integer or a range A-B") from None


def parse_param(s: str) -> float | list[float]:
    """--param: one number, or comma-separated numbers for the operators with several parameters (matrix: 16
    row by row, rotate6: 6 angles); how many an operator takes is checked by `Bend` (one source)."""
    try:
        vals = [float(v) for v in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"parameter {s!r} is not a number or comma-separated numbers "
                                         "(e.g. 1.5, or 1,0,0,0,0,1,0,0,0,0,1,0,0,0,0,1 for matrix)") from None
    return vals[0] if len(vals) == 1 else vals


def given(a, names) -> dict:
    """The flags among `names` that were given (argparse defaults are None: the library holds the defaults)."""
    return {n: getattr(a, n) for n in names if getattr(a, n) is not None}


def add_model_args(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("model")
    g.add_argument("--model", help="diffusers folder or hub id of SD v1.x/2.x or SDXL (default: the shipped offline "
                   f"model {models.DEFAULT_MODEL}; e.g. CompVis/stable-diffusion-v1-4 on a GPU)")
    g.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda if available)")
    g.add_argument("--threads", type=int, help=f"torch CPU threads, 1..{models.available_cpus()} (default: torch's "
                   f"choice; on Ray CPU workers, {WORKER_THREADS} each: frames then do not depend on the number of "
                   "workers)")
    g.add_argument("--seed", type=int, help="seed of the initial noise, 0..2**63-1 (default 46, as the paper)")
    g.add_argument("--steps", type=int, help="denoising steps, 1..1000 (default: the model's usual count: 50 "
                   "with DDIM as the paper, 4 for an LCM model, 1 for a Turbo model)")
    g.add_argument("--guidance", type=float, help="classifier-free guidance scale >= 0 (default: the model's usual: "
                   "7.5 as the paper, 0 for a Turbo model)")


def add_bend_args(ap: argparse.ArgumentParser, param_help: str) -> None:
    g = ap.add_argument_group("bend (one; use --recipe for several)")
    g.add_argument("--op", choices=list(operators.OPERATORS), metavar="OP",
                   help="operator: " + "; ".join(f"{k}: {v}" for k, v in operators.FORMULAS.items()))
    g.add_argument("--param", type=parse_param, help=param_help)
    g.add_argument("--layer", type=parse_layer, help=LAYERS_HELP + " (default 0)")
    g.add_argument("--where", help=WHERE_HELP + " (default all)")
    g.add_argument("--norm", choices=list(operators.NORM_DIMS),
                   help="mean-normalise along channel | row | column after the operator (the paper's morphology)")
    g.add_argument("--module", help="bend this UNet block's output instead of the latent, e.g. mid_block, "
                   "up_blocks.1 (Broad et al.'s network bending); the same as --target unet:NAME")
    g.add_argument("--target", help="what the bend acts on: latent (default), unet:MODULE (as --module), "
                   "vae:MODULE, a block of the VAE decoder bent once when it decodes, e.g. vae:decoder.up_blocks.1 "
                   "(`bendlab targets` lists them), text, the prompt embedding (point-wise operators only), or "
                   "attn:MODULE, the attention probabilities of an attention module, e.g. "
                   "attn:down_blocks.2.attentions.0.transformer_blocks.0.attn2 (attn1 self, attn2 cross-attention; "
                   "--where all, or token:I / token:WORD for attn2; point-wise operators and attn_rotate, "
                   "attn_translate, attn_flip, attn_blur on each token's map; rows renormalised to sum to 1)")
    g.add_argument("--recipe", help="TOML or YAML file: settings and a list of [[bend]] tables with keys op, param, "
                   "layer, where, norm, module, target (flags given here override the recipe)")


def _setup(a) -> None:
    models.check_device(a.device)
    if models.check_threads(a.threads):
        import torch
        torch.set_num_threads(a.threads)


def cmd_render(a) -> None:
    from ..bend.render import render
    from ..files import check_output, save_atomic
    out = check_output(a.out, IMAGE_SUFFIXES)
    recipe = read_render(a.recipe) if a.recipe else {}
    bends = recipe.pop("bends", [])
    if a.op:
        if a.param is None and a.op not in ("reflect",) + operators.NO_PARAM_OPERATORS:
            raise CLIError(f"--op {a.op} needs --param (r: {operators.FORMULAS[a.op]})")
        bends.append(Bend(a.op, **given(a, ("param", "layer", "where", "norm", "module", "target"))))
    settings = merge(recipe, {"prompt": a.prompt, "negative_prompt": a.negative, "model": a.model, "seed": a.seed,
                              "steps": a.steps, "guidance": a.guidance, "init_image": a.init_image,
                              "strength": a.strength})
    if "prompt" not in settings:
        raise CLIError("no prompt: give one as the first argument or as prompt = \"...\" in the recipe")
    _setup(a)
    img = render(bends=bends, device=a.device, **settings)
    save_atomic(img, out)  # never a half-written image under the final name
    print(f"wrote {out} ({img.width}x{img.height}; {len(bends)} bend(s))")


MAPPING_FLAGS = ("feature", "op", "layer", "where", "norm", "scaling", "clip", "gate", "threshold", "ratio", "curve",
                 "attack", "release", "median", "target")
SPEC_FLAGS = ("method", "walk", "fps", "steps", "guidance", "seed", "strength", "img2img_prompt", "color_coherence",
              "img2img_noise", "flow", "init_image",
              "model", "batch", "midi")


def mapping_from_args(a):
    """The Mapping of the mapping flags (`video` and `features` alike), or None without --op; mapping flags
    given without --op are refused (they would be dropped: there is no mapping for them to shape)."""
    from ..mapping import Mapping
    if a.op is None:
        stray = [n for n in MAPPING_FLAGS + ("range",) if n != "op" and getattr(a, n) is not None]
        if stray:
            raise CLIError(f"{', '.join('--' + n for n in sorted(stray))} given without --op; accepted: --op OP "
                           "with the mapping flags, or [[mapping]] tables in --recipe")
        return None
    return Mapping(**given(a, MAPPING_FLAGS), **({"low": a.range[0], "high": a.range[1]} if a.range else {}))


def video_spec_from_args(a):
    """A VideoSpec from the flags given, then the recipe ([[mapping]] tables and settings), then the defaults;
    with --session, the flags given, then the recipe's settings, then the session's (`videospec.session_spec`)."""
    from ..video.spec import VideoSpec, parse_keyframe, session_spec
    recipe = read_video(a.recipe) if a.recipe else {}
    if a.session is not None:  # the mappings and the prompt at each moment are the session's
        stray = [n for n in MAPPING_FLAGS + ("range", "keyframe") if getattr(a, n) is not None]
        if stray or recipe.pop("mappings", None):
            raise CLIError(f"{', '.join('--' + n for n in sorted(stray)) or '[[mapping]] in --recipe'} given with "
                           "--session; accepted: the session's recorded mappings and prompt changes (settings "
                           "such as --steps, --model, --fps, --prompts with as many prompts)")
        prompts = ([a.prompt] if a.prompt else []) + list(a.prompts or [])
        return session_spec(a.session, **merge(recipe, {**given(a, SPEC_FLAGS), "audio": a.audio,
                                                        "prompts": prompts or None}))
    mappings = recipe.pop("mappings", [])
    m = mapping_from_args(a)
    if m is not None:
        mappings.append(m)
    if not mappings:
        raise CLIError("no mapping: give --op (with --feature, --range, --layer) or [[mapping]] in --recipe")
    flags = given(a, SPEC_FLAGS)
    if a.keyframe and (a.prompt or a.prompts):
        raise CLIError("--keyframe gives the prompts (one at each time), so --prompt / --prompts would be dropped; "
                       "accepted: --keyframe 'M:SS PROMPT' for every prompt, or --prompt / --prompts without "
                       "--keyframe")
    if a.prompt or a.prompts:
        flags["prompts"] = ([a.prompt] if a.prompt else []) + list(a.prompts or [])
    if a.keyframe:
        pairs = [parse_keyframe(k) for k in a.keyframe]
        flags["keyframes"], flags["prompts"] = [t for t, _ in pairs], [p for _, p in pairs]
    if "prompts" in flags and "keyframes" not in flags:
        recipe.pop("keyframes", None)  # the recipe's times belong to the recipe's prompts
    return VideoSpec(audio=a.audio, **merge(recipe, {**flags, "mappings": mappings}))


def cmd_video(a) -> None:
    from ..video.make import make_video
    from ..video.mux import video_info
    spec = video_spec_from_args(a)
    ray = a.workers is not None or a.ray_address is not None
    if not ray:
        _setup(a)
    kw = given(a, ("preview", "upscale", "interpolate", "interpolate_method"))
    if ray:
        from ..video.cluster import RaySource
        kw["source"] = RaySource(a.workers, a.ray_address, a.threads, a.device, stop=True)
    else:
        kw["device"] = a.device
    try:
        out = make_video(spec, a.out, overwrite=a.overwrite, **kw)
    finally:
        if ray:  # begun once the frames were done (RaySource stop): left to the exit, it takes seconds longer
            from ..video.cluster import shutdown
            shutdown()
    info = video_info(out)
    streams = f"{'h264' if info['video'] else 'no video'} + {'aac' if info['audio'] else 'no audio'}"
    print(f"wrote {out}: {info['frames']} frames, video {info['video_duration']:.2f} s, "
          f"file {info['duration']:.2f} s{' (preview)' if a.preview is not None else ''}, streams: {streams}")


def cmd_features(a) -> None:
    from .. import audio
    from .plots import plot_curves
    from ..files import check_output, savefig_atomic
    from ..video.spec import VideoSpec
    out = check_output(a.out, (".csv",))
    plot = check_output(a.plot, (".png", ".pdf", ".svg")) if a.plot else None
    fields = VideoSpec.__dataclass_fields__
    # the rules `video` applies to the same values (a flag given is checked, never replaced by the default)
    fps = audio.check_fps(a.fps if a.fps is not None else fields["fps"].default)
    sr = audio.check_sr(a.sr if a.sr is not None else fields["sr"].default)
    mappings = read_video(a.recipe)["mappings"] if a.recipe else []
    m = mapping_from_args(a)
    if m is not None:
        mappings.append(m)
    audio.check_sources([m.feature for m in mappings], a.midi)  # before the analysis
    feats = audio.audio_features(a.audio, fps, sr, a.midi)
    defaults, left_out = feats.default_names()
    table_names = list(dict.fromkeys(defaults + [m.feature for m in mappings]))
    audio.write_csv(feats, out, table_names)
    if left_out:
        print(f"note: {', '.join(left_out)} left out: a {feats.n_frames}-frame track has no such principal component")
    print(f"tempo: {feats.tempo:.1f} BPM")
    print(f"wrote {out}: {feats.n_frames} frames x {len(table_names)} features at {feats.fps:g} fps")
    if plot:
        savefig_atomic(plot_curves(feats, mappings), plot, dpi=110)
        print(f"wrote {plot}")


def cmd_operators(a) -> None:
    for k, v in operators.FORMULAS.items():
        lo, hi = operators.PARAM_RANGES[k]
        n = operators.N_PARAMS.get(k)
        typical = "no parameter" if k in operators.NO_PARAM_OPERATORS else \
            f"{n} values, each typically {lo:g} .. {hi:g}" if n else f"typical r: {lo:g} .. {hi:g}"
        print(f"{k:10s} {v:45s} {typical}")


def cmd_targets(a) -> None:
    targets = models.bend_targets(a.model)
    print(f"{'target':40s} {'what':26s} {'shape':12s} status")
    headers = {"conv_in": "UNet modules (Bend(..., module=NAME), --module NAME; any deeper dotted child of these is "
                          "accepted too):",
               "vae:": "VAE decoder (Bend(..., target=NAME), --target NAME; bent once, when the VAE decodes):",
               "attn:": "UNet attention probabilities (Bend(..., target=NAME), --target NAME; attn1 self, attn2 "
                        "cross: query tokens x key tokens):"}
    for t in targets:
        for start, header in list(headers.items()):
            if t.name.startswith(start):
                print(header)
                del headers[start]
        path = t.name.removeprefix("vae:decoder.")
        indent = "" if path.startswith("attn:") else "  " * (path.count(".") // 2)  # a block's parts under it
        shape = "x".join(map(str, t.shape)) if t.shape else "?"
        status = ("bendable (default)" if t.name == "latent" else "bendable") if t.bendable else "(planned)"
        print(f"{indent + t.name:40s} {t.kind:26s} {shape:12s} {status}")


LIVE_FLAGS = ("fps", "steps", "guidance", "seed", "model", "halflife", "soundcheck", "bpm")


def cmd_live(a) -> None:
    """`bendlab live`: list devices or ports, or check every flag, load the model and play until stopped."""
    from ..live import audio_in as audioin, control
    from ..live.loop import Live, LiveSpec, check_seconds
    if a.list_devices or a.list_midi:
        if a.list_devices:
            print(audioin.list_devices())
        if a.list_midi:
            ports = control.list_midi()
            print("\n".join(ports) if ports else "no MIDI input ports (is a MIDI or JACK server running?)")
        return
    if a.play is not None and a.input_device is not None:
        raise CLIError("--play and --input-device both given; accepted: one audio input (--play FILE plays a file "
                       "to --output-device and analyses it; --input-device captures a device)")
    check_seconds(a.seconds)
    m = mapping_from_args(a)
    spec = LiveSpec(prompts=([a.prompt] if a.prompt else []) + list(a.prompts or []) or LiveSpec().prompts,
                    mappings=[m] if m is not None else LiveSpec().mappings, **given(a, LIVE_FLAGS))
    _setup(a)
    import warnings
    warnings.formatwarning = lambda message, *args, **kwargs: f"bendlab live: warning: {message}\n"
    sr = spec.sr
    source = audioin.Player(a.play, sr, a.output_device) if a.play is not None else \
        audioin.Microphone(a.input_device, sr)
    session = Live(spec, source, device=a.device, record=a.record, midi_in=a.midi_in, cc=a.cc or (), osc=a.osc,
                   serve=a.serve)
    print(f"live: {spec.prompts[0]!r}, {session.spec.steps} steps, " + ", ".join(
        f"{mp.feature} -> {mp.op} {mp.low:g}..{mp.high:g} at layer {mp.layer}" for mp in session.spec.mappings) +
        f"; input: {a.play or a.input_device or 'the default input'}" +
        (f"; recording into {a.record}/" if a.record else "") + "; Ctrl-C stops", flush=True)
    reason = session.run(a.seconds)
    print(session.stats.line(spec.fps) + f"; stopped: {reason}", flush=True)
    if a.record:
        print(f"session in {a.record}/: re-render it with bendlab video --session {a.record} --out OUT.mp4")
    if reason not in ("stopped", "seconds", "end of file"):
        raise CLIError(f"{reason}; the session folder is complete up to there" if a.record else reason)


def add_mapping_args(g) -> None:
    """The flags of one audio -> parameter mapping (bendlab.mapping.Mapping), for `video` and `features`."""
    from ..audio.features import FEATURES, PARAMETRIC
    from ..mapping import SCALINGS, Mapping
    m = Mapping()
    g.add_argument("--op", choices=list(operators.OPERATORS), metavar="OP",
                   help="operator driven by the audio: " + ", ".join(operators.OPERATORS))
    g.add_argument("--layer", type=int, help="layer 0..STEPS (default: 40 of 50 as the paper, at the same depth for "
                   "other step counts: 3 of 4, 1 of 1)")
    g.add_argument("--feature", metavar="F", help="audio feature: " + ", ".join(FEATURES + PARAMETRIC) +
                   ", embed16 (16 values a frame, for --op matrix: the identity plus each value scaled into --range)"
                   f", each optionally @harmonic, @percussive or @STEM.wav (default {m.feature})")
    g.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"),
                   help=f"parameter range the feature is scaled into (default {m.low:g} {m.high:.6g} = 0..2 pi)")
    g.add_argument("--where", help=WHERE_HELP)
    g.add_argument("--norm", choices=list(operators.NORM_DIMS), help="mean-normalise after the operator")
    g.add_argument("--target", help="what the bend acts on: latent (default), unet:MODULE or vae:MODULE (a VAE "
                   "decoder block, bent as each frame decodes), e.g. vae:decoder.up_blocks.1, or attn:MODULE (an "
                   "attention module's probabilities, e.g. attn:mid_block.attentions.0.transformer_blocks.0.attn2; "
                   "`bendlab targets` lists them)")
    g.add_argument("--scaling", choices=SCALINGS, help="normalise the feature over the track by min-max or "
                   f"between the --clip percentiles (default {m.scaling})")
    g.add_argument("--clip", nargs=2, type=float, metavar=("P_LOW", "P_HIGH"),
                   help=f"percentiles for --scaling percentile (default {m.clip[0]:g} {m.clip[1]:g})")
    g.add_argument("--gate", type=float, help=f"normalised level 0..1 below which the feature is 0 "
                   f"(default {m.gate:g})")
    g.add_argument("--threshold", type=float, help="compressor threshold, normalised level 0..1 (default 1: off)")
    g.add_argument("--ratio", type=float, help=f"compressor ratio >= 1 above the threshold (default {m.ratio:g})")
    g.add_argument("--curve", type=float, help=f"exponent after normalising, > 0 (default {m.curve:g})")
    g.add_argument("--attack", type=float, help=f"envelope attack time, s >= 0 (default {m.attack:g})")
    g.add_argument("--release", type=float, help=f"envelope release time, s >= 0 (default {m.release:g})")
    g.add_argument("--median", type=int, help=f"running median over this many frames, odd >= 1 (default {m.median})")


def build_parser() -> argparse.ArgumentParser:
    from ..video.coherence import COHERENCE
    from ..video.mux import DEFAULT_UPSCALE, MAX_UPSCALE
    from ..video.tween import DEFAULT_METHOD as TWEEN_DEFAULT, METHODS as TWEEN_METHODS
    from ..paper import DEFAULT_PROMPT
    from ..video.spec import METHODS, WALKS, VideoSpec
    v_ = VideoSpec.__dataclass_fields__
    ap = Parser(prog="bendlab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("render", help="render one bent image", description="Render a prompt with bends applied "
                       "to the latent at chosen denoising steps (DDIM, seed 46, 50 steps, guidance 7.5). "
                       "A flag given here overrides the recipe, which overrides the default.")
    r.add_argument("prompt", nargs="?", help="text prompt, e.g. \"a floating orb\"")
    add_bend_args(r, "the operator's r: scalar for add/multiply/threshold/gate, r != 0 for invert, angle in "
                  "radians for rotate1-4, channel 0..3 for reflect, kernel size >= 1 for erode/dilate; "
                  "comma-separated for several: 16 for matrix (row by row), 6 angles for rotate6; none for "
                  "hadamard")
    add_model_args(r)
    r.add_argument("--negative", help="negative prompt (default none)")
    r.add_argument("--init-image", help="image-to-image from this picture (layers then count the steps actually "
                   "run, about strength x steps)")
    r.add_argument("--strength", type=float, help="image-to-image strength, 0 < s < 1 (default 0.5)")
    r.add_argument("--out", required=True, help=f"output image ({', '.join(IMAGE_SUFFIXES)}; its folder must exist)")
    r.set_defaults(func=cmd_render)
    v = sub.add_parser("video", help="render an audio-reactive video", description="Audio features of each "
                       "frame's window of audio drive a bend's parameter; frames are written as they finish into "
                       "<out>.frames/ (run again to resume) and muxed with the audio into an H.264 + AAC mp4. "
                       "A flag given here overrides the recipe, which overrides the default.")
    v.add_argument("audio", nargs="?", help="wav, flac, ogg or mp3 file (none with --session)")
    v.add_argument("--session", metavar="DIR", help="re-render a performance recorded by `bendlab live --record "
                   "DIR`: its recorded parameters, prompts and layers (interpolated on the audio clock, not "
                   "re-analysed) and its audio.wav; the session's model, steps, seed and fps unless given (another "
                   "--steps carries the layers to the same relative depth)")
    v.add_argument("--prompt", help=f"text prompt (default \"{DEFAULT_PROMPT}\")")
    v.add_argument("--prompts", nargs="+", help="two or more prompts interpolated in text-embedding space from the "
                   "first frame to the last")
    v.add_argument("--keyframe", action="append", metavar="'M:SS PROMPT'",
                   help="a prompt at a time, repeatable (e.g. '0:00 a floating orb' '0:05 a gorgeous landscape'); "
                   "prompts are interpolated between keyframes")
    g = v.add_argument_group("mapping (one; use --recipe with [[mapping]] tables for several)")
    add_mapping_args(g)
    g.add_argument("--recipe", help="TOML/YAML with [[mapping]] tables (keys of bendlab.mapping.Mapping) and any "
                   "VideoSpec setting (flags given here override the recipe)")
    f = v.add_argument_group("frames")
    f.add_argument("--method", choices=METHODS, help="txt2img: sin/cos noise walk; img2img: each frame from the "
                   f"previous one (default {v_['method'].default})")
    f.add_argument("--walk", choices=WALKS, help="txt2img noise: A sin + B cos (paper), or authors: seed noise + "
                   f"0.3 x the walk (default {v_['walk'].default})")
    f.add_argument("--strength", type=float, help=f"img2img strength, 0 < s < 1 (default {v_['strength'].default})")
    f.add_argument("--img2img-prompt", help="img2img prompt after the first frame (default empty, as the paper; "
                   "give the prompt to keep the conditioning)")
    f.add_argument("--color-coherence", choices=COHERENCE, help="img2img: match each frame's colours (mean and "
                   "spread per channel) to the first frame's in LAB, RGB or HSV, as Deforum (default none, as the "
                   "paper); the drift against frame 0 is printed at the end")
    f.add_argument("--img2img-noise", type=float, help="img2img: std of fresh Gaussian noise added to the previous "
                   "frame before it seeds the next, 0..1 (default 0)")
    f.add_argument("--flow", type=float, help="img2img: warp the previous frame on by this fraction of the last two "
                   "frames' motion (OpenCV's DIS optical flow) before it seeds the next, 0..2 (default 0: none, as "
                   "the paper; 1: the motion goes on as it went)")
    f.add_argument("--init-image", help="img2img: the first frame, each next one made from the previous "
                   "(default: the first frame is text-to-image)")
    f.add_argument("--midi", help="a .mid file for the midi_* features (midi_velocity, midi_pitch, midi_onset, "
                   "midi_cc:N)")
    f.add_argument("--fps", type=float, help=f"frames per second, 0 < fps <= 240 (default {v_['fps'].default:g})")
    f.add_argument("--batch", type=int, help=f"txt2img frames per batch, 1..1024 (default {v_['batch'].default}); "
                   "part of the render folder's settings")
    f.add_argument("--upscale", type=int, help=f"nearest-neighbour upscale in the mp4, 1..{MAX_UPSCALE} "
                   f"(default {DEFAULT_UPSCALE})")
    f.add_argument("--interpolate", type=float, metavar="FPS", help="write the mp4 at FPS (above --fps), with "
                   "frames in between the rendered ones (see --interpolate-method); no UNet runs")
    f.add_argument("--interpolate-method", choices=TWEEN_METHODS, help="how --interpolate makes the frames in "
                   "between: minterpolate (ffmpeg's motion-compensated interpolation while encoding) or latent "
                   "(the model's VAE decodes blends of the rendered frames' latents; one decode per extra frame) "
                   f"(default {TWEEN_DEFAULT})")
    f.add_argument("--preview", type=float, help="only the first SECONDS, to <out>-preview.mp4")
    f.add_argument("--overwrite", action="store_true", help="discard frames made with other settings")
    c = v.add_argument_group("rendering on Ray (see README: Rendering on a cluster)")
    c.add_argument("--workers", type=int, help="render on N local workers (one CPU and "
                   f"{WORKER_THREADS} torch thread each, or one GPU each where there are GPUs): on a CPU this process "
                   "is the first, the other N - 1 are Ray actors in a new runtime on 127.0.0.1; N = the CPUs for "
                   "the fastest render")
    c.add_argument("--ray-address", help="join a running Ray cluster: auto, or HOST:PORT of the head started with "
                   "`ray start --head`; one worker per GPU (or CPU) unless --workers says otherwise")
    add_model_args(v)
    v.add_argument("--out", required=True, help="output .mp4 (its folder must exist)")
    v.set_defaults(func=cmd_video)
    ft = sub.add_parser("features", help="per-frame audio features to a CSV (and a plot), before rendering",
                        description="One row per video frame, one column per feature (every feature the video "
                        "command accepts); prints the estimated tempo. With --plot, a figure of the curves and of "
                        "each mapping's parameter (from --recipe or the mapping flags).")
    ft.add_argument("audio", help="wav, flac, ogg or mp3 file")
    ft.add_argument("--fps", type=float, help=f"frames per second (default {v_['fps'].default:g})")
    ft.add_argument("--sr", type=int, help=f"sample rate to analyse at, Hz (default {v_['sr'].default})")
    ft.add_argument("--midi", help="a .mid file: adds midi_velocity, midi_pitch, midi_onset")
    ft.add_argument("--plot", help="also draw the curves into this .png/.pdf/.svg")
    ft.add_argument("--out", required=True, help="output .csv")
    ft.add_argument("--recipe", help="a video recipe: its [[mapping]] curves are plotted")
    add_mapping_args(ft.add_argument_group("mapping (its parameter curve is plotted)"))
    ft.set_defaults(func=cmd_features)
    o = sub.add_parser("operators", help="list the operators, their formulas and typical ranges")
    o.set_defaults(func=cmd_operators)
    t = sub.add_parser("targets", help="list what a bend can target on a model (from its configs, no weights)",
                       description="The latent, the UNet modules a module bend accepts and the VAE decoder's "
                       "(planned), each with the shape bent at the model's native size, read from the model's "
                       "config files: no weights load.")
    t.add_argument("--model", help="diffusers folder, or a hub id in the local cache (default: the shipped model "
                   f"{models.DEFAULT_MODEL})")
    t.set_defaults(func=cmd_targets)
    add_live_parser(sub)
    return ap


def add_live_parser(sub) -> None:
    from ..live.causal import DEFAULT_HALFLIFE, LIVE_FEATURES
    from ..live.control import CC_FORMAT, OSC_ADDRESSES
    from ..live.loop import LIVE_STEPS
    osc = "\n".join(f"  {k:<28} {v}" for k, v in OSC_ADDRESSES.items())
    lv = sub.add_parser("live", help="bend the model live from a microphone or a playing file (MIDI, OSC, tempo)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Render frame after frame from the newest audio (the same features as "
                        "offline, normalised by a running range), always the newest state: when rendering is slower "
                        "than --fps, frames are dropped, never queued. Prints fps and latency every second. "
                        "Frames are served as an MJPEG stream with --serve (a source for OBS, VLC or a browser); "
                        "--record DIR writes a session folder that `bendlab video --session DIR` re-renders. "
                        f"Defaults: {LIVE_STEPS} steps (fewer where the model's usual count is smaller), the mapping "
                        "bent at layer 8 of 10 (the paper's 40 of 50), 20 fps.",
                        epilog="OSC addresses (--osc):\n" + osc + "\n\nMIDI (--midi-in): note velocity is the "
                        "midi_velocity / midi_onset features, CC N the midi_cc:N feature; MIDI clock (24 per beat) "
                        "sets the tempo of beat, beat_phase, bar_phase and lfo:K (else --bpm).\n--cc " + CC_FORMAT)
    i = lv.add_argument_group("audio in")
    i.add_argument("--play", metavar="FILE", help="play this file to the output device and analyse its samples as "
                   "they are played (to rehearse with a track)")
    i.add_argument("--output-device", help="where --play plays: a PortAudio device, or none (silently, on the "
                   "system clock; also the fallback where no output device opens)")
    i.add_argument("--input-device", help="capture this input (index or name from --list-devices; default: the "
                   "default input). With PulseAudio: pulse, and PULSE_SOURCE=NAME.monitor captures a monitor")
    i.add_argument("--list-devices", action="store_true", help="list the audio devices and exit")
    i.add_argument("--halflife", type=float, help="running range's half-life, s > 0 (default "
                   f"{DEFAULT_HALFLIFE:g}): how fast the normalisation forgets a loud passage")
    i.add_argument("--soundcheck", type=float, help="instead, the range heard in the first SECONDS, then fixed")
    lv.add_argument("--prompt", help="the first prompt (OSC /bendlab/prompt changes it live)")
    lv.add_argument("--prompts", nargs="+", help="more prompts, for --cc or OSC to switch between")
    g = lv.add_argument_group("mapping (one; live features: " + ", ".join(LIVE_FEATURES) + ", lfo:K, midi_cc:N)")
    add_mapping_args(g)
    c = lv.add_argument_group("control")
    c.add_argument("--midi-in", metavar="PORT", help="MIDI input port (name or part of it; --list-midi)")
    c.add_argument("--list-midi", action="store_true", help="list the MIDI input ports and exit")
    c.add_argument("--cc", action="append", metavar="CC=J.FIELD[:LO:HI]", help="map a MIDI CC to mapping J's low, "
                   "high, layer or param (repeatable), e.g. 1=0.high:0:6.2832")
    c.add_argument("--bpm", type=float, help="tempo without MIDI clock, beats per minute (default 120)")
    c.add_argument("--osc", metavar="[HOST:]PORT", help="serve OSC on this UDP port (host 127.0.0.1 unless given)")
    o = lv.add_argument_group("output")
    o.add_argument("--serve", metavar="[HOST:]PORT", help="MJPEG stream of the frames at http://HOST:PORT/ "
                   "(host 127.0.0.1 unless given; port 0 picks a free one)")
    o.add_argument("--record", metavar="DIR", help="write a session folder: audio.wav, automation.csv, "
                   "events.jsonl, session.json")
    o.add_argument("--seconds", type=float, help="stop after SECONDS (default: until Ctrl-C or the file ends)")
    o.add_argument("--fps", type=float, help="target frame rate, never exceeded; also the analysis window (1/fps "
                   "s; default 20)")
    add_model_args(lv)
    lv.set_defaults(func=cmd_live)


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    try:
        a.func(a)
    except (ValueError, OSError, MemoryError, ClusterError) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"bendlab {a.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bendlab {a.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
