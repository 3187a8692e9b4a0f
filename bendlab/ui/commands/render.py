"""`bendlab render`: one bent image (`bend.render.render`), its bends from the flags and a recipe."""

from __future__ import annotations

import argparse

from ... import paper
from ...bend import catalogue
from ...bend.fit import STRENGTH
from ...video.folder import IMAGE_SUFFIXES
from ...video.mux import MAX_UPSCALE, check_upscale
from ..recipe import merge, read_render
from .common import CLIError, add_bend_args, add_model_args, given, note_prompt_words, setup_device


def add_parser(sub) -> None:
    r = sub.add_parser("render", help="render one bent image", description="Render a prompt with bends applied "
                       f"to the latent at chosen denoising steps (DDIM, seed {paper.SEED}, {paper.STEPS} steps, "
                       f"guidance {paper.GUIDANCE:g}). A flag given here overrides the recipe, which overrides the "
                       "default.")
    r.add_argument("prompt", nargs="?", help="text prompt, e.g. \"a floating orb\"")
    add_bend_args(r, "the operator's r: scalar for add/multiply/threshold/gate, r != 0 for invert, angle in "
                  "radians for rotate1-4, channel 0..3 for reflect, kernel size >= 1 for erode/dilate; "
                  f"comma-separated for several: {catalogue.N_PARAMS['matrix']} for matrix (row by row), "
                  f"{catalogue.N_PARAMS['rotate6']} angles for rotate6; none for "
                  f"{', '.join(catalogue.NO_PARAM_OPERATORS)}")
    add_model_args(r)
    r.add_argument("--negative", help="negative prompt (default none)")
    r.add_argument("--init-image", help="image-to-image from this picture (layers then count the steps actually "
                   "run, about strength x steps)")
    r.add_argument("--strength", type=float, help=f"image-to-image strength, 0 < s < 1 (default {STRENGTH:g})")
    r.add_argument("--out", required=True, help=f"output image ({', '.join(IMAGE_SUFFIXES)}; its folder must exist)")
    r.add_argument("--upscale", type=parse_upscale, help=f"nearest-neighbour upscale of the saved image, "
                   f"1..{MAX_UPSCALE} (default 1: the model's size; 4 shows the shipped model's 64x64 as 256x256)")
    r.set_defaults(func=run)


def parse_upscale(s: str) -> int:
    """--upscale, checked as `bendlab video`'s (`check_upscale`), so 0, 17 or 2.5 is refused in one line naming
    what is accepted (argparse's int would say only "invalid int value")."""
    try:
        n = int(s)
    except ValueError:
        n = s
    try:
        return check_upscale(n)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def run(a) -> None:
    from PIL import Image

    from ...bend.bends import Bend
    from ...bend.render import render
    from ...files import check_output, save_atomic
    out = check_output(a.out, IMAGE_SUFFIXES)
    recipe = read_render(a.recipe) if a.recipe else {}
    bends = recipe.pop("bends", [])
    if a.op:
        if a.param is None and a.op not in ("reflect",) + catalogue.NO_PARAM_OPERATORS:
            raise CLIError(f"--op {a.op} needs --param (r: {catalogue.FORMULAS[a.op]})")
        bends.append(Bend(a.op, **given(a, ("param", "layer", "where", "norm", "module", "target"))))
    settings = merge(recipe, {"prompt": a.prompt, "negative_prompt": a.negative, "model": a.model, "seed": a.seed,
                              "steps": a.steps, "guidance": a.guidance, "init_image": a.init_image,
                              "strength": a.strength})
    if "prompt" not in settings:
        raise CLIError("no prompt: give one as the first argument or as prompt = \"...\" in the recipe")
    setup_device(a)
    note_prompt_words(settings.get("model"), [settings["prompt"]])
    img = render(bends=bends, device=a.device, **settings)
    if a.upscale:  # every pixel an upscale x upscale block: the model's pixels, crisp
        img = img.resize((img.width * a.upscale, img.height * a.upscale), Image.Resampling.NEAREST)
    save_atomic(img, out)  # never a half-written image under the final name
    print(f"wrote {out} ({img.width}x{img.height}; {len(bends)} bend(s))")
