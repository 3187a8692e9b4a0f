"""`bendlab targets`: what a bend can act on in a model, read from its configs (no weights load)."""

from __future__ import annotations

import shutil
import textwrap

from ... import models


def add_parser(sub) -> None:
    t = sub.add_parser("targets", help="list what a bend can target on a model (from its configs, no weights)",
                       description="The latent, the UNet modules a module bend accepts and the VAE decoder's "
                       "(planned), each with the shape bent at the model's native size, read from the model's "
                       "config files: no weights load. On a Wan 2.x or LTX-Video folder: what `bendlab video "
                       "--method video` bends on it per latent frame (the latent and the transformer blocks), and "
                       "what it refuses, with why.")
    t.add_argument("--model", help="diffusers folder (an image model's, or a Wan 2.x or LTX-Video one), or a hub id "
                   f"in the local cache (default: the shipped model {models.DEFAULT_MODEL})")
    t.add_argument("--music", nargs="?", const="bendlab-tiny-music", metavar="MODEL",
                   help="list a music model's targets instead (default: the shipped bendlab-tiny-music; or a "
                   "StableAudioPipeline folder), as `bendlab music --target` takes them")
    t.add_argument("--motion-adapter", metavar="PATH", help="list the targets of the model paired with this "
                   "diffusers MotionAdapter folder (AnimateDiff, `bendlab video --method video`): its motion modules "
                   "among the blocks, each bent per frame at its output")
    t.set_defaults(func=run)


# the tables `run` prints, one per kind of target (the prefix of its name), each under a title saying how a bend
# names its targets: one wide table would not fit a 100-column terminal
SECTIONS = {"": "The latent (the default), the prompt embedding (--target text; point-wise operators only) and the "
                "UNet's modules (--module NAME, Bend(..., module=NAME); any deeper dotted child of these is accepted "
                "too):",
            "attn": "UNet attention probabilities (--target NAME, Bend(..., target=NAME); attn1 self, attn2 cross; "
                    "shape: query tokens x key tokens):",
            "vae": "VAE decoder blocks (--target NAME, Bend(..., target=NAME); bent once, when the VAE decodes):"}


MUSIC_SECTIONS = {"": "The latent (channels x latent frames), the prompt embedding (--target text) and the DiT's "
                      "parts and blocks (--target unet:NAME; tokens: the latent frames and one global token):",
                  "attn": "DiT attention probabilities (--target NAME; attn1 over time, attn2 to the prompt and the "
                          "2 duration tokens; point-wise operators only):",
                  "vae": "Oobleck decoder blocks (--target NAME; channels x samples; bent once, when the VAE "
                         "decodes):"}


def frame_sections(fam) -> dict:
    """The titles of a video transformer's listing (`models.targets.frame_targets`): its targets are bent per latent
    frame at its pipeline's default size."""
    size = "x".join(str(models.call_default(fam, k)) for k in ("height", "width"))
    return {"": f"The latent (the default) and {fam.name}'s transformer blocks and the modules inside them (--target "
                f"unet:NAME; not a cross-attention's key/value side), bent with one parameter per latent frame; "
                f"shapes per latent frame at the pipeline's {size}: the latent's C x h x w, a block's tokens (B, F' h "
                f"w, D) viewed as (B F', D, h, w), D x h x w in patches:"}


def run(a) -> None:
    from .operators import WIDTH, table
    if a.music is not None and (a.model is not None or a.motion_adapter is not None):
        from .common import CLIError
        raise CLIError("--model and --motion-adapter name an image or video model and --music a music model; "
                       "accepted: one of them")
    sections, refused = (SECTIONS, []) if a.music is None else (MUSIC_SECTIONS, [])
    if a.music is None:
        fam = models.targets_family(a.model, a.motion_adapter)
        if fam.frame_blocks:
            sections, refused = frame_sections(fam), fam.refusals()
        found = models.bend_targets(a.model, motion_adapter=a.motion_adapter)
    else:
        from ...music.targets import music_targets
        found = music_targets(a.music)
    rows = {prefix: [] for prefix in sections}
    for t in found:
        path = t.name.removeprefix("vae:decoder.")
        indent = "" if path.startswith("attn:") else "  " * (path.count(".") // 2)  # a block's parts under it
        shape = "x".join(map(str, t.shape)) if t.shape else "?"
        status = ("bendable (default)" if t.name == "latent" else "bendable") if t.bendable else "(planned)"
        kind = t.name.rpartition(":")[0]
        rows.setdefault("" if kind == "unet" else kind, []).append((indent + t.name, t.kind, shape, status))
    tables = [table(("target", "what", "shape", "status"), r, sections.get(prefix, "")) for prefix, r in rows.items()
              if r]
    if refused:  # one line: each kind refused and why, in brief (`bendlab video` refuses it with the whole reason)
        tables.append("\n".join(textwrap.wrap(f"Refused on {fam.name}, per latent frame: " + "; ".join(
            f"{target} ({why})" for target, why in refused) + ".", shutil.get_terminal_size((WIDTH, 24)).columns)))
    print("\n\n".join(tables))
