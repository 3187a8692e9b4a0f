"""Model families and loading (layer 1: imports only the base modules).

A model name is resolved once (`folder.resolve`: the shipped model, a local diffusers folder or a hub id), its
family found from its model_index.json (`family`: what the engine needs to know of a family, the seam every
family plugs into), its sampler chosen (`sampler`), and it is loaded (`load`) or only its shapes read (`model`:
the resolved `Model` and its weightless `Skeleton`); `targets` lists what a bend can act on.
"""

from ..lazy import exports

# the names the sub-package offers, by the module that defines each: imported on first use (`bendlab.lazy`)
__all__ = exports(__name__, {
    "adapter": ("check_motion_adapter", "default_motion_adapter", "DEFAULT_MOTION", "max_frames"),
    "device": ("available_cpus", "check_device", "check_threads", "default_device"),
    "family": ("ANIMATEDIFF", "FAMILIES", "VIDEO_FAMILIES", "Family", "family", "family_of", "IMAGE", "Layout",
               "LTX", "PACKED", "SD", "SDXL", "SUPPORTED", "TRANSFORMER_PIPELINES", "VIDEO", "VIDEO_TRANSFORMERS",
               "WAN"),
    "folder": ("DEFAULT_MODEL", "resolve", "SHIPPED"),
    "load": ("img2img_pipeline", "load_pipeline", "load_vae", "quiet_loading", "weights_fingerprint"),
    "model": ("call_default", "Model", "Skeleton", "skeleton", "usual_settings", "usual_steps"),
    "sampler": ("is_stochastic", "keeps_own_scheduler", "sampler_kind", "USUAL"),
    "vocabulary": ("KNOWN_WORDS", "prompt_words", "SCENES", "unknown_words_note"),
    "targets": ("bend_targets", "FEATURE_MAP_PARTS", "Target", "targets_family"),
})
