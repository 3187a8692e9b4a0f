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


def run(a) -> None:
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
