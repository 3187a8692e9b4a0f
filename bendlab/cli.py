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
    """A TOML (.toml) or YAML (.yaml/.yml, safe loader) recipe: render settings and a list [[bend]] of bends."""
    p = Path(path)
    if not p.is_file():
        raise CLIError(f"recipe {str(p)!r} does not exist")
    text = p.read_text()
    try:
        if p.suffix == ".toml":
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text) or {}
        else:
            raise CLIError(f"recipe {str(p)!r} has suffix {p.suffix!r}; accepted: .toml, .yaml, .yml")
    except (tomllib.TOMLDecodeError, ImportError) as e:
        raise CLIError(f"recipe {str(p)!r} is not valid TOML: {e}") from None
    except Exception as e:  # yaml.YAMLError and friends
        if isinstance(e, CLIError):
            raise
        raise CLIError(f"recipe {str(p)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise CLIError(f"recipe {str(p)!r} must be a table of settings with a list of [[bend]] entries")
    data["bend"] = as_bends(data.get("bend", []))
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
    recipe = read_recipe(a.recipe) if a.recipe else {"bend": []}
    bends = list(recipe["bend"])
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
    _setup(a)
    from .models import load_pipeline
    pipe = load_pipeline(recipe.get("model", a.model), a.device)
    img = render(prompt, bends, pipe=pipe, negative_prompt=a.negative, init_image=a.init_image,
                 strength=a.strength, **settings)
    tmp = a.out.with_name(a.out.name + ".part" + a.out.suffix)
    img.save(tmp)
    tmp.replace(a.out)  # never a half-written image under the final name
    print(f"wrote {a.out} ({img.width}x{img.height}; {len(bends)} bend(s))")


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
