"""Models beyond the shipped one, built here with random weights (no download): an SD 2.x-style pipeline
(v-prediction, linear-projection attention) goes through the same loader and bends; 16-channel-latent
transformer models are refused in one line before any weights load."""

import json

import numpy as np
import pytest
import torch

from bendlab import Bend, load_pipeline, render, render_grid
from bendlab.models import SHIPPED, resolve


@pytest.fixture(scope="module")
def sd2_folder(tmp_path_factory):
    """A tiny SD 2.x-style pipeline: the shipped VAE and text encoder, a random UNet with SD 2's options
    (linear projections, per-block head dims) and a v-prediction DDIM scheduler, saved as safetensors."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    shipped = load_pipeline(device="cpu")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=96,
                                attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=16)
    scheduler = DDIMScheduler.from_config({**shipped.scheduler.config, "prediction_type": "v_prediction"})
    pipe = StableDiffusionPipeline(vae=shipped.vae, text_encoder=shipped.text_encoder, tokenizer=shipped.tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    folder = tmp_path_factory.mktemp("sd2") / "tiny-sd2"
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def test_sd2_style_model_renders_through_the_same_path(sd2_folder):
    pipe = load_pipeline(sd2_folder, device="cpu")
    assert pipe.scheduler.config.prediction_type == "v_prediction" and type(pipe.scheduler).__name__ == "DDIMScheduler"
    plain = render("mice", pipe=pipe, steps=4, output_type="np")
    assert np.array_equal(plain, render("mice", [Bend("add", 0.0, 2)], pipe=pipe, steps=4, output_type="np"))
    for bend in (Bend("rotate1", 1.0, 0), Bend("erode", 2, 2, norm="row"), Bend("invert", 3.0, 4)):
        assert not np.array_equal(plain, render("mice", [bend], pipe=pipe, steps=4, output_type="np")), bend
    grid = np.asarray(render_grid("mice", "add", [0.5, 1.0], [2], pipe=pipe, steps=4, output_type="np"))
    solo = np.asarray(render_grid("mice", "add", [0.5, 1.0], [2], pipe=pipe, steps=4, output_type="np",
                                  branch=False))
    assert np.abs(grid - solo).max() <= 1e-5


@pytest.mark.parametrize("cls", ["StableDiffusion3Pipeline", "FluxPipeline"])
def test_transformer_models_are_refused_before_loading(tmp_path, cls):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    with pytest.raises(ValueError, match=f"holds a {cls}, a 16-channel-latent transformer model; accepted"):
        resolve(tmp_path)


def test_a_16_channel_unet_is_refused(tmp_path):
    import shutil
    folder = tmp_path / "m"
    shutil.copytree(SHIPPED, folder)
    cfg = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**cfg, "in_channels": 16}))
    with pytest.raises(ValueError, match="has a 16-channel latent; accepted: 4-channel-latent models"):
        render("x", model=str(folder))


def few_step_folder(tmp_path, scheduler_cls, **config):
    """The shipped model saved with another sampler, as an LCM or Turbo model ships."""
    import diffusers
    shipped = load_pipeline(device="cpu")
    pipe = diffusers.StableDiffusionPipeline(**{**shipped.components, "safety_checker": None,
                                                "feature_extractor": None}, requires_safety_checker=False)
    pipe.scheduler = getattr(diffusers, scheduler_cls).from_config({**shipped.scheduler.config, **config})
    folder = tmp_path / scheduler_cls
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.mark.parametrize("cls,config", [("LCMScheduler", {}),
                                        ("EulerAncestralDiscreteScheduler", {"timestep_spacing": "trailing"})])
def test_few_step_models_keep_their_sampler_and_bend(tmp_path, cls, config):
    """Layer semantics at 1-4 steps with the model's own stochastic sampler: seeded (identity bit-identical),
    every operator kind acts, the last layer acts, a 1-step model has layers 0..1, guidance 0 works, sweeps
    fall back to independent renders, and image-to-image runs."""
    pipe = load_pipeline(few_step_folder(tmp_path, cls, **config), device="cpu")
    assert type(pipe.scheduler).__name__ == cls
    plain = render("mice", pipe=pipe, steps=4, guidance=0, output_type="np")
    assert np.array_equal(plain, render("mice", [Bend("add", 0.0, 2)], pipe=pipe, steps=4, guidance=0,
                                        output_type="np"))
    for bend in (Bend("add", 1.0, 0), Bend("rotate1", 1.5, 2), Bend("dilate", 3, 1), Bend("multiply", 1.5, 4)):
        assert not np.array_equal(plain, render("mice", [bend], pipe=pipe, steps=4, guidance=0, output_type="np"))
    one = render("mice", [Bend("multiply", 1.5, 1)], pipe=pipe, steps=1, guidance=0, output_type="np")
    assert one.shape == plain.shape
    with pytest.raises(ValueError, match="outside 0..1"):
        render("mice", [Bend("add", 1.0, 2)], pipe=pipe, steps=1)
    grid = np.asarray(render_grid("mice", "add", [0.5, 1.0], [2], pipe=pipe, steps=4, guidance=0, output_type="np"))
    alone = render("mice", [Bend("add", 1.0, 2)], pipe=pipe, steps=4, guidance=0, output_type="np")
    assert np.abs(grid[0][1] - alone).max() <= 1e-5
    from PIL import Image
    img = render("mice", [Bend("add", 0.5, 1)], pipe=pipe, steps=4, guidance=0,
                 init_image=Image.fromarray((plain * 255).astype(np.uint8)), strength=0.5)
    assert img.size == (64, 64)
