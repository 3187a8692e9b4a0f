"""What a bend can act on (`bend_targets`, `bendlab targets`): the latent, the text embedding, the denoiser's
blocks and attention modules, the VAE decoder's blocks, with shapes from one forward on the meta device.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from .folder import _component_config, resolve
from .model import _skeleton
from ..checks import BendlabValueError

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
    dim = config.cross_attention_dim
    dim = dim[0] if isinstance(dim, (list, tuple)) else dim
    kwargs = dict(timestep=torch.tensor(1), encoder_hidden_states=torch.zeros(1, 77, dim))
    if config.addition_embed_type == "text_time":
        n = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        kwargs["added_cond_kwargs"] = dict(text_embeds=torch.zeros(1, n), time_ids=torch.zeros(1, 6))
    return kwargs


def bend_targets(model: str | os.PathLike | None = None) -> list[Target]:
    """What a bend can target on `model` (None: the shipped model), read from its unet and vae configs with the
    modules built on the meta device: no weights load. The latent; the prompt embedding (target "text",
    tokens x dim); the UNet modules a module bend accepts
    (`bend.fit.check_bends`: any path of the UNet; listed are `FEATURE_MAP_PARTS`, their blocks and the blocks'
    resnets, attentions and samplers, in the order data flows through them); the UNet's attention modules (target
    "attn:PATH", kind "Attention (self)" for attn1 or "Attention (cross)" for attn2, shape (query positions, keys):
    e.g. (16, 77) for a 4x4 block attending to 77 prompt tokens); the VAE decoder's (a bend's target
    "vae:decoder...", acting when the VAE decodes). A hub id's configs come from the local cache
    (one-line error if absent).

    Notebook: notebooks/01_operators.ipynb
    """
    from diffusers import AutoencoderKL
    path = resolve(model)
    sk = _skeleton(path)
    c = sk.unet.config
    with torch.device("meta"):
        latent = torch.zeros(1, c.in_channels, c.sample_size, c.sample_size)
        unet = _listed(sk.unet, "", latent, **_unet_inputs(c))
        attention = _attention(sk.unet, latent, **_unet_inputs(c))
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


