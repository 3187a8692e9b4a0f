"""The resolved `Model`: a name turned once into where the model is, its usual steps and guidance and its
shapes (a `Skeleton` built on the meta device from its configs), then handed down from the entry point, so bends
are checked against the model before its weights load.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .adapter import check_motion_adapter
from .family import ANIMATEDIFF, SD, Family, family, family_of
from .folder import _index, _component_config, _sampler_config, resolve
from .load import load_pipeline
from .sampler import USUAL, sampler_kind
from ..checks import BendlabValueError

class Model:
    """A model resolved once: where it is, its shapes from its configs and its usual steps and guidance, handed
    down from the entry point (`bend.render.render`, `video.render_frames`, ...) instead of re-resolving the name.

        m = Model.of("bendlab-tiny-sd")        # or Model.of(None, pipe=a_loaded_pipeline)
        steps, guidance = m.usual(None, None)  # (50, 7.5) with DDIM
        m.shapes                               # a Skeleton (or the pipe) for checks before weights load
        pipe = m.load("cpu")

    path: the local folder or hub id; shapes: the loaded pipeline, else a `Skeleton` read from a local folder's
    configs (a video transformer's: its pipeline built on the meta device), else None (a hub id: checked once
    loaded). Reading configs costs milliseconds and happens only when asked (a hub id's scheduler config only
    when a usual value is needed). video: a Wan or LTX-Video folder is accepted (where a video is asked for).
    """

    def __init__(self, path: str, pipe=None, motion_adapter: str | None = None, video: bool = False):
        self.path, self.pipe, self.motion_adapter, self.video = path, pipe, motion_adapter, video
        self._sampler: str | None = None

    @classmethod
    def of(cls, model=None, pipe=None, motion_adapter=None, video: bool = False) -> "Model":
        """The `Model` for a name/folder/hub id (None: the shipped model), or for a loaded `pipe`; with a
        `motion_adapter` folder (checked against the model here, `models.adapter`), it loads as AnimateDiff.
        video: where a video is asked for (the video method): a Wan or LTX-Video folder is accepted too (image
        commands refuse it in one line)."""
        if isinstance(model, Model):
            return model
        if pipe is not None:
            return cls("", pipe)
        path = resolve(model, video)
        return _model(path, None if motion_adapter is None else check_motion_adapter(motion_adapter, path), video)

    @property
    def family(self) -> Family:
        """The model's family: the loaded pipeline's, AnimateDiff with a motion adapter, else the one its
        model_index.json names (a hub id's is read by diffusers, from its cache or, if allowed, the network)."""
        if self.pipe is not None:
            return family_of(self.pipe)
        if self.motion_adapter is not None:
            return ANIMATEDIFF
        return family(_index(self.path).get("_class_name", ""), self.path, self.video)

    @property
    def is_transformer_video(self) -> bool:
        """Whether it is a video transformer (Wan, LTX-Video: `models.VIDEO_TRANSFORMERS`); read only where a video
        is asked for (a loaded pipe says so itself)."""
        return (self.video or self.pipe is not None) and self.family.medium == "video" and \
            self.family is not ANIMATEDIFF

    @property
    def sampler(self) -> str:
        """"ddim", "lcm" or "turbo" (`sampler_kind`)."""
        if self._sampler is None:
            if self.pipe is not None:
                self._sampler = sampler_kind(type(self.pipe.scheduler).__name__, self.pipe.scheduler.config)
            else:
                self._sampler = sampler_kind(*_sampler_config(self.path))
        return self._sampler

    def usual(self, steps: int | None = None, guidance: float | None = None) -> tuple:
        """(steps, guidance) as given, each None replaced by this model's usual value (`USUAL`; a video
        transformer's: its pipeline's own defaults, Wan 50 and 5.0, LTX-Video 50 and 3.0)."""
        if (steps is None or guidance is None) and self.is_transformer_video:
            usual = (call_default(self.family, "num_inference_steps"), call_default(self.family, "guidance_scale"))
            return (usual[0] if steps is None else steps), (usual[1] if guidance is None else guidance)
        if steps is None or guidance is None:
            usual = USUAL[self.sampler]
            steps = usual[0] if steps is None else steps
            guidance = usual[1] if guidance is None else guidance
        return steps, guidance

    @property
    def shapes(self):
        """What bends are checked against before work: the loaded pipe, a local folder's `Skeleton`, or None."""
        if self.pipe is not None:
            return self.pipe
        return _skeleton(self.path, self.video) if Path(self.path).is_dir() else None

    def load(self, device: str | None = None, dtype: torch.dtype | None = None):
        """The pipeline (the given one, or loaded once per (model, device, dtype): `load_pipeline`)."""
        return self.pipe if self.pipe is not None else load_pipeline(self.path, device, dtype, self.motion_adapter)


@functools.lru_cache(maxsize=16)
def _model(path: str, motion_adapter: str | None = None, video: bool = False) -> Model:
    return Model(path, motion_adapter=motion_adapter, video=video)


def call_default(fam: Family, name: str):
    """The default of an argument of a family's text-to-video (or -image) pipeline call: the pipeline's own value
    (Wan: num_frames 81, height 480, width 832; LTX-Video: 161, 512, 704)."""
    import inspect

    import diffusers
    return inspect.signature(getattr(diffusers, fam.txt2img).__call__).parameters[name].default


def usual_settings(steps: int | None = None, guidance: float | None = None, model=None, pipe=None):
    """(steps, guidance) as given, each None replaced by the model's usual value (`USUAL`): a model sampled with
    DDIM gets the paper's 50 steps and guidance 7.5, an LCM model 4 steps (7.5), a Turbo model 1 step and
    guidance 0 (their model cards' settings). The model's sampler is read only when a value is missing."""
    return Model.of(model, pipe).usual(steps, guidance)


def usual_steps(model: str | os.PathLike | None = None, pipe=None) -> int:
    """The steps used when none are given (`usual_settings`): 50 with DDIM, 4 for LCM, 1 for Turbo."""
    return usual_settings(None, 0.0, model, pipe)[0]


@dataclass(frozen=True)
class Skeleton:
    """A model's shapes without its weights: the denoiser (the family's class) built on the meta device from its
    config (so module names and the latent size are known), the VAE's scale factor and the VAE, built the same
    way. Quacks like a pipeline for `latent_shape` and `check_bends`, so bad bends are refused before the weights
    load."""

    unet: torch.nn.Module
    vae_scale_factor: int
    vae: torch.nn.Module
    family: Family = SD  # whose denoiser `unet` is (`models.family_of` reads it)


@functools.lru_cache(maxsize=8)
def _skeleton(path: str, video: bool = False):
    import diffusers
    try:
        fam = family(_index(path).get("_class_name", ""), path, video)
    except OSError:  # a hub id not in the local cache: reading its denoiser's config below says so in one line
        fam = SD
    if fam.medium == "video":
        return _transformer_skeleton(path, fam)
    try:
        unet_cfg = _component_config(path, fam.denoiser)
        vae_cfg = _component_config(path, "vae")
        with torch.device("meta"):
            unet = getattr(diffusers, fam.denoiser_class).from_config(unet_cfg)
            vae = diffusers.AutoencoderKL.from_config(vae_cfg)
        scale = 2 ** (len(vae_cfg["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError) as e:
        if isinstance(e, OSError) and not Path(path).is_dir():
            raise  # a hub id not in the local cache: `_component_config` says so in one line
        raise BendlabValueError(f"model folder {path!r} has an unreadable unet or vae config ({type(e).__name__}: "
                                f"{str(e).splitlines()[0] if str(e) else ''}); accepted: a folder written by "
                                "a pipeline's save_pretrained") from None
    return Skeleton(unet, scale, vae, fam)


def _transformer_skeleton(path: str, fam: Family):
    """A video transformer's pipeline (Wan, LTX-Video) built from a local folder's configs with its transformer and
    VAE on the meta device and no text encoder: its own attributes (compression ratios, patches, channels) are
    what `video.clip.check_clip` checks a song's windows against before the weights load."""
    import diffusers
    index = _index(path)
    try:
        with torch.device("meta"):
            parts = {c: getattr(diffusers, index[c][1]).from_config(_component_config(path, c))
                     for c in (fam.denoiser, "vae")}
        scheduler = getattr(diffusers, index["scheduler"][1]).from_config(_sampler_config(path)[1])
        return getattr(diffusers, fam.txt2img)(tokenizer=None, text_encoder=None, scheduler=scheduler, **parts)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise BendlabValueError(f"model folder {path!r} has an unreadable {fam.denoiser}, vae or scheduler config "
                                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); accepted: a "
                                f"folder written by {fam.txt2img}.save_pretrained") from None


def skeleton(model: str | os.PathLike | None = None) -> Skeleton | None:
    """The shapes of a local model (or the shipped one) read from its configs in milliseconds; None for a hub id
    (its configs are known only once diffusers fetches it)."""
    return Model.of(model).shapes


