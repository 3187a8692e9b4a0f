"""Loading weights (safetensors only): the pipeline of a resolved model, cached per (model, device, dtype), with
the scheduler `sampler` chooses; its VAE alone; the image-to-image pipeline sharing its components; and the
fingerprint of its weights that render folders record.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os

import torch

from .device import check_device
from .adapter import check_motion_adapter
from .family import ANIMATEDIFF, SD, family, family_of
from .folder import _index, resolve
from .sampler import keeps_own_scheduler

@contextlib.contextmanager
def quiet_loading():
    """Silence the notices diffusers and transformers print while a model loads (progress bars, the
    safety-checker note, "requires torchvision" for an image processor bendlab never uses): notebooks then show
    only what matters. Each library's settings are restored afterwards."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog
    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in (dlog, tlog)]
    for lib, _, _ in saved:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, level, bars in saved:
            lib.set_verbosity(level)
            if bars:
                lib.enable_progress_bar()


class _EmptyFloat32Notice(logging.Filter):
    """diffusers 0.42 warns on every dtype cast of a model even when it keeps no module in float32 ("...: []");
    SDXL's pipelines cast their VAE on every call, so without this the notice prints once per frame."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


_NOTICE = _EmptyFloat32Notice()


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str, dtype: torch.dtype, motion_adapter: str | None = None):
    fam = family(_index(path).get("_class_name", ""), path, video=True)
    logging.getLogger("diffusers.models.modeling_utils").addFilter(_NOTICE)  # once: a logger keeps a set
    with quiet_loading():
        import diffusers
        cls = getattr(diffusers, (ANIMATEDIFF if motion_adapter else fam).txt2img)
        extra = dict(safety_checker=None, requires_safety_checker=False) if fam is SD and not motion_adapter else {}
        try:
            if motion_adapter:  # the SD folder's components, its UNet turned into a UNetMotionModel by diffusers
                extra["motion_adapter"] = diffusers.MotionAdapter.from_pretrained(motion_adapter, dtype=dtype,
                                                                                  use_safetensors=True)
            pipe = cls.from_pretrained(path, dtype=dtype, use_safetensors=True, **extra)
        except OSError as e:  # hub id not in the local cache and no network, or a folder without safetensors
            raise OSError(f"could not load model {path!r}: {str(e).splitlines()[0]}") from None
    if fam.medium == "image" and not keeps_own_scheduler(pipe.scheduler):  # a video transformer keeps its own
        pipe.scheduler = diffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


@functools.lru_cache(maxsize=2)
def load_vae(model: str | os.PathLike | None = None, device: str | None = None):
    """The model's VAE alone, float32 on `device` (default as `load_pipeline`): what `tween` decodes the
    in-between frames with where no pipeline is loaded in this process (a render on Ray workers)."""
    path = resolve(model)
    device = check_device(device)
    with quiet_loading():
        from diffusers import AutoencoderKL
        try:
            vae = AutoencoderKL.from_pretrained(path, subfolder="vae", use_safetensors=True)
        except OSError as e:
            raise OSError(f"could not load the VAE of model {path!r}: {str(e).splitlines()[0]}") from None
    return vae.to(device).eval()


def load_pipeline(model: str | os.PathLike | None = None, device: str | None = None,
                  dtype: torch.dtype | None = None, motion_adapter: str | os.PathLike | None = None):
    """The model's pipeline (StableDiffusionPipeline or StableDiffusionXLPipeline, from its model_index.json) with
    a DDIM scheduler (few-step models keep theirs: `keeps_own_scheduler`), cached per (model, device, dtype); a
    Wan 2.x or LTX-Video folder loads as its WanPipeline or LTXPipeline with its own (flow matching) scheduler
    (render it with `video.clip.render_clip`, or the video method).

    model:  None or "bendlab-tiny-sd" (the shipped offline model), a local diffusers folder (safetensors), or a
            hub id of SD v1.x/2.x or SDXL (e.g. "CompVis/stable-diffusion-v1-4", downloaded by diffusers only if
            you ask)
    device: "cuda" when available, else "cpu"
    dtype:  float16 on CUDA, float32 on CPU
    motion_adapter: a diffusers MotionAdapter folder (safetensors; `models.adapter`): the model (SD v1.x) and
            the adapter then load as diffusers' AnimateDiffPipeline (family `ANIMATEDIFF`, a video pipeline)
    """
    path = resolve(model, video=True)
    adapter = None if motion_adapter is None else check_motion_adapter(motion_adapter, path)
    device = check_device(device)
    dtype = dtype or (torch.float16 if device.startswith("cuda") else torch.float32)
    return _load(path, device, dtype, adapter)


def img2img_pipeline(pipe):
    """The image-to-image pipeline of `pipe`'s family, sharing its components (no extra memory)."""
    import diffusers
    cached = getattr(pipe, "_bendlab_img2img", None)
    if cached is None:
        cls = getattr(diffusers, family_of(pipe).img2img)
        options = {k: v for k, v in pipe.config.items() if k in ("requires_safety_checker",
                                                                 "force_zeros_for_empty_prompt")}
        with quiet_loading():  # the safety-checker notice: bendlab renders with no safety checker
            cached = cls(**pipe.components, **options)
        cached.set_progress_bar_config(disable=True)
        pipe._bendlab_img2img = cached
    return cached


def weights_fingerprint(pipe) -> str:
    """A short id of a loaded pipeline's weights (its denoiser: the UNet, with AnimateDiff's motion modules, or a
    video transformer; the VAE; the text encoders): every tensor's name, shape and first 16 values. Render folders
    record it, so frames of a retrained or other model are never mixed on resume."""
    import hashlib
    h = hashlib.sha1()
    fam = family_of(pipe)
    for comp in (fam.denoiser_of(pipe), pipe.vae, *(getattr(pipe, name) for name in fam.text_encoders)):
        for name, t in comp.state_dict().items():
            h.update(f"{name}{tuple(t.shape)}".encode())
            h.update(t.detach().flatten()[:16].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
