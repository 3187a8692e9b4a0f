"""Do these bends and settings fit this model and render? One-line `BendlabValueError`s raised before any model
work: steps, guidance, seed and strength; a module, VAE or attention path against the model's denoiser (a
`Skeleton` before the weights load); a token:WORD against the model's tokenizer.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..checks import BendlabValueError
from .. import models
from ..models.family import family_of
from ..paper import GUIDANCE, SEED, STEPS

if TYPE_CHECKING:  # only annotations: the settings' checks and defaults are read without torch (the CLI's help)
    from .bends import Bend


# ------------------------------------------------------------------------------------------ validation
OUTPUT_TYPES = ("pil", "np", "pt", "latent")  # what diffusers' pipelines return
STRENGTH = 0.5  # image-to-image strength when none is given (`render.render`, `render.render_img2img`, a video)


def check_settings(steps=STEPS, guidance=GUIDANCE, seed=SEED, strength=None, output_type="pil") -> None:
    """One-line errors for out-of-range render settings, raised before any model work."""
    from ..checks import check_choice, check_int, check_number
    check_int("steps", steps, 1, 1000, accepted="the paper uses 50")
    check_number("guidance", guidance, 0, accepted="the paper uses 7.5; <= 1 turns classifier-free guidance off")
    check_int("seed", seed, 0, 2**63 - 1)
    if strength is not None:
        check_number("strength", strength, 0, 1, low_open=True, high_open=True,
                     accepted="0 < strength < 1 (0 keeps the init image, 1 ignores it)")
        if img2img_layers(steps, strength) < 1:
            raise BendlabValueError(f"strength {strength} with {steps} steps runs no denoising step; accepted: "
                                    f"strength >= {1 / steps:.3g}")
    check_choice("output_type", output_type, OUTPUT_TYPES)


def check_pipe(pipe, video: bool = False) -> None:
    """A one-line error unless `pipe` is None or a loaded pipeline of a supported image family (`models.FAMILIES`;
    with video=True a video family's too, `models.VIDEO_FAMILIES`: what `make_video` renders the video method on)."""
    import diffusers
    if pipe is None:
        return
    families = (*models.FAMILIES, *(models.VIDEO_FAMILIES if video else ()))
    classes = tuple(getattr(diffusers, name) for f in families for name in (f.txt2img, f.img2img))
    if not isinstance(pipe, classes):
        what = type(pipe).__name__ if isinstance(pipe, diffusers.DiffusionPipeline) else f"{pipe!r:.60}"
        more = f", or a video pipeline ({', '.join(f.txt2img for f in models.VIDEO_FAMILIES)})" if video else ""
        raise BendlabValueError(f"pipe {what} is not a supported pipeline; accepted: None or "
                                f"bendlab.load_pipeline(...), "
                                f"or a diffusers {models.SUPPORTED}{more}")


def img2img_layers(steps: int, strength: float) -> int:
    """How many denoising steps image-to-image actually runs (its number of layers N)."""
    return min(int(steps * strength), steps)


def check_bends(pipe, bends: Sequence[Bend], n_layers: int, shape: tuple) -> None:
    """One-line errors for bends that do not fit this pipeline and render, before any model work."""
    for b in bends:
        b.check(n_layers, shape)
        if b.kind == "unet":
            fam = family_of(pipe)
            try:
                fam.denoiser_of(pipe).get_submodule(b.module)
            except AttributeError:
                names = fam.blocks(fam.denoiser_of(pipe))
                raise BendlabValueError(f"UNet has no module {b.module!r}; accepted: {', '.join(names)} or a dotted "
                                        "child such as 'up_blocks.1' (`bendlab targets` lists them)") from None
        if b.kind == "vae":
            check_vae_module(pipe.vae, b.path)
        if b.kind == "attn":
            check_attn_module(family_of(pipe).denoiser_of(pipe), b)


def attention_modules(denoiser) -> list[tuple[str, object]]:
    """(path, module) of every diffusers `Attention` module of a denoiser (a loaded one, or a `models.Skeleton`'s on
    the meta device), in the order of `named_modules` (`models.Family.attention_modules`)."""
    from ..models.family import Family
    return Family.attention_modules(denoiser)


def check_attn_module(unet, b: Bend) -> None:
    """A one-line error unless an attention bend's path names an `Attention` module of `unet`, and (for a token
    selection) a cross-attention one."""
    from diffusers.models.attention_processor import Attention
    found = attention_modules(unet)
    example = next((n for n, m in found if m.is_cross_attention), found[0][0] if found else None)
    accepted = (f"accepted: the path of an attention module, e.g. attn:{example} (`bendlab targets` lists them)"
                if example else "accepted: a UNet with attention modules")
    try:
        module = unet.get_submodule(b.path)
    except AttributeError:
        raise BendlabValueError(f"UNet has no module {b.path!r}; {accepted}") from None
    if not isinstance(module, Attention):
        raise BendlabValueError(f"UNet module {b.path!r} is a {type(module).__name__}, not an attention module; "
                                f"{accepted}")
    if b.where.kind == "token" and not module.is_cross_attention:
        raise BendlabValueError(f"where {b.where} selects prompt tokens, but {b.target} is self-attention (its keys "
                                f"are "
                                "image positions); accepted: where='all', or a cross-attention module (attn2) for a "
                                "token")


def check_token_words(model: "models.Model", bends: Sequence[Bend], prompts: Sequence[str]) -> None:
    """One-line errors for a token bend (text or cross-attention) whose word is not in each of the prompts
    (token:WORD) or whose index is beyond the tokenizer's length (token:I), before the model loads: the tokenizer
    is the loaded pipeline's, or read from a local folder's tokenizer files (no weights). A hub id's tokens are
    checked when the render starts (`bending`), as every token is there too."""
    words = [b for b in bends if b.where.kind == "token"]
    tok = _tokenizer(model) if words else None
    for b in words if tok is not None else ():
        for p in prompts:
            b.where.token_positions(tok, p)


def _tokenizer(model: "models.Model"):
    if model.pipe is not None:
        return family_of(model.pipe).tokenizer_of(model.pipe)
    return _folder_tokenizer(model.path) if Path(model.path).is_dir() else None


@functools.lru_cache(maxsize=4)
def _folder_tokenizer(path: str):
    """The tokenizer a local model folder's pipeline loads (the class its model_index.json names), or None if it
    cannot be read here (the loader reports that)."""
    import transformers
    try:
        _, cls = json.loads((Path(path) / "model_index.json").read_text())["tokenizer"]
        return getattr(transformers, cls).from_pretrained(Path(path) / "tokenizer")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


VAE_DECODE_PARTS = ("decoder", "post_quant_conv")  # the parts of a VAE that run when it decodes


def check_vae_module(vae, path: str) -> None:
    """A one-line error unless `path` names a module of `vae` (a loaded one, or a `models.Skeleton`'s on the
    meta device) that runs when it decodes."""
    names = [f"vae:decoder.{n}" for n, _ in vae.decoder.named_children()]
    accepted = (f"accepted: {', '.join(names)} or a dotted child such as vae:decoder.up_blocks.1 (`bendlab targets` "
                "lists them)")
    try:
        vae.get_submodule(path)
    except AttributeError:  # a module that is not there is named as such, whatever part it would belong to
        raise BendlabValueError(f"VAE has no module {path!r}; {accepted}") from None
    if path.split(".")[0] not in VAE_DECODE_PARTS:
        raise BendlabValueError(f"VAE module {path!r} runs when an image is encoded, not when the VAE decodes; "
                                f"{accepted}")


