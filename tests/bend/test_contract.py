"""The contract every bend target keeps on every model family, written once (diffusers' PipelineTesterMixin habit):

- an identity bend is bit-identical to no bend;
- a real bend changes the picture;
- a branched sweep (`render_grid`, the shared prefix computed once) equals independent renders;
- a batch carries one parameter per item (a batch of two equals each rendered alone);
- nothing is left installed after a render (no hook, the same attention processors, the pipeline's own
  `prepare_latents` and scheduler methods).

Targets: the latent, a denoiser block, a VAE decoder block, the text embedding, a self-attention module. Families:
SD v1.x (the shipped model), an SD 2.x-style pipeline (v-prediction, linear projections) and SDXL (two text
encoders), the last two tiny and random (tests/conftest.py). A new family or target joins by a row below.
Renders of one computation are compared exactly; renders computed differently within FRAME_LEVELS (conftest)."""

import numpy as np
import pytest
import torch

from bendlab import Bend, load_pipeline, render, render_grid
from bendlab.bend import encode_prompts, initial_noise, render_batch
from bendlab.models import family_of
from conftest import assert_frames_close

STEPS, PROMPT = 4, "mice"
FAMILIES = ["sd", "sd2", "sdxl"]
TARGETS = ["latent", "unet:mid_block", "vae:decoder.up_blocks.1", "text", "attn"]


@pytest.fixture(scope="module", params=FAMILIES)
def family_pipe(request, pipe, sd2_folder, sdxl_folder):
    return {"sd": pipe, "sd2": None, "sdxl": None}[request.param] or load_pipeline(
        sd2_folder if request.param == "sd2" else sdxl_folder, device="cpu")


def self_attention(pipe) -> str:
    """The first self-attention module of the pipeline's denoiser."""
    fam = family_of(pipe)
    return "attn:" + next(n for n, m in fam.attention_modules(fam.denoiser_of(pipe)) if not m.is_cross_attention)


# target -> (operator, its identity, a real bend, two values to sweep): multiply everywhere but attention, whose
# rows are renormalised (multiplying a whole row is an identity there): attn_blur of self-attention maps
OPS = {"attn": ("attn_blur", 0.0, 2.0, [1.0, 3.0])}
MULTIPLY = ("multiply", 1.0, 0.2, [0.5, 2.0])


def bend(pipe, target: str, which, **kw) -> Bend:
    """The target's operator (`OPS`) with its identity ("identity"), a real bend ("real") or a given parameter,
    at every step inside the 4 for modules, at layer 2 for the latent, at decode for the VAE."""
    op, identity, real, _ = OPS.get(target, MULTIPLY)
    param = {"identity": identity, "real": real}.get(which, which) if isinstance(which, str) else which
    if target == "attn":
        return Bend(op, param, (0, STEPS - 1), target=self_attention(pipe), **kw)
    layer = None if target.startswith("vae:") else 2 if target == "latent" else (0, STEPS - 1)
    return Bend(op, param, layer, target=target, **kw)


def installed(pipe) -> tuple:
    """Everything a render may install, as it stands: forward hooks and pre-hooks on the denoiser and the VAE,
    the attention processor objects, and whether the pipeline or its scheduler hold a patched method."""
    fam = family_of(pipe)
    den = fam.denoiser_of(pipe)
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for part in (den, pipe.vae) for m in part.modules())
    processors = tuple(id(m.processor) for _, m in fam.attention_modules(den))
    patched = tuple(name in vars(obj) for obj, name in ((pipe, "prepare_latents"), (pipe.scheduler, "set_timesteps"),
                                                         (pipe.scheduler, "set_begin_index")))
    return hooks, processors, patched


@pytest.mark.parametrize("target", TARGETS)
def test_identity_is_bit_identical_and_a_real_bend_changes_the_picture(family_pipe, target):
    pipe = family_pipe
    before = installed(pipe)
    plain = render(PROMPT, pipe=pipe, steps=STEPS, output_type="np")
    same = render(PROMPT, [bend(pipe, target, "identity")], pipe=pipe, steps=STEPS, output_type="np")
    bent = render(PROMPT, [bend(pipe, target, "real")], pipe=pipe, steps=STEPS, output_type="np")
    assert np.array_equal(plain, same), target
    assert np.abs(bent - plain).max() > 2 / 255, target  # at least two 8-bit levels somewhere
    assert installed(pipe) == before, f"{target}: something was left installed"


@pytest.mark.parametrize("target", TARGETS)
def test_a_branched_sweep_equals_independent_renders(family_pipe, target):
    pipe = family_pipe
    op, _, _, values = OPS.get(target, MULTIPLY)
    b = bend(pipe, target, "identity")
    layers = [STEPS] if target.startswith("vae:") else [2]  # branched from the latent before step 2
    kw = dict(pipe=pipe, steps=STEPS, output_type="np", where=b.where, target=b.target)
    grid = np.asarray(render_grid(PROMPT, op, values, layers, **kw))
    solo = np.asarray(render_grid(PROMPT, op, values, layers, branch=False, **kw))
    assert_frames_close(grid, solo)
    assert not np.array_equal(grid[0][0], grid[0][1])  # the two values differ


@pytest.mark.parametrize("target", TARGETS)
def test_a_batch_carries_one_parameter_per_item(family_pipe, target):
    pipe = family_pipe
    before = installed(pipe)
    x = initial_noise(pipe, 7).expand(2, -1, -1, -1).clone()
    embeds = encode_prompts(pipe, [PROMPT]).expand(2)
    values = OPS.get(target, MULTIPLY)[3]
    both = render_batch(pipe, [bend(pipe, target, torch.tensor(values, dtype=torch.float64))], embeds=embeds,
                        prompts=[PROMPT] * 2, latents=x, steps=STEPS, output_type="np")
    for k, p in enumerate(values):
        alone = render_batch(pipe, [bend(pipe, target, p)], embeds=embeds.row(0), prompts=[PROMPT],
                             latents=x[k:k + 1].clone(), steps=STEPS, output_type="np")
        assert_frames_close(both[k], alone[0])
    assert installed(pipe) == before, f"{target}: something was left installed"


def test_the_contract_sees_what_is_left_installed(pipe):
    """`installed` notices a hook, a processor and a patched method (so the checks above can fail)."""
    before = installed(pipe)
    handle = pipe.unet.mid_block.register_forward_hook(lambda *a: None)
    assert installed(pipe) != before
    handle.remove()
    pipe.prepare_latents = pipe.prepare_latents
    assert installed(pipe) != before
    del pipe.prepare_latents
    assert installed(pipe) == before
