"""The shipped model: SD v1.x components, offline loading, size, determinism, visible bends."""

import json

import numpy as np
import pytest

from bendlab import Bend, render
from bendlab.models import SHIPPED, resolve

PAPER_PROMPTS = ["a floating orb", "a gorgeous landscape", "3D mesh geometry", "mice", "a photo of a crane", "bass",
                 "cricket", "a match"]


def test_folder_is_a_small_safetensors_sd_pipeline():
    assert resolve(None) == str(SHIPPED)
    files = [p for p in SHIPPED.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 30e6
    weights = [p.suffix for p in files if p.suffix in (".safetensors", ".bin", ".pt", ".ckpt", ".pth")]
    assert weights and set(weights) == {".safetensors"}
    idx = json.loads((SHIPPED / "model_index.json").read_text())
    assert idx["_class_name"] == "StableDiffusionPipeline"
    for comp, cls in (("unet", "UNet2DConditionModel"), ("vae", "AutoencoderKL"), ("text_encoder", "CLIPTextModel"),
                      ("scheduler", "DDIMScheduler")):
        assert idx[comp][1] == cls
    sched = json.loads((SHIPPED / "scheduler" / "scheduler_config.json").read_text())
    assert {k: sched[k] for k in ("beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "prediction_type",
                                  "steps_offset", "set_alpha_to_one", "clip_sample")} == {
        "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
        "prediction_type": "epsilon", "steps_offset": 1, "set_alpha_to_one": False, "clip_sample": False}
    assert (SHIPPED / "README.md").is_file() and (SHIPPED / "samples.png").is_file()


def test_components_and_sizes(pipe):
    assert pipe.vae.config.latent_channels == 4
    assert pipe.unet.config.sample_size >= 16 and pipe.unet.config.sample_size * pipe.vae_scale_factor >= 64
    assert type(pipe.tokenizer).__name__.startswith("CLIPTokenizer")
    assert pipe.tokenizer("a floating orb").input_ids == [49406, 320, 12619, 36958, 49407]


def test_latents_have_roughly_unit_variance(pipe):
    import torch
    img = np.asarray(render("a gorgeous landscape", pipe=pipe, steps=20), np.float32) / 127.5 - 1
    with torch.no_grad():
        z = pipe.vae.encode(torch.from_numpy(img).permute(2, 0, 1)[None]).latent_dist.mean
    assert 0.4 < float(z.std() * pipe.vae.config.scaling_factor) < 2.5


@pytest.fixture(scope="module")
def paper_images(pipe):
    """The paper's prompts at the paper's 50 steps: the tests that use it are marked slow."""
    return {p: np.asarray(render(p, pipe=pipe), np.float32) / 255 for p in PAPER_PROMPTS}


@pytest.mark.slow  # 50 steps
def test_paper_prompts_give_distinct_images(paper_images):
    for i, a in enumerate(PAPER_PROMPTS):
        for b in PAPER_PROMPTS[i + 1:]:
            assert np.abs(paper_images[a] - paper_images[b]).mean() > 0.03, (a, b)


@pytest.mark.slow  # 50 steps
def test_paper_bends_visibly_change_the_image_in_different_ways(pipe, paper_images):
    plain = paper_images["a floating orb"]
    late = np.asarray(render("a floating orb", [Bend("add", 1.0, 40)], pipe=pipe), np.float32) / 255
    sparse = np.asarray(render("a floating orb", [Bend("add", 1.0, 0, "fraction:0.05")], pipe=pipe), np.float32) / 255
    rot = np.asarray(render("a gorgeous landscape", [Bend("rotate1", np.pi / 2, 0)], pipe=pipe), np.float32) / 255
    assert np.abs(late - plain).mean() > 0.02
    assert np.abs(sparse - plain).mean() > 0.02
    assert np.abs(late - sparse).mean() > 0.02
    assert np.abs(rot - paper_images["a gorgeous landscape"]).mean() > 0.05


def test_shipped_model_loads_the_standard_diffusers_way():
    """`StableDiffusionPipeline.from_pretrained(folder)` with no dtype, as diffusers users write it, renders on
    the CPU (the text encoder once loaded as float16 beside a float32 UNet: "mat1 and mat2 must have the same
    dtype")."""
    import torch
    from diffusers import StableDiffusionPipeline

    from bendlab.models import SHIPPED, quiet_loading
    with quiet_loading():
        pipe = StableDiffusionPipeline.from_pretrained(str(SHIPPED))
    assert pipe.text_encoder.dtype == pipe.unet.dtype == torch.float32
    pipe.set_progress_bar_config(disable=True)
    img = pipe("a floating orb", num_inference_steps=3, generator=torch.Generator().manual_seed(0)).images[0]
    assert img.size == (64, 64)
