"""Load a Stable Diffusion pipeline: the shipped offline model by default, or any SD v1.x, 2.x or SDXL hub id or
local diffusers folder, through the same code path. The pipeline class comes from the model's model_index.json
(`FAMILIES`); weights are read as safetensors only; the scheduler is DDIM configured from the model's own
scheduler config (the paper's sampler), except few-step models, which keep theirs (`keeps_own_scheduler`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .checks import BendlabValueError, MissingFileError, is_int

SHIPPED = Path(__file__).parent / "models" / "bendlab-tiny-sd"
DEFAULT_MODEL = "bendlab-tiny-sd"


@dataclass(frozen=True)
class Family:
    """A family of 4-channel-latent UNet pipelines bendlab bends: its diffusers classes and folder layout."""

    name: str
    txt2img: str            # the diffusers pipeline class for text-to-image
    img2img: str            # ... and for image-to-image (built from the same components, no extra memory)
    components: tuple       # the sub-folders a saved pipeline has
    text_encoders: tuple    # the text encoders whose weights make a render (`weights_fingerprint`)
    aliases: tuple = ()     # other pipeline classes saved with the same components (loaded as txt2img)


SD = Family("SD v1.x / 2.x", "StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline",
            ("unet", "vae", "text_encoder", "tokenizer", "scheduler"), ("text_encoder",),
            ("LatentConsistencyModelPipeline", "LatentConsistencyModelImg2ImgPipeline"))  # LCM models
SDXL = Family("SDXL", "StableDiffusionXLPipeline", "StableDiffusionXLImg2ImgPipeline",
              ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"),
              ("text_encoder", "text_encoder_2"))
FAMILIES = (SD, SDXL)
SUPPORTED = ", ".join(f"{f.txt2img} ({f.name})" for f in FAMILIES)
# pipelines whose denoiser is a transformer on a 16-channel latent: refused, with the reason
TRANSFORMER_PIPELINES = ("StableDiffusion3Pipeline", "StableDiffusion3Img2ImgPipeline", "FluxPipeline",
                         "FluxImg2ImgPipeline", "SanaPipeline", "AuraFlowPipeline")


def family(class_name: str, model: str = "") -> Family:
    """The family of a pipeline class named in a model_index.json; a one-line error for any other class."""
    for f in FAMILIES:
        if class_name in (f.txt2img, f.img2img, *f.aliases):
            return f
    where = f"model {model!r}" if model else "model"
    if class_name in TRANSFORMER_PIPELINES:
        raise ValueError(f"{where} holds a {class_name}, a 16-channel-latent transformer model; accepted: "
                         f"4-channel-latent UNet pipelines ({SUPPORTED}), since the channel operators (rotations, "
                         "reflections) are defined on 4 latent channels")
    raise ValueError(f"{where} holds a {class_name or 'unknown'} pipeline; accepted: {SUPPORTED}")


def family_of(pipe) -> Family:
    """The family of a loaded pipeline (SDXL pipelines have a second text encoder)."""
    return SDXL if getattr(pipe, "text_encoder_2", None) is not None else SD


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve(model: str | os.PathLike | None) -> str:
    """The folder or hub id to load; checks a local folder is a supported pipeline (one-line errors)."""
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
    fam = family(meta.get("_class_name", ""), s)
    missing = [c for c in fam.components if not (p / c).is_dir()]
    if missing:
        raise BendlabValueError(f"model folder {s!r} is not a complete {fam.txt2img} (missing {', '.join(missing)}); "
                         f"accepted: a folder written by {fam.txt2img}.save_pretrained")
    for c in ("unet", "vae", *fam.text_encoders):  # bendlab reads safetensors only: refused here, not in diffusers
        if not any((p / c).glob("*.safetensors")):
            found = sorted(f.name for f in (p / c).iterdir() if f.suffix in (".bin", ".ckpt", ".pt", ".pth"))
            raise BendlabValueError(f"model folder {s!r} has no .safetensors weights in {c}"
                                    f"{f' (only {found[0]}: pickle files are not loaded)' if found else ''}; accepted: "
                                    "weights saved as safetensors (save_pretrained's default)")
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


class _EmptyFloat32Notice(logging.Filter):
    """diffusers 0.42 warns on every dtype cast of a model even when it keeps no module in float32 ("...: []");
    SDXL's pipelines cast their VAE on every call, so without this the notice prints once per frame."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "should be kept in float32: []" not in record.getMessage()


_NOTICE = _EmptyFloat32Notice()


@functools.lru_cache(maxsize=2)
def _load(path: str, device: str, dtype: torch.dtype):
    fam = family(_index(path).get("_class_name", ""), path)
    logging.getLogger("diffusers.models.modeling_utils").addFilter(_NOTICE)  # once: a logger keeps a set
    with quiet_loading():
        import diffusers
        cls = getattr(diffusers, fam.txt2img)
        extra = dict(safety_checker=None, requires_safety_checker=False) if fam is SD else {}
        try:
            pipe = cls.from_pretrained(path, dtype=dtype, use_safetensors=True, **extra)
        except OSError as e:  # hub id not in the local cache and no network, or a folder without safetensors
            raise OSError(f"could not load model {path!r}: {str(e).splitlines()[0]}") from None
    if not keeps_own_scheduler(pipe.scheduler):
        pipe.scheduler = diffusers.DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


