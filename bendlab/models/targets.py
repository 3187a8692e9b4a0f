"""What a bend can act on (`bend_targets`, `bendlab targets`): the latent, the text embedding, the denoiser's
blocks and attention modules, the VAE decoder's blocks, with shapes from one forward on the meta device. On a
video transformer (Wan 2.x, LTX-Video): the latent and the transformer blocks, per latent frame (`frame_targets`).

Building the modules needs torch and diffusers (seconds); a model folder may keep the list in a table (`TABLE`,
written by `write_table`; the shipped model's is written when it is trained), read instead while its configs are
the ones it was made from, so `bendlab targets` prints at once. tests/models/test_targets.py holds the shipped
table to what the modules list.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .family import ANIMATEDIFF, SD, Family, family
from .adapter import check_motion_adapter
from .folder import _component_config, _index, resolve
from ..checks import BendlabValueError

if TYPE_CHECKING:  # annotations: a table is read without torch
    import torch

# ------------------------------------------------------------------------------------------ bend targets
# the modules a feature map flows through, listed as targets: these top-level parts of a UNet or VAE decoder,
# their numbered blocks and the blocks' resnets, attentions and samplers (any deeper dotted child is accepted too)
FEATURE_MAP_PARTS = ("conv_in", "down_blocks", "mid_block", "up_blocks", "conv_norm_out", "conv_act", "conv_out")
_LISTED = re.compile(r"(?P<part>[a-z_]+)(\.\d+)?(\.[a-z_]+\.\d+)?")


@dataclass(frozen=True)
class Target:
    """Something a bend can act on: the latent, or a module whose output it bends.

    name: as a bend names it ("latent"; a UNet module as `Bend(..., module=name)` and `--module` take it;
          "vae:decoder.up_blocks.1" for the VAE decoder; "attn:PATH" for an attention module's probabilities);
          kind: "latent" or the module's class ("Attention (self)" / "Attention (cross)"); shape: (C, H, W) of what
          is bent at the model's native size, (queries, keys) for attention (None where it could not be computed
          on the meta device);
          bendable: False for targets planned but not yet implemented."""

    name: str
    kind: str
    shape: tuple | None
    bendable: bool = True


def _listed(model: torch.nn.Module, prefix: str, x: torch.Tensor, **kwargs) -> list[tuple[str, str, tuple | None]]:
    """(name, class, (C, H, W) or None) of `model`'s listed modules, shapes from one forward on the meta device
    with `x` (what a module bend's hook bends: the output, or a tuple's first element)."""
    import torch
    names = {n: type(m).__name__ for n, m in model.named_modules()
             if (hit := _LISTED.fullmatch(n)) and hit["part"] in FEATURE_MAP_PARTS
             and not isinstance(m, torch.nn.ModuleList)}
    shapes = {}

    def hook_for(name):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            if isinstance(out, torch.Tensor):
                shapes[name] = tuple(out.shape[1:])
        return hook

    hooks = [model.get_submodule(n).register_forward_hook(hook_for(n)) for n in names]
    try:
        with torch.no_grad():
            model(x, **kwargs)
    except (RuntimeError, NotImplementedError, TypeError, ValueError, KeyError, AttributeError):
        shapes = {}  # an architecture whose forward needs more than these inputs: names and classes only
    finally:
        for h in hooks:
            h.remove()
    order = sorted(names, key=lambda n: FEATURE_MAP_PARTS.index(_LISTED.fullmatch(n)["part"]))  # as data flows
    return [(prefix + n, names[n], shapes.get(n)) for n in order]


def _attention(unet, x: torch.Tensor, **kwargs) -> list[tuple[str, str, tuple | None]]:
    """("attn:PATH", "Attention (self|cross)", (queries, keys) or None) of every diffusers `Attention` module of
    `unet`, in the order data flows through the UNet, the shapes from one forward on the meta device with `x`."""
    import torch
    from diffusers.models.attention_processor import Attention
    modules = {n: m for n, m in unet.named_modules() if isinstance(m, Attention)}
    shapes = {}

    def hook_for(name):
        def hook(module, args, kw):
            h = args[0] if args else kw["hidden_states"]
            q = h.shape[1] if h.ndim == 3 else h.shape[2] * h.shape[3]
            e = kw.get("encoder_hidden_states")
            shapes[name] = (q, q if e is None else e.shape[1])
        return hook

    hooks = [m.register_forward_pre_hook(hook_for(n), with_kwargs=True) for n, m in modules.items()]
    try:
        with torch.no_grad():
            unet(x, **kwargs)
    except (RuntimeError, NotImplementedError, TypeError, ValueError, KeyError, AttributeError):
        shapes = {}  # names and kinds only, as `_listed`
    finally:
        for h in hooks:
            h.remove()
    order = sorted(modules, key=lambda n: FEATURE_MAP_PARTS.index(n.split(".")[0])
                   if n.split(".")[0] in FEATURE_MAP_PARTS else len(FEATURE_MAP_PARTS))
    return [(f"attn:{n}", f"Attention ({'cross' if modules[n].is_cross_attention else 'self'})", shapes.get(n))
            for n in order]


def _unet_inputs(config) -> dict:
    """Meta-device inputs for one UNet forward at its native size: text conditioning, and SDXL's added ones."""
    import torch
    dim = config.cross_attention_dim
    dim = dim[0] if isinstance(dim, (list, tuple)) else dim
    kwargs = dict(timestep=torch.tensor(1), encoder_hidden_states=torch.zeros(1, 77, dim))
    if config.addition_embed_type == "text_time":
        n = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = dict(text_embeds=torch.zeros(1, n), time_ids=torch.zeros(1, 6))
    return kwargs


