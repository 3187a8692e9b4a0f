"""What several commands share: the one-line error type, the value parsers, the model, bend and mapping flags,
and the rule that only flags given count (argparse defaults are None: the library holds every default).

Declaring the flags reads only modules that do not import torch (the operators' `catalogue`, the shipped model's
name, the settings' dataclasses), so `bendlab --help` and the listing commands start at once; a command's `run`
imports what does the work."""

from __future__ import annotations

import argparse
import dataclasses
from types import SimpleNamespace

from ... import models, paper
from ...bend import catalogue
from ...models.sampler import USUAL
from ...video.cluster import WORKER_THREADS

LAYERS_HELP = (f"denoising step the bend acts before, 0..STEPS (0 = initial noise, STEPS = final latent before "
               f"decoding; {paper.STEPS - 1} = before the last of {paper.STEPS} steps); 'A-B' for an inclusive range")
WHERE_HELP = ("where in the latent: all | row:I | column:I | channel:C (0..3) | fraction:P[:seed=S] with 0 < P <= 1 "
              "(e.g. fraction:0.05, the paper's 5%% of the features) | region:X0,Y0,X1,Y1 in [0, 1], top-left origin; "
              "for --target text: all | token:I (0 = start token) | token:WORD (the tokens of a word of the prompt)")
MAPPING_FLAGS = ("feature", "op", "layer", "where", "norm", "scaling", "clip", "gate", "threshold", "ratio", "curve",
                 "attack", "release", "median", "target")


class CLIError(ValueError):
    """A bad input, reported as one line."""


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


def field_defaults(cls) -> SimpleNamespace:
    """The defaults of a dataclass's fields (a help string shows them), read without constructing one: its checks
    import torch."""
    return SimpleNamespace(**{f.name: f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
                              for f in dataclasses.fields(cls)})


def given(a, names) -> dict:
    """The flags among `names` that were given (argparse defaults are None: the library holds the defaults)."""
    return {n: getattr(a, n) for n in names if getattr(a, n) is not None}


def prompts_from_args(a) -> list[str]:
    """--prompt then --prompts, as given; an empty or blank one is refused in one line (left out it would be the
    default prompt, not the empty one the shell passed, e.g. from an unset variable)."""
    prompts = ([a.prompt] if a.prompt is not None else []) + list(a.prompts or [])
    for p in prompts:
        if not p.strip():
            raise CLIError(f"prompt {p!r} is empty; accepted: a text prompt, or leave --prompt out for the default")
    return prompts


def note_prompt_words(model, prompts) -> None:
    """Print (to stdout: a note, not an error) which prompt words the shipped model was not trained on, if any
    (`models.unknown_words_note`)."""
    note = models.unknown_words_note(model, prompts)
    if note:
        print(note, flush=True)


def setup_device(a) -> None:
    """Check --device and --threads, and set torch's threads when given."""
    models.check_device(a.device)
    if models.check_threads(a.threads):
        import torch
        torch.set_num_threads(a.threads)


def add_model_args(ap: argparse.ArgumentParser, steps: str | None = None) -> None:
    """The model flags; `steps`: the --steps default in words where a command has its own (live)."""
    ddim, lcm, turbo = USUAL["ddim"], USUAL["lcm"], USUAL["turbo"]
    g = ap.add_argument_group("model")
    g.add_argument("--model", help="diffusers folder or hub id of SD v1.x/2.x or SDXL (default: the shipped offline "
                   f"model {models.DEFAULT_MODEL}; e.g. CompVis/stable-diffusion-v1-4 on a GPU)")
    g.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: cuda if available)")
    g.add_argument("--threads", type=int, help=f"torch CPU threads, 1..{models.available_cpus()} (default: torch's "
                   f"choice; on Ray CPU workers, {WORKER_THREADS} each: frames then do not depend on the number of "
                   "workers)")
    g.add_argument("--seed", type=int, help=f"seed of the initial noise, 0..2**63-1 (default {paper.SEED}, as the "
                   "paper)")
    steps = steps or (f"the model's usual count: {ddim[0]} with DDIM as the paper, {lcm[0]} for an LCM model, "
                      f"{turbo[0]} for a Turbo model")
    g.add_argument("--steps", type=int, help=f"denoising steps, 1..1000 (default {steps})")
    g.add_argument("--guidance", type=float, help=f"classifier-free guidance scale >= 0 (default: the model's "
                   f"usual: {ddim[1]:g} as the paper, {turbo[1]:g} for a Turbo model)")


