"""Where a model is and what its configs say, before any weights load: `resolve` turns a name (None or
"bendlab-tiny-sd" for the shipped model, a local diffusers folder, a hub id) into the folder or hub id to load,
refusing in one line a folder that is not a supported pipeline or holds no safetensors; the small config readers
(model_index.json, a component's or the scheduler's config) serve `model`, `sampler` and `targets`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path


from ..checks import BendlabValueError, MissingFileError
from .family import SUPPORTED, family

SHIPPED = Path(__file__).resolve().parent.parent / "weights" / "bendlab-tiny-sd"
DEFAULT_MODEL = "bendlab-tiny-sd"


def resolve(model: str | os.PathLike | None, video: bool = False) -> str:
    """The folder or hub id to load; checks a local folder is a supported pipeline (one-line errors). video: a
    Wan or LTX-Video folder is accepted too (`family(..., video=True)`: where a video is asked for)."""
    accepted = (f"accepted: a diffusers folder of {SUPPORTED}, a hub id like 'CompVis/stable-diffusion-v1-4', "
                f"or {DEFAULT_MODEL!r} (the shipped model)")
    if model is None or str(model) == DEFAULT_MODEL:
        model = SHIPPED
    if not isinstance(model, (str, os.PathLike)) or not str(model).strip():
        raise BendlabValueError(f"model {model!r} is not a folder or hub id; {accepted}")
    s = str(model)
    p = Path(s).expanduser()
    if not p.exists() and re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", s) and not _looks_local(s):
        return s  # a hub id such as CompVis/stable-diffusion-v1-4: the user's choice, loaded by diffusers
    if not p.exists():
        loop = " (a symlink that leads nowhere or to itself)" if os.path.islink(p) else ""
        raise MissingFileError(f"model {s!r} does not exist{loop}; {accepted}")
    index = p / "model_index.json"
    if not index.is_file():
        raise BendlabValueError(f"model folder {s!r} is not a diffusers pipeline (no model_index.json); accepted: "
                                f"a folder written by save_pretrained of {SUPPORTED}")
    try:
        meta = json.loads(index.read_text())
    except OSError as e:
        raise BendlabValueError(f"model index {str(index)!r} could not be read ({e.strerror or e}); accepted: a "
                                "readable model_index.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BendlabValueError(f"model index {str(index)!r} is not valid JSON ({e}); accepted: the "
                                "model_index.json written by a pipeline's save_pretrained") from None
    if not isinstance(meta, dict):
        raise BendlabValueError(f"model index {str(index)!r} holds a {type(meta).__name__}, not an object; accepted: "
                                "the "
                                "model_index.json written by a pipeline's save_pretrained")
    fam = family(meta.get("_class_name", ""), s, video)
    missing = [c for c in fam.components if not (p / c).is_dir()]
    if missing:
        raise BendlabValueError(f"model folder {s!r} is not a complete {fam.txt2img} (missing {', '.join(missing)}); "
                                f"accepted: a folder written by {fam.txt2img}.save_pretrained")
    for c in (fam.denoiser, "vae", *fam.text_encoders):  # safetensors only: refused here, not in diffusers
        if not any((p / c).glob("*.safetensors")):
            found = sorted(f.name for f in (p / c).iterdir() if f.suffix in (".bin", ".ckpt", ".pt", ".pth"))
            raise BendlabValueError(f"model folder {s!r} has no .safetensors weights in {c}"
                                    f"{f' (only {found[0]}: pickle files are not loaded)' if found else ''}; accepted: "
                                    "weights saved as safetensors (save_pretrained's default)")
    if fam.medium == "video":  # a video transformer: its channel operators act on groups of 4 (`Family.channels`)
        return str(p)
    try:
        channels = json.loads((p / "unet" / "config.json").read_text()).get("in_channels", 4)
    except (OSError, ValueError, AttributeError):
        channels = 4  # an unreadable config is reported by the loader
    if channels != 4:
        raise BendlabValueError(f"model folder {s!r} has a {channels}-channel latent; accepted: 4-channel-latent "
                                "models "
                                "(the channel operators are defined on 4 latent channels)")
    return str(p)


def _looks_local(s: str) -> bool:
    """A name that is a path, not a hub id ("org/name"): it starts with ., ~ or /, holds a backslash or a second
    "/", is a symlink, or its first part is a folder here (models/sd15 beside a local models/ folder)."""
    return (s.startswith((".", "~", "/")) or "\\" in s or s.count("/") > 1 or os.path.islink(s)
            or Path(s.split("/")[0]).is_dir())


def _hub_config(hub_id: str, scheduler: bool = False) -> dict:
    """One small config file of a hub model (model_index.json, or scheduler/scheduler_config.json), fetched
    alone by diffusers from its local cache or, if allowed, the network."""
    import warnings

    from diffusers import DDIMScheduler, DiffusionPipeline
    with warnings.catch_warnings():  # huggingface_hub's deprecation notice about an argument diffusers passes
        warnings.simplefilter("ignore", UserWarning)
        if scheduler:
            return DDIMScheduler.load_config(hub_id, subfolder="scheduler")
        return DiffusionPipeline.load_config(hub_id)


def _index(path: str) -> dict:
    """A model's model_index.json, so its family is known before any weights load."""
    if Path(path).is_dir():
        return json.loads((Path(path) / "model_index.json").read_text())
    try:
        return _hub_config(path)
    except OSError as e:  # not in the local cache and no network
        raise OSError(f"could not load model {path!r}: {str(e).splitlines()[0]}") from None


def _sampler_config(path: str) -> tuple[str, dict]:
    """(class name, config) of a model's scheduler: a local folder's file, or a hub id's small config file via
    diffusers (its local cache, or the network if the user allows it)."""
    try:
        if Path(path).is_dir():
            config = json.loads((Path(path) / "scheduler" / "scheduler_config.json").read_text())
        else:
            config = _hub_config(path, scheduler=True)
    except (OSError, ValueError) as e:
        raise BendlabValueError(f"could not read the scheduler config of model {path!r} to choose its steps and "
                                f"guidance "
                                f"({str(e).splitlines()[0]}); accepted: a local folder, a hub id in the local cache or "
                                "with network access, or give steps and guidance") from None
    return config.get("_class_name", ""), config


def _component_config(path: str, component: str) -> dict:
    """The config.json of a model's component ("unet", "vae"): a local folder's file, or a hub id's, fetched
    alone by diffusers from its local cache (or the network, if the user allows it)."""
    if Path(path).is_dir():
        return json.loads((Path(path) / component / "config.json").read_text())
    import warnings

    import diffusers
    cls = {"unet": diffusers.UNet2DConditionModel, "vae": diffusers.AutoencoderKL}[component]
    with warnings.catch_warnings():  # huggingface_hub's deprecation notice about an argument diffusers passes
        warnings.simplefilter("ignore", UserWarning)
        try:
            return cls.load_config(path, subfolder=component)
        except OSError as e:  # not in the local cache and no network
            raise OSError(f"could not read the {component} config of model {path!r} ({str(e).splitlines()[0]}); "
                          "accepted: a local folder, or a hub id in the local cache or with network access") from None


