"""`bendlab targets`: what a bend can act on in a model, read from its configs (no weights load)."""

from __future__ import annotations

from ... import models


def add_parser(sub) -> None:
    t = sub.add_parser("targets", help="list what a bend can target on a model (from its configs, no weights)",
                       description="The latent, the UNet modules a module bend accepts and the VAE decoder's "
                       "(planned), each with the shape bent at the model's native size, read from the model's "
                       "config files: no weights load.")
    t.add_argument("--model", help="diffusers folder, or a hub id in the local cache (default: the shipped model "
                   f"{models.DEFAULT_MODEL})")
    t.set_defaults(func=run)


# the tables `run` prints, one per kind of target (the prefix of its name), each under a title saying how a bend
# names its targets: one wide table would not fit a 100-column terminal
SECTIONS = {"": "The latent (the default), the prompt embedding (--target text; point-wise operators only) and the "
                "UNet's modules (--module NAME, Bend(..., module=NAME); any deeper dotted child of these is accepted "
                "too):",
            "attn": "UNet attention probabilities (--target NAME, Bend(..., target=NAME); attn1 self, attn2 cross; "
                    "shape: query tokens x key tokens):",
            "vae": "VAE decoder blocks (--target NAME, Bend(..., target=NAME); bent once, when the VAE decodes):"}


def run(a) -> None:
    from .operators import table
    rows = {prefix: [] for prefix in SECTIONS}
    for t in models.bend_targets(a.model):
        path = t.name.removeprefix("vae:decoder.")
        indent = "" if path.startswith("attn:") else "  " * (path.count(".") // 2)  # a block's parts under it
        shape = "x".join(map(str, t.shape)) if t.shape else "?"
        status = ("bendable (default)" if t.name == "latent" else "bendable") if t.bendable else "(planned)"
        rows.setdefault(t.name.rpartition(":")[0], []).append((indent + t.name, t.kind, shape, status))
    print("\n\n".join(table(("target", "what", "shape", "status"), r, SECTIONS.get(prefix, ""))
                      for prefix, r in rows.items() if r))