def bend_targets(model: str | os.PathLike | None = None,
                 motion_adapter: str | os.PathLike | None = None) -> list[Target]:
    """What a bend can target on `model` (None: the shipped model), read from its unet and vae configs with the
    modules built on the meta device: no weights load. The latent; the prompt embedding (target "text",
    tokens x dim); the UNet modules a module bend accepts
    (`bend.fit.check_bends`: any path of the UNet; listed are `FEATURE_MAP_PARTS`, their blocks and the blocks'
    resnets, attentions and samplers, in the order data flows through them); the UNet's attention modules (target
    "attn:PATH", kind "Attention (self)" for attn1 or "Attention (cross)" for attn2, shape (query positions, keys):
    e.g. (16, 77) for a 4x4 block attending to 77 prompt tokens); the VAE decoder's (a bend's target
    "vae:decoder...", acting when the VAE decodes). A hub id's configs come from the local cache
    (one-line error if absent). A local folder with a current table (`read_table`: the shipped model has one) is
    read from it, without building the modules. With a `motion_adapter` folder (`models.adapter`): the targets of
    that AnimateDiff pairing, its UNet's motion modules among the blocks (each module's output: one row per frame)
    and their temporal attention (queries and keys: the window's frames, shape ("F", "F"); bent per query frame,
    `Family.frame_target_error`), the other shapes per frame.

    A Wan 2.x or LTX-Video folder lists what the video method bends on it, per latent frame (`frame_targets`).

    Notebook: notebooks/01_operators.ipynb
    """
    path = resolve(model, video=True)
    if motion_adapter is not None:
        return built_targets(path, check_motion_adapter(motion_adapter, path))
    fam = targets_family(path)
    if fam.frame_blocks:
        return frame_targets(path, fam)
    tabled = read_table(path)
    return tabled if tabled is not None else built_targets(path)


