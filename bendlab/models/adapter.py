"""A motion adapter, before any weights load: `check_motion_adapter` says whether a folder is a diffusers
`MotionAdapter` (config.json and safetensors weights, as `MotionAdapter.save_pretrained` writes them) that fits a
model's UNet (the same blocks, channels and layers per block: AnimateDiff inserts one motion module after each
UNet layer), and `max_frames` how many frames one window of it may hold (its temporal position embeddings,
`motion_max_seq_length`). Reading the two config files costs milliseconds.

The pipeline is built from the model folder and the adapter by `models.load_pipeline(model, motion_adapter=PATH)`
(diffusers' `AnimateDiffPipeline`, family `models.ANIMATEDIFF`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..checks import BendlabValueError, MissingFileError
from .family import SD, family
from .folder import DEFAULT_MODEL, SHIPPED, _index

ACCEPTED = ("accepted: a diffusers MotionAdapter folder (config.json and .safetensors weights, as save_pretrained "
            "writes), or 'bendlab-tiny-motion' (the shipped model's)")
DEFAULT_MOTION = "bendlab-tiny-motion"  # the shipped model's motion adapter, trained here (`make motion`)
SHIPPED_MOTION = SHIPPED.parent / DEFAULT_MOTION


def default_motion_adapter(model=None) -> str | None:
    """The motion adapter the video method pairs with `model` when none is named: the shipped adapter (trained for
    the shipped model: its model card is bendlab/weights/bendlab-tiny-motion/README.md) for the shipped model (None,
    its name, or its folder); None for any other model."""
    shipped = model is None or str(model) == DEFAULT_MODEL or (
        isinstance(model, (str, os.PathLike)) and Path(model).expanduser().resolve() == SHIPPED)
    return str(SHIPPED_MOTION) if shipped and (SHIPPED_MOTION / "config.json").is_file() else None


def _config(path: str) -> dict:
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise BendlabValueError(f"motion adapter {path!r} has no readable config.json ({type(e).__name__}); "
                                f"{ACCEPTED}") from None
    if not isinstance(config, dict) or config.get("_class_name") != "MotionAdapter":
        name = config.get("_class_name") if isinstance(config, dict) else type(config).__name__
        raise BendlabValueError(f"motion adapter {path!r} holds a {name}, not a MotionAdapter; {ACCEPTED}")
    return config


def check_motion_adapter(path, model: str) -> str:
    """The adapter folder as a string, once it is checked to be a safetensors `MotionAdapter` that fits `model`
    (a resolved local folder of an SD v1.x model; a hub id's configs are not read here): one-line errors for a
    path that does not exist, a folder without config.json, pickle-only weights (.bin), another image family, a
    video transformer (Wan, LTX-Video: it needs none), and a block layout (block_out_channels, layers per block)
    other than the UNet's."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise BendlabValueError(f"motion adapter {path!r:.60} is not a path; {ACCEPTED}")
    p = SHIPPED_MOTION if str(path) == DEFAULT_MOTION else Path(path).expanduser()
    if not p.is_dir():
        raise MissingFileError(f"motion adapter {str(path)!r} is not a folder that exists; {ACCEPTED}")
    config = _config(str(p))
    if not any(p.glob("*.safetensors")):
        found = sorted(f.name for f in p.iterdir() if f.suffix in (".bin", ".ckpt", ".pt", ".pth"))
        raise BendlabValueError(f"motion adapter {str(path)!r} has no .safetensors weights"
                                f"{f' (only {found[0]}: pickle files are not loaded)' if found else ''}; accepted: "
                                "weights saved as safetensors (save_pretrained's default)")
    if not Path(model).is_dir():
        return str(p)
    fam = family(_index(model).get("_class_name", ""), model, video=True)
    if fam.medium == "video":
        raise BendlabValueError(f"motion adapter {str(path)!r} given with a {fam.name} model {model!r}, a video "
                                "model that moves on its own; accepted: leave the motion adapter out "
                                "(--motion-adapter) for it, or an SD v1.x model with the adapter")
    if fam is not SD:
        raise BendlabValueError(f"motion adapter {str(path)!r} given with a {fam.name} model {model!r}; accepted: an "
                                "SD v1.x model (AnimateDiff's motion adapters are trained on SD v1.5's UNet)")
    unet = json.loads((Path(model) / "unet" / "config.json").read_text())
    layers = unet["layers_per_block"]
    layers = [layers] * len(unet["block_out_channels"]) if isinstance(layers, int) else list(layers)
    mine = config.get("motion_layers_per_block", 2)
    mine = [mine] * len(config.get("block_out_channels", ())) if isinstance(mine, int) else list(mine)
    theirs = (list(unet["block_out_channels"]), layers)
    ours = (list(config.get("block_out_channels", ())), mine)
    if ours != theirs:
        raise BendlabValueError(f"motion adapter {str(path)!r} has blocks {ours[0]} with {ours[1]} layers, the "
                                f"model's UNet {theirs[0]} with {theirs[1]}; accepted: an adapter trained for this "
                                "model's UNet (the same block_out_channels and layers per block)")
    return str(p)


def max_frames(path) -> int:
    """The most frames one window of the adapter holds: its temporal position embeddings (motion_max_seq_length,
    32 for AnimateDiff's; they were trained on 16-frame clips)."""
    return int(_config(str(SHIPPED_MOTION if str(path) == DEFAULT_MOTION else path)).get("motion_max_seq_length", 32))