# (steps, guidance) each kind of sampler is usually run with (`usual_settings`)
USUAL = {"ddim": (50, 7.5), "lcm": (4, 7.5), "turbo": (1, 0.0)}


def sampler_kind(class_name: str, config) -> str:
    """"lcm" (an LCMScheduler), "turbo" (an Euler sampler with "trailing" timesteps, as SD-Turbo and SDXL-Turbo
    ship) or "ddim" (every other model: it gets DDIM, the paper's sampler)."""
    if class_name == "LCMScheduler":
        return "lcm"
    if class_name.startswith("Euler") and config.get("timestep_spacing") == "trailing":
        return "turbo"
    return "ddim"


def keeps_own_scheduler(scheduler) -> bool:
    """Few-step models keep the sampler they were distilled for: an LCMScheduler (LCM), or an Euler sampler with
    "trailing" timesteps (SD-Turbo). Every other model gets DDIM configured from its own scheduler config (the
    paper's sampler; its prediction type, e.g. SD 2's v-prediction, is kept)."""
    return sampler_kind(type(scheduler).__name__, scheduler.config) != "ddim"


def _sampler_config(path: str) -> tuple[str, dict]:
    """(class name, config) of a model's scheduler: a local folder's file, or a hub id's small config file via
    diffusers (its local cache, or the network if the user allows it)."""
    try:
        if Path(path).is_dir():
            config = json.loads((Path(path) / "scheduler" / "scheduler_config.json").read_text())
        else:
            config = _hub_config(path, scheduler=True)
    except (OSError, ValueError) as e:
        raise ValueError(f"could not read the scheduler config of model {path!r} to choose its steps and guidance "
                         f"({str(e).splitlines()[0]}); accepted: a local folder, a hub id in the local cache or "
                         "with network access, or give steps and guidance") from None
    return config.get("_class_name", ""), config


class Model:
    """A model resolved once: where it is, its shapes from its configs and its usual steps and guidance, handed
    down from the entry point (`engine.render`, `video.render_frames`, ...) instead of re-resolving the name.

        m = Model.of("bendlab-tiny-sd")        # or Model.of(None, pipe=a_loaded_pipeline)
        steps, guidance = m.usual(None, None)  # (50, 7.5) with DDIM
        m.shapes                               # a Skeleton (or the pipe) for checks before weights load
        pipe = m.load("cpu")

    path: the local folder or hub id; shapes: the loaded pipeline, else a `Skeleton` read from a local folder's
    configs, else None (a hub id: checked once loaded). Reading configs costs milliseconds and happens only
    when asked (a hub id's scheduler config only when a usual value is needed).
    """

    def __init__(self, path: str, pipe=None):
        self.path, self.pipe = path, pipe
        self._sampler: str | None = None

    @classmethod
    def of(cls, model=None, pipe=None) -> "Model":
        """The `Model` for a name/folder/hub id (None: the shipped model), or for a loaded `pipe`."""
        if isinstance(model, Model):
            return model
        if pipe is not None:
            return cls("", pipe)
        return _model(resolve(model))

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
        """(steps, guidance) as given, each None replaced by this model's usual value (`USUAL`)."""
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
        return _skeleton(self.path) if Path(self.path).is_dir() else None

    def load(self, device: str | None = None, dtype: torch.dtype | None = None):
        """The pipeline (the given one, or loaded once per (model, device, dtype): `load_pipeline`)."""
        return self.pipe if self.pipe is not None else load_pipeline(self.path, device, dtype)


@functools.lru_cache(maxsize=16)
def _model(path: str) -> Model:
    return Model(path)


def usual_settings(steps: int | None = None, guidance: float | None = None, model=None, pipe=None):
    """(steps, guidance) as given, each None replaced by the model's usual value (`USUAL`): a model sampled with
    DDIM gets the paper's 50 steps and guidance 7.5, an LCM model 4 steps (7.5), a Turbo model 1 step and
    guidance 0 (their model cards' settings). The model's sampler is read only when a value is missing."""
    return Model.of(model, pipe).usual(steps, guidance)


def usual_steps(model: str | os.PathLike | None = None, pipe=None) -> int:
    """The steps used when none are given (`usual_settings`): 50 with DDIM, 4 for LCM, 1 for Turbo."""
    return usual_settings(None, 0.0, model, pipe)[0]


def is_stochastic(scheduler) -> bool:
    """Samplers that add fresh noise at each step (LCM, ancestral, DDPM): their renders are seeded per call, and
    a render cannot branch from another's intermediate latent (the noise drawn after it would differ)."""
    return type(scheduler).__name__ in ("LCMScheduler", "EulerAncestralDiscreteScheduler", "DDPMScheduler")


