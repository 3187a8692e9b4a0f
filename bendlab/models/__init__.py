"""Model families and loading (layer 1: imports only the base modules).

A model name is resolved once (`folder.resolve`: the shipped model, a local diffusers folder or a hub id), its
family found from its model_index.json (`family`: what the engine needs to know of a family, the seam every
family plugs into), its sampler chosen (`sampler`), and it is loaded (`load`) or only its shapes read (`model`:
the resolved `Model` and its weightless `Skeleton`); `targets` lists what a bend can act on.
"""

from .adapter import check_motion_adapter, max_frames
from .device import available_cpus, check_device, check_threads, default_device
from .family import (ANIMATEDIFF, FAMILIES, VIDEO_FAMILIES, Family, family, family_of, IMAGE, Layout, PACKED, SD, SDXL, SUPPORTED,
                     TRANSFORMER_PIPELINES, VIDEO)
from .folder import DEFAULT_MODEL, resolve, SHIPPED
from .load import img2img_pipeline, load_pipeline, load_vae, quiet_loading, weights_fingerprint
from .model import Model, Skeleton, skeleton, usual_settings, usual_steps
from .sampler import is_stochastic, keeps_own_scheduler, sampler_kind, USUAL
from .vocabulary import KNOWN_WORDS, prompt_words, SCENES, unknown_words_note
from .targets import bend_targets, FEATURE_MAP_PARTS, Target