def built_targets(path: str, motion_adapter: str | None = None) -> list[Target]:
    """`bend_targets` of a resolved model (`folder.resolve`), from its modules built on the meta device (with a
    checked motion adapter folder: the UNetMotionModel diffusers makes of the two, run on a clip of 2 frames)."""
    import torch
    from diffusers import AutoencoderKL

    from .model import _skeleton
    sk = _skeleton(path)
    c = sk.unet.config
    with torch.device("meta"):
        latent = torch.zeros(1, c.in_channels, c.sample_size, c.sample_size)
        denoiser, x, inputs = sk.unet, latent, _unet_inputs(c)
        if motion_adapter is not None:
            from diffusers import MotionAdapter, UNetMotionModel
            adapter = MotionAdapter.from_config(MotionAdapter.load_config(motion_adapter))
            denoiser = UNetMotionModel.from_unet2d(sk.unet, adapter, load_weights=False)
            x = torch.zeros(1, c.in_channels, 2, c.sample_size, c.sample_size)  # (B, C, F, h, w): 2 frames
            inputs["encoder_hidden_states"] = inputs["encoder_hidden_states"].repeat(2, 1, 1)  # one per frame
        unet = _listed(denoiser, "", x, **inputs)
        attention = _attention(denoiser, x, **inputs)
        if motion_adapter is not None:  # temporal attention: the window's frames attend to each other, any length
            attention = [(n, k, ("F", "F") if "motion_modules" in n else shape) for n, k, shape in attention]
        try:
            vae = AutoencoderKL.from_config(_component_config(path, "vae"))
        except (ValueError, KeyError, TypeError) as e:
            raise BendlabValueError(f"model {path!r} has an unreadable vae config ({type(e).__name__}: {e}); accepted: "
                                    "a folder written by a pipeline's save_pretrained") from None
        decoder = _listed(vae.decoder, "vae:decoder.", torch.zeros(1, vae.config.latent_channels, c.sample_size,
                                                                   c.sample_size))
    text = tuple(_unet_inputs(c)["encoder_hidden_states"].shape[1:])  # (tokens, dim) the UNet is conditioned on
    return ([Target("latent", "latent", tuple(latent.shape[1:])), Target("text", "prompt embedding", text)]
            + [Target(*t) for t in unet] + [Target(*t) for t in attention] + [Target(*t) for t in decoder])


def targets_family(model: str | os.PathLike | None = None,
                   motion_adapter: str | os.PathLike | None = None) -> Family:
    """The family whose targets `bend_targets` lists (read without torch): AnimateDiff with a motion adapter, else
    the one the model's model_index.json names, a video transformer's too; SD for a hub id not in the local cache
    (listing its targets then says so in one line)."""
    if motion_adapter is not None:
        return ANIMATEDIFF
    path = resolve(model, video=True)
    try:
        return family(_index(path).get("_class_name", ""), path, video=True)
    except OSError:
        return SD