def check_device(device: str | None) -> str:
    """The torch device to use: None -> cuda when available, else cpu; one-line errors for anything else."""
    if device is None:
        return default_device()
    if not isinstance(device, str) or not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device):
        raise BendlabValueError(f"device {device!r} is not a device; accepted: cpu, cuda, cuda:N, mps")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BendlabValueError(f"device {device!r} asked for but no CUDA GPU is available; accepted: 'cpu'")
        n = torch.cuda.device_count()
        if ":" in device and int(device.split(":")[1]) >= n:
            raise BendlabValueError(f"device {device!r} does not exist; accepted: cuda:0..cuda:{n - 1}")
    if device == "mps" and not torch.backends.mps.is_available():
        raise BendlabValueError("device 'mps' asked for but no Apple GPU is available; accepted: 'cpu'")
    return device


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_threads(threads) -> int | None:
    """None (torch's choice) or a number of CPU threads in 1..the CPUs this process may use."""
    n = available_cpus()
    if threads is not None and (not is_int(threads) or not 1 <= threads <= n):
        raise BendlabValueError(f"threads {threads!r} is outside 1..{n}; accepted: 1 to the {n} CPUs this process may "
                                "use")
    return threads


@dataclass(frozen=True)
class Skeleton:
    """A model's shapes without its weights: the UNet built on the meta device from its config (so module names
    and the latent size are known), the VAE's scale factor and the VAE, built the same way. Quacks like a pipeline
    for `latent_shape` and `check_bends`, so bad bends are refused before the weights load."""

    unet: torch.nn.Module
    vae_scale_factor: int
    vae: torch.nn.Module


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


@functools.lru_cache(maxsize=8)
def _skeleton(path: str) -> Skeleton:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    try:
        unet_cfg = _component_config(path, "unet")
        vae_cfg = _component_config(path, "vae")
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(unet_cfg)
            vae = AutoencoderKL.from_config(vae_cfg)
        scale = 2 ** (len(vae_cfg["block_out_channels"]) - 1)
    except (OSError, ValueError, KeyError, TypeError) as e:
        if isinstance(e, OSError) and not Path(path).is_dir():
            raise  # a hub id not in the local cache: `_component_config` says so in one line
        raise ValueError(f"model folder {path!r} has an unreadable unet or vae config ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); accepted: a folder written by "
                         "a pipeline's save_pretrained") from None
    return Skeleton(unet, scale, vae)


def skeleton(model: str | os.PathLike | None = None) -> Skeleton | None:
    """The shapes of a local model (or the shipped one) read from its configs in milliseconds; None for a hub id
    (its configs are known only once diffusers fetches it)."""
    return Model.of(model).shapes


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
    (`engine.check_bends`: any path of the UNet; listed are `FEATURE_MAP_PARTS`, their blocks and the blocks'
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
            raise ValueError(f"model {path!r} has an unreadable vae config ({type(e).__name__}: {e}); accepted: "
                             "a folder written by a pipeline's save_pretrained") from None
        decoder = _listed(vae.decoder, "vae:decoder.", torch.zeros(1, vae.config.latent_channels, c.sample_size,
                                                                   c.sample_size))
    text = tuple(_unet_inputs(c)["encoder_hidden_states"].shape[1:])  # (tokens, dim) the UNet is conditioned on
    return ([Target("latent", "latent", tuple(latent.shape[1:])), Target("text", "prompt embedding", text)]
            + [Target(*t) for t in unet] + [Target(*t) for t in attention] + [Target(*t) for t in decoder])


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
                  dtype: torch.dtype | None = None):
    """The model's pipeline (StableDiffusionPipeline or StableDiffusionXLPipeline, from its model_index.json) with
    a DDIM scheduler (few-step models keep theirs: `keeps_own_scheduler`), cached per (model, device, dtype).

    model:  None or "bendlab-tiny-sd" (the shipped offline model), a local diffusers folder, or a hub id of
            SD v1.x/2.x or SDXL (e.g. "CompVis/stable-diffusion-v1-4", downloaded by diffusers only if you ask)
    device: "cuda" when available, else "cpu"
    dtype:  float16 on CUDA, float32 on CPU
    """
    path = resolve(model)
    device = check_device(device)
    dtype = dtype or (torch.float16 if device.startswith("cuda") else torch.float32)
    return _load(path, device, dtype)


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
    """A short id of a loaded pipeline's weights (UNet, VAE, text encoders): every tensor's name, shape and first
    16 values. Render folders record it, so frames of a retrained or other model are never mixed on resume."""
    import hashlib
    h = hashlib.sha1()
    for comp in (pipe.unet, pipe.vae, *(getattr(pipe, name) for name in family_of(pipe).text_encoders)):
        for name, t in comp.state_dict().items():
            h.update(f"{name}{tuple(t.shape)}".encode())
            h.update(t.detach().flatten()[:16].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]