def add_bend_args(ap: argparse.ArgumentParser, param_help: str) -> None:
    g = ap.add_argument_group("bend (one; use --recipe for several)")
    g.add_argument("--op", choices=catalogue.NAMES, metavar="OP",
                   help="operator: " + "; ".join(f"{k}: {v}" for k, v in catalogue.FORMULAS.items()))
    g.add_argument("--param", type=parse_param, help=param_help)
    g.add_argument("--layer", type=parse_layer, help=LAYERS_HELP + " (default 0)")
    g.add_argument("--where", help=WHERE_HELP + " (default all)")
    g.add_argument("--norm", choices=list(catalogue.NORM_DIMS),
                   help="mean-normalise along channel | row | column after the operator (the paper's morphology)")
    g.add_argument("--module", help="bend this UNet block's output instead of the latent, e.g. mid_block, "
                   "up_blocks.1 (Broad et al.'s network bending); the same as --target unet:NAME")
    g.add_argument("--target", help="what the bend acts on: latent (default), unet:MODULE (as --module), "
                   "vae:MODULE, a block of the VAE decoder bent once when it decodes, e.g. vae:decoder.up_blocks.1 "
                   "(`bendlab targets` lists them), text, the prompt embedding (point-wise operators only), or "
                   "attn:MODULE, the attention probabilities of an attention module, e.g. "
                   "attn:down_blocks.2.attentions.0.transformer_blocks.0.attn2 (attn1 self, attn2 cross-attention; "
                   "--where all, or token:I / token:WORD for attn2; point-wise operators and "
                   f"{', '.join(catalogue.ATTN_OPERATORS)} on each token's map; rows renormalised to sum to 1)")
    g.add_argument("--recipe", help="TOML or YAML file: settings and a list of [[bend]] tables with keys op, param, "
                   "layer, where, norm, module, target (flags given here override the recipe)")


def add_mapping_args(g, features: str | None = None, steps: int | None = None) -> None:
    """The flags of one audio -> parameter mapping (bendlab.mapping.Mapping), for `video`, `features` and `live`;
    `features` and `steps`: the features a command accepts, in words, and its default step count (live)."""
    from ...audio.features import FEATURES, PARAMETRIC
    from ...mapping import SCALINGS, Mapping
    m = field_defaults(Mapping)
    fit = paper.fit_layer
    layer = (f"{fit(paper.LAYER, steps)} of {steps}, the paper's {paper.LAYER} of {paper.STEPS} at the same depth"
             if steps else f"{paper.LAYER} of {paper.STEPS} as the paper, at the same depth for other step counts: "
             f"{fit(paper.LAYER, 4)} of 4, {fit(paper.LAYER, 1)} of 1")
    features = features or (", ".join(FEATURES + PARAMETRIC) + ", embed16 (16 values a frame, for --op matrix: the "
                            "identity plus each value scaled into --range), each optionally @harmonic, @percussive "
                            "or @STEM.wav")
    g.add_argument("--op", choices=catalogue.NAMES, metavar="OP",
                   help="operator driven by the audio: " + ", ".join(catalogue.NAMES))
    g.add_argument("--layer", type=int, help=f"layer 0..STEPS (default: {layer})")
    g.add_argument("--feature", metavar="F", help=f"audio feature: {features} (default {m.feature})")
    g.add_argument("--range", nargs=2, type=float, metavar=("LOW", "HIGH"),
                   help=f"parameter range the feature is scaled into (default {m.low:g} {m.high:.6g} = 0..pi; the "
                   "paper's 0 6.2832, a full turn, brings the loudest moment back to no bend)")
    g.add_argument("--where", help=WHERE_HELP)
    g.add_argument("--norm", choices=list(catalogue.NORM_DIMS), help="mean-normalise after the operator")
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
    g.add_argument("--threshold", type=float, help=f"compressor threshold, normalised level 0..1 (default "
                   f"{m.threshold:g}: off)")
    g.add_argument("--ratio", type=float, help=f"compressor ratio >= 1 above the threshold (default {m.ratio:g})")
    g.add_argument("--curve", type=float, help=f"exponent after normalising, > 0 (default {m.curve:g})")
    g.add_argument("--attack", type=float, help=f"envelope attack time, s >= 0 (default {m.attack:g})")
    g.add_argument("--release", type=float, help=f"envelope release time, s >= 0 (default {m.release:g})")
    g.add_argument("--median", type=int, help=f"running median over this many frames, odd >= 1 (default {m.median})")


def mapping_from_args(a):
    """The Mapping of the mapping flags (`video`, `features` and `live` alike), or None without --op; mapping flags
    given without --op are refused (they would be dropped: there is no mapping for them to shape)."""
    from ...mapping import Mapping
    if a.op is None:
        stray = [n for n in MAPPING_FLAGS + ("range",) if n != "op" and getattr(a, n) is not None]
        if stray:
            raise CLIError(f"{', '.join('--' + n for n in sorted(stray))} given without --op; accepted: --op OP "
                           "with the mapping flags, or [[mapping]] tables in --recipe")
        return None
    return Mapping(**given(a, MAPPING_FLAGS), **({"low": a.range[0], "high": a.range[1]} if a.range else {}))
