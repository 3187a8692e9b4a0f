"""The `bendlab` command line: render bent images (and, see `bendlab video --help`, audio-reactive video).

    bendlab render "a floating orb" --op add --param 1 --layer 40 --out orb.png
    bendlab render "a floating orb" --recipe bends.toml --out orb.png
    bendlab operators
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from . import operators
from .bend import Bend, as_bends

LAYERS_HELP = ("denoising step the bend acts before, 0..STEPS (0 = initial noise, STEPS = final latent before "
               "decoding; 49 = before the last of 50 steps); 'A-B' for an inclusive range")
WHERE_HELP = ("where in the latent: all | row:I | column:I | channel:C (0..3) | fraction:P[:seed=S] with 0 < P <= 1 "
              "(e.g. fraction:0.05, the paper's 5%% of the features) | region:X0,Y0,X1,Y1 in [0, 1], top-left origin")


class CLIError(ValueError):
    """A bad input, reported as one line."""


def read_recipe(path: str | Path) -> dict:
    """The settings table of a TOML (.toml) or YAML (.yaml/.yml, safe loader) recipe; one-line errors.

    `bendlab render` reads [[bend]] entries from it, `bendlab video` [[mapping]] entries."""
    import yaml
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"recipe {str(p)!r} does not exist")
    if p.suffix not in (".toml", ".yaml", ".yml"):
        raise CLIError(f"recipe {str(p)!r} has suffix {p.suffix!r}; accepted: .toml, .yaml, .yml")
    try:
        data = tomllib.loads(p.read_text()) if p.suffix == ".toml" else yaml.safe_load(p.read_text()) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise CLIError(f"recipe {str(p)!r} is not valid {p.suffix[1:].upper()}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise CLIError(f"recipe {str(p)!r} must be a table of settings with [[bend]] or [[mapping]] entries")
    return data


def parse_layer(s: str) -> int | tuple[int, int]:
    try:
        if "-" in s.strip("-"):
            a, b = s.split("-")
            return int(a), int(b)
        return int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"layer {s!r} is not an integer or a range A-B") from None


def output_path(s: str) -> Path:
    """An output file whose folder exists and is writable (checked before any rendering)."""
    import os
    p = Path(s)
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"output folder {str(folder)!r} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"output folder {str(folder)!r} is not writable")
    return p


def add_model_args(ap: argparse.ArgumentParser) -> None:
    g = ap.add_argument_group("model")
    g.add_argument("--model", default=None, help="diffusers SD v1.x folder or hub id (default: the shipped offline "
                   "model bendlab-tiny-sd; e.g. CompVis/stable-diffusion-v1-4 on a GPU)")
    g.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    g.add_argument("--seed", type=int, default=46, help="seed of the initial noise (default 46, as the paper)")
    g.add_argument("--steps", type=int, default=50, help="DDIM steps, 1..1000 (default 50, as the paper)")
    g.add_argument("--guidance", type=float, default=7.5, help="classifier-free guidance scale >= 0 (default 7.5)")


def add_bend_args(ap: argparse.ArgumentParser, param_help: str) -> None:
    g = ap.add_argument_group("bend (one; use --recipe for several)")
    g.add_argument("--op", choices=list(operators.OPERATORS), metavar="OP",
                   help="operator: " + "; ".join(f"{k}: {v}" for k, v in operators.FORMULAS.items()))
    g.add_argument("--param", type=float, default=None, help=param_help)
    g.add_argument("--layer", type=parse_layer, default=0, help=LAYERS_HELP + " (default 0)")
    g.add_argument("--where", default="all", help=WHERE_HELP + " (default all)")
    g.add_argument("--norm", choices=list(operators.NORM_DIMS), default=None,
                   help="mean-normalise along channel | row | column after the operator (the paper's morphology)")
    g.add_argument("--module", default=None, help="bend this UNet block's output instead of the latent, "
                   "e.g. mid_block, up_blocks.1 (Broad et al.'s network bending)")
    g.add_argument("--recipe", default=None, help="TOML or YAML file: settings and a list of [[bend]] tables "
                   "with keys op, param, layer, where, norm, module")


def bends_from_args(a) -> tuple[list[Bend], dict]:
    recipe = read_recipe(a.recipe) if a.recipe else {}
    bends = as_bends(recipe.pop("bend", []))
    if a.op:
        if a.param is None and a.op not in ("reflect",):
            raise CLIError(f"--op {a.op} needs --param (r: {operators.FORMULAS[a.op]})")
        bends.append(Bend(a.op, a.param if a.param is not None else 0, a.layer, a.where, a.norm, a.module))
    return bends, recipe


def _setup(a) -> None:
    if a.threads:
        import torch
        torch.set_num_threads(a.threads)


def cmd_render(a) -> None:
    from .engine import check_settings, render
    bends, recipe = bends_from_args(a)
    prompt = a.prompt if a.prompt is not None else recipe.get("prompt")
    if prompt is None:
        raise CLIError("no prompt: give one as the first argument or as prompt = \"...\" in the recipe")
    settings = {k: recipe.get(k, getattr(a, k)) for k in ("seed", "steps", "guidance")}
    check_settings(strength=a.strength if a.init_image else None, **settings)
    if a.init_image and not Path(a.init_image).is_file():
        raise CLIError(f"init image {a.init_image!r} does not exist")
    from .engine import img2img_layers
    n_layers = img2img_layers(settings["steps"], a.strength) if a.init_image else settings["steps"]
    for b in bends:
        b.check(n_layers)
    from .models import load_pipeline, resolve
    resolve(recipe.get("model", a.model))
    _setup(a)
    pipe = load_pipeline(recipe.get("model", a.model), a.device)
    img = render(prompt, bends, pipe=pipe, negative_prompt=a.negative, init_image=a.init_image,
                 strength=a.strength, **settings)
    tmp = a.out.with_name(a.out.name + ".part" + a.out.suffix)
    img.save(tmp)
    tmp.replace(a.out)  # never a half-written image under the final name
    print(f"wrote {a.out} ({img.width}x{img.height}; {len(bends)} bend(s))")


def video_spec_from_args(a):
    """A VideoSpec from the command line and an optional recipe ([[mapping]] tables and settings)."""
    from .video import Mapping, VideoSpec, parse_keyframe
    recipe = read_recipe(a.recipe) if a.recipe else {}
    mappings = [Mapping(**m) for m in recipe.pop("mapping", [])]
    if a.op:
        low, high = a.range
        mappings.append(Mapping(a.feature, a.op, a.layer, low, high, a.where, a.norm, a.scaling, a.curve,
                                a.attack, a.release, a.median))
    if not mappings:
        raise CLIError("no mapping: give --op (with --feature, --range, --layer) or [[mapping]] in --recipe")
    prompts, keyframes = ([a.prompt] if a.prompt else []) + list(a.prompts or []), None
    if a.keyframe:
        pairs = [parse_keyframe(k) for k in a.keyframe]
        keyframes, prompts = [t for t, _ in pairs], [p for _, p in pairs]
    settings = dict(audio=a.audio, prompts=prompts or recipe.pop("prompts", None) or ["3D mesh geometry"],
                    keyframes=keyframes or recipe.pop("keyframes", None), mappings=mappings, method=a.method,
                    walk=a.walk, fps=a.fps, steps=a.steps, guidance=a.guidance, seed=a.seed, strength=a.strength,
                    img2img_prompt=a.img2img_prompt, init_image=a.init_image, model=a.model or "bendlab-tiny-sd")
    settings.update(recipe)
    return VideoSpec(**settings)


def cmd_video(a) -> None:
    from .video import check_output, make_video, plan, video_info
    check_output(a.out)
    spec = video_spec_from_args(a)
    feats, _ = plan(spec)  # reads and checks the audio before any model work
    if spec.keyframes and spec.keyframes[-1] > feats.duration:
        raise CLIError(f"keyframe at {spec.keyframes[-1]:g} s is beyond the audio ({feats.duration:.2f} s)")
    if a.preview is not None and not a.preview > 0:
        raise CLIError(f"preview {a.preview} is not a number of seconds > 0")
    print(f"{a.audio}: {feats.duration:.2f} s -> {feats.n_frames} frames at {spec.fps:g} fps; "
          f"frames in {Path(a.out).stem}.frames/")
    from .models import load_pipeline, resolve
    resolve(spec.model)
    _setup(a)
    pipe = load_pipeline(spec.model, a.device)
    out = make_video(spec, a.out, pipe=pipe, batch=a.batch, overwrite=a.overwrite, preview=a.preview,
                     upscale=a.upscale)
    info = video_info(out)
    streams = f"{'h264' if info['video'] else 'no video'} + {'aac' if info['audio'] else 'no audio'}"
    audio_s = feats.duration if a.preview is None else min(a.preview, feats.duration)
    print(f"wrote {out}: {info['frames']} frames, video {info['video_duration']:.2f} s, "
          f"audio {audio_s:.2f} s{' (preview)' if a.preview is not None else ''}, streams: {streams}")


def cmd_operators(a) -> None:
    for k, v in operators.FORMULAS.items():
        lo, hi = operators.PARAM_RANGES[k]
        print(f"{k:10s} {v:45s} typical r: {lo:g} .. {hi:g}")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="bendlab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    r = sub.add_parser("render", help="render one bent image", description="Render a prompt with bends applied "
                       "to the latent at chosen denoising steps (DDIM, seed 46, 50 steps, guidance 7.5).")
    r.add_argument("prompt", nargs="?", default=None, help="text prompt, e.g. \"a floating orb\"")
    add_bend_args(r, "the operator's r: scalar for add/multiply/threshold/gate, r != 0 for invert, angle in "
                  "radians for rotate1-4, channel 0..3 for reflect, kernel size >= 1 for erode/dilate")
    add_model_args(r)
    r.add_argument("--negative", default=None, help="negative prompt (default none)")
    r.add_argument("--init-image", default=None, help="image-to-image from this picture (layers then count the "
                   "steps actually run, about strength x steps)")
    r.add_argument("--strength", type=float, default=0.5, help="image-to-image strength, 0 < s < 1 (default 0.5)")
    r.add_argument("--out", type=output_path, required=True, help="output PNG (its folder must exist)")
    r.set_defaults(func=cmd_render)
    v = sub.add_parser("video", help="render an audio-reactive video", description="Audio features of each "
                       "frame's window of audio drive a bend's parameter; frames are written as they finish into "
                       "<out>.frames/ (run again to resume) and muxed with the audio into an H.264 + AAC mp4.")
    v.add_argument("audio", help="wav, flac, ogg or mp3 file")
    v.add_argument("--prompt", default=None, help="text prompt (default \"3D mesh geometry\")")
    v.add_argument("--prompts", nargs="+", default=None, help="two or more prompts interpolated in text-embedding "
                   "space from the first frame to the last")
    v.add_argument("--keyframe", action="append", default=None, metavar="'M:SS PROMPT'",
                   help="a prompt at a time, repeatable (e.g. '0:00 a floating orb' '0:05 a gorgeous landscape'); "
                   "prompts are interpolated between keyframes")
    g = v.add_argument_group("mapping (one; use --recipe with [[mapping]] tables for several)")
    g.add_argument("--op", choices=list(operators.OPERATORS), metavar="OP", default=None,
                   help="operator driven by the audio: " + ", ".join(operators.OPERATORS))
    g.add_argument("--layer", type=int, default=40, help="layer 0..STEPS (default 40, as the paper)")
    from .audio import FEATURES
    g.add_argument("--feature", choices=FEATURES, default="rms", metavar="F",
                   help="audio feature: " + ", ".join(FEATURES) + " (default rms)")
    g.add_argument("--range", nargs=2, type=float, default=(0.0, 6.2832), metavar=("LOW", "HIGH"),
                   help="parameter range the feature is scaled into (default 0 6.2832 = 0..2 pi)")
    g.add_argument("--where", default="all", help=WHERE_HELP)
    g.add_argument("--norm", choices=list(operators.NORM_DIMS), default=None, help="mean-normalise after the operator")
    g.add_argument("--scaling", choices=("minmax", "percentile"), default="minmax",
                   help="normalise the feature over the track by min-max or 5th-95th percentile (default minmax)")
    g.add_argument("--curve", type=float, default=1.0, help="exponent after normalising, > 0 (default 1)")
    g.add_argument("--attack", type=float, default=0.0, help="envelope attack time, s (default 0)")
    g.add_argument("--release", type=float, default=0.0, help="envelope release time, s (default 0)")
    g.add_argument("--median", type=int, default=1, help="running median over this many frames, odd (default 1)")
    g.add_argument("--recipe", default=None, help="TOML/YAML with [[mapping]] tables (keys of bendlab.video.Mapping) "
                   "and any VideoSpec setting")
    f = v.add_argument_group("frames")
    f.add_argument("--method", choices=("txt2img", "img2img"), default="txt2img",
                   help="txt2img: sin/cos noise walk (default); img2img: each frame from the previous one")
    f.add_argument("--walk", choices=("sincos", "authors"), default="sincos",
                   help="txt2img noise: A sin + B cos (paper), or authors: seed noise + 0.3 x the walk")
    f.add_argument("--strength", type=float, default=0.5, help="img2img strength, 0 < s < 1 (default 0.5)")
    f.add_argument("--img2img-prompt", default="", help="img2img prompt after the first frame (default empty, "
                   "as the paper)")
    f.add_argument("--init-image", default=None, help="img2img first frame (default: text-to-image)")
    f.add_argument("--fps", type=float, default=20.0, help="frames per second, 0 < fps <= 240 (default 20)")
    f.add_argument("--batch", type=int, default=8, help="txt2img frames per batch (default 8)")
    f.add_argument("--upscale", type=int, default=4, help="nearest-neighbour upscale in the mp4 (default 4)")
    f.add_argument("--preview", type=float, default=None, help="only the first SECONDS, to <out>-preview.mp4")
    f.add_argument("--overwrite", action="store_true", help="discard frames made with other settings")
    add_model_args(v)
    v.add_argument("--out", type=output_path, required=True, help="output .mp4 (its folder must exist)")
    v.set_defaults(func=cmd_video)
    o = sub.add_parser("operators", help="list the operators, their formulas and typical ranges")
    o.set_defaults(func=cmd_operators)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    try:
        a.func(a)
    except (ValueError, FileNotFoundError, OSError) as e:
        print(f"bendlab {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bendlab {a.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
