"""The sampler policy: DDIM (the paper's) for every model, except few-step models, which keep the sampler they
were distilled for (LCM, Turbo's trailing Euler); each kind's usual steps and guidance (`USUAL`); which samplers
add fresh noise at every step (no shared prefix for them).
"""

from __future__ import annotations




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


def is_stochastic(scheduler) -> bool:
    """Samplers that add fresh noise at each step (LCM, ancestral, DDPM): their renders are seeded per call, and
    a render cannot branch from another's intermediate latent (the noise drawn after it would differ)."""
    return type(scheduler).__name__ in ("LCMScheduler", "EulerAncestralDiscreteScheduler", "DDPMScheduler")