def frame_targets(path: str, fam: Family) -> list[Target]:
    """`bend_targets` of a video transformer's folder (`fam`: Wan 2.x or LTX-Video), at its pipeline's default
    size (`model.call_default`: Wan 480x832, LTX-Video 512x704), each per latent frame: the latent ("latent", (C, h,
    w): the family's canonical view, one row per latent frame) and the transformer blocks ("unet:blocks.K" /
    "unet:transformer_blocks.K") with the modules inside each but its norms ("unet:blocks.K.attn1", ...), whose
    tokens (B, F' h w, D) a bend views as (B F', D, h / p, w / p) (`bend.hooks._apply_frames`; p the patch side):
    shape (D, h / p, w / p). D comes from one forward on the meta device on a grid of 2 x 2 patches and 2 latent
    frames (the feature width does not depend on the grid; a module whose output is not the clip's tokens is left
    out); None where that forward fails. The other kinds are refused (`Family.refusals`)."""
    import inspect

    import torch

    from .model import _skeleton, call_default
    sk = _skeleton(path, True)
    denoiser, c = fam.denoiser_of(sk), fam.denoiser_of(sk).config
    _, h, w = fam.latent_grid(sk, *(call_default(fam, k) for k in ("num_frames", "height", "width")))
    p = fam.patch_side(sk)
    blocks = denoiser.get_submodule(fam.frame_blocks)
    names = {}
    for k, block in enumerate(blocks):
        names[f"{fam.frame_blocks}.{k}"] = type(block).__name__
        names.update({f"{fam.frame_blocks}.{k}.{n}": type(m).__name__ for n, m in block.named_children()
                      if not n.startswith("norm")})
    widths: dict[str, int] = {}
    tokens = 2 * 2 * 2  # latent frames x patches per frame of the probing grid

    def hook_for(name):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            if isinstance(out, torch.Tensor) and out.ndim == 3 and out.shape[1] == tokens:
                widths[name] = out.shape[2]
        return hook

    text_dim = getattr(c, "text_dim", None) or getattr(c, "caption_channels", None) or c.cross_attention_dim
    grid = (2, 2 * p, 2 * p)
    hooks = [denoiser.get_submodule(n).register_forward_hook(hook_for(n)) for n in names]
    try:
        with torch.device("meta"), torch.no_grad():
            call = dict(hidden_states=torch.zeros(fam.layout.shape(1, c.in_channels, grid)),
                        timestep=torch.ones(1), encoder_hidden_states=torch.zeros(1, 8, text_dim),
                        encoder_attention_mask=torch.ones(1, 8), num_frames=grid[0], height=grid[1], width=grid[2])
            accepted = inspect.signature(denoiser.forward).parameters
            denoiser(**{k: v for k, v in call.items() if k in accepted})
        shaped = True
    except (RuntimeError, NotImplementedError, TypeError, ValueError, KeyError, AttributeError, IndexError):
        shaped = False  # names and classes only, as `_listed`
    finally:
        for hook in hooks:
            hook.remove()
    rows = [Target(f"unet:{n}", kind, (widths[n], h // p, w // p) if shaped else None)
            for n, kind in names.items() if not shaped or n in widths]
    return [Target("latent", "latent", (c.in_channels, h, w))] + rows


# ------------------------------------------------------------------------------------------ a model's table
TABLE = "bend_targets.json"  # in a model folder: its `bend_targets`, and the configs they were read from


def _configs_sha256(path: str) -> str:
    """The sha256 of what the targets are read from: model_index.json, the denoiser's and the VAE's config.json."""
    fam = family(_index(path).get("_class_name", ""), path)
    h = hashlib.sha256()
    for name in ("model_index.json", f"{fam.denoiser}/config.json", "vae/config.json"):
        h.update((Path(path) / name).read_bytes())
    return h.hexdigest()


def read_table(path: str) -> list[Target] | None:
    """The targets in a resolved model folder's table, or None where there is none or its configs have changed
    since it was written (the modules then list them: `built_targets`)."""
    try:
        table = json.loads((Path(path) / TABLE).read_text())
        if table["configs_sha256"] != _configs_sha256(path):
            return None
        return [Target(t["name"], t["kind"], None if t["shape"] is None else tuple(t["shape"]), t["bendable"])
                for t in table["targets"]]
    except (OSError, ValueError, KeyError, TypeError):  # no table (a hub id too), or not one: the modules list them
        return None


def write_table(model: str | os.PathLike | None = None) -> Path:
    """Write a local model folder's `TABLE` (None: the shipped model) from its modules: `training/train.py` does
    for the shipped model. Returns the file."""
    from ..files import write_text_atomic
    path = resolve(model)
    if not Path(path).is_dir():
        raise BendlabValueError(f"model {path!r} is not a local folder; accepted: a diffusers folder to write "
                                f"{TABLE} into")
    rows = ",\n".join("  " + json.dumps(asdict(t)) for t in built_targets(path))
    file = Path(path) / TABLE
    write_text_atomic(file, f'{{"configs_sha256": "{_configs_sha256(path)}",\n "targets": [\n{rows}\n]}}\n')
    return file
