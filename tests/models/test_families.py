"""Models beyond the shipped one, built here with random weights (no download): an SD 2.x-style pipeline
(v-prediction, linear-projection attention) and an SDXL pipeline (two text encoders, pooled embeddings, added
time conditioning) go through the same loader and bends; few-step samplers (LCM, Euler-ancestral, Turbo's
trailing Euler) keep their layer semantics; 16-channel-latent transformer models are refused in one line before
any weights load."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bendlab import Bend, load_pipeline, render, render_grid
from bendlab.models import SHIPPED, resolve, usual_steps
from conftest import assert_frames_close, spec_for, tiny_sdxl, write_clip


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
    assert_frames_close(grid, solo)  # branching vs independent: FRAME_LEVELS


def few_frames(pipe, folder, steps=4, **spec):
    """The frames of a 0.3 s clip (6 at 20 fps), rendered on `pipe` into `folder`: their PNG bytes."""
    import math

    from bendlab.mapping import Mapping
    from bendlab.video import render_frames
    clip = write_clip(folder / "clip.wav", onset=0.1, seconds=0.3)
    spec = spec_for(clip, steps=steps, batch=3, mappings=[Mapping("rms", "rotate1", 2, 0, math.pi)], **spec)
    frames = render_frames(spec, folder / "v.mp4", pipe=pipe, progress=False)
    return [f.read_bytes() for f in sorted(frames.glob("frame_*.png"))]


def test_sd2_style_img2img_and_video(sd2_folder, tmp_path):
    from PIL import Image
    pipe = load_pipeline(sd2_folder, device="cpu")
    init = Image.fromarray((render("mice", pipe=pipe, steps=4, output_type="np") * 255).astype(np.uint8))
    a = render("mice", pipe=pipe, steps=4, init_image=init, strength=0.5, output_type="np")
    assert not np.array_equal(a, render("mice", [Bend("add", 1.0, 2)], pipe=pipe, steps=4, init_image=init,
                                        strength=0.5, output_type="np"))
    frames = few_frames(pipe, tmp_path)
    assert len(frames) == 6 and len(set(frames)) == 6


@pytest.mark.parametrize("cls,config", [("LCMScheduler", {}),
                                        ("EulerAncestralDiscreteScheduler", {"timestep_spacing": "trailing"})])
def test_few_step_video_frames_repeat_exactly(tmp_path, cls, config):
    """A video on a stochastic few-step sampler: seeded per aligned batch, so a second render of the same frames
    (a resume on another machine) is byte-identical."""
    pipe = load_pipeline(few_step_folder(tmp_path, cls, **config), device="cpu")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = few_frames(pipe, tmp_path / "a", guidance=0)
    assert len(first) == 6 and len(set(first)) == 6 and first == few_frames(pipe, tmp_path / "b", guidance=0)


@pytest.mark.parametrize("cls", ["StableDiffusion3Pipeline", "FluxPipeline"])
def test_transformer_models_are_refused_before_loading(tmp_path, cls):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": cls}))
    with pytest.raises(ValueError, match=f"holds a {cls}, a 16-channel-latent transformer model; accepted"):
        resolve(tmp_path)


def test_a_loaded_pipeline_of_another_kind_is_refused():
    import diffusers
    other = diffusers.DDPMPipeline(unet=diffusers.UNet2DModel(sample_size=8, block_out_channels=(32, 32),
                                                              down_block_types=("DownBlock2D",) * 2,
                                                              up_block_types=("UpBlock2D",) * 2),
                                   scheduler=diffusers.DDPMScheduler())
    with pytest.raises(ValueError, match="pipe DDPMPipeline is not a supported pipeline; accepted: None or "
                                         "bendlab.load_pipeline"):
        render("x", pipe=other)


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
    folder = few_step_folder(tmp_path, cls, **config)
    pipe = load_pipeline(folder, device="cpu")
    assert type(pipe.scheduler).__name__ == cls
    usual = 4 if cls == "LCMScheduler" else 1  # the model cards' counts: LCM 4, Turbo 1
    guidance = 7.5 if cls == "LCMScheduler" else 0.0  # Turbo: no guidance, as its model card
    assert usual_steps(folder) == usual_steps(pipe=pipe) == usual and usual_steps() == 50
    import soundfile as sf

    from bendlab.mapping import Mapping
    from bendlab.video import VideoSpec
    from bendlab.video import resolve
    sf.write(tmp_path / "a.wav", np.zeros(4410), 44100)
    spec = VideoSpec(audio=str(tmp_path / "a.wav"), model=str(folder), mappings=[Mapping("rms", "add", 1, 0, 1)])
    assert (spec.steps, spec.guidance) == (None, None)  # a value: the constructor reads no model config
    spec = resolve(spec)
    assert (spec.steps, spec.guidance) == (usual, guidance)  # --steps, --guidance not given: the model's
    default = resolve(VideoSpec(audio=str(tmp_path / "a.wav"), model=str(folder))).mappings[0]
    assert default.layer == round(40 * usual / 50)  # the paper's 40 of 50 at the same depth: 3 of 4, 1 of 1
    assert np.array_equal(render("mice", pipe=pipe, output_type="np"),
                          render("mice", pipe=pipe, steps=usual, guidance=guidance, output_type="np"))
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
    assert_frames_close(grid[0][1], alone)  # a batch of two vs one: FRAME_LEVELS
    from PIL import Image
    img = render("mice", [Bend("add", 0.5, 1)], pipe=pipe, steps=4, guidance=0,
                 init_image=Image.fromarray((plain * 255).astype(np.uint8)), strength=0.5)
    assert img.size == (64, 64)


@pytest.fixture(scope="module")
def sdxl(sdxl_folder):
    return load_pipeline(sdxl_folder, device="cpu")


def test_sdxl_renders_and_bends_through_the_same_path(sdxl):
    """SDXL loads as StableDiffusionXLPipeline with DDIM; identity bit-identical, every operator kind and a
    module bend act, the last layer acts, sweeps branch, image-to-image runs on its own SDXL class."""
    from PIL import Image

    from bendlab.models import img2img_pipeline
    assert type(sdxl).__name__ == "StableDiffusionXLPipeline" and type(sdxl.scheduler).__name__ == "DDIMScheduler"
    assert usual_steps(pipe=sdxl) == 50
    plain = render("mice", pipe=sdxl, steps=4, output_type="np")
    assert np.array_equal(plain, render("mice", [Bend("add", 0.0, 2)], pipe=sdxl, steps=4, output_type="np"))
    assert not np.array_equal(plain, render("rats", pipe=sdxl, steps=4, output_type="np"))  # the prompt matters
    for bend in (Bend("add", 1.0, 0), Bend("rotate2", 1.0, 2), Bend("erode", 2, 2, norm="row"),
                 Bend("invert", 3.0, 4), Bend("multiply", 0.5, 1, module="mid_block")):
        assert not np.array_equal(plain, render("mice", [bend], pipe=sdxl, steps=4, output_type="np")), bend
    grid = np.asarray(render_grid("mice", "add", [0.5, 1.0], [1, 3], pipe=sdxl, steps=4, output_type="np"))
    solo = np.asarray(render_grid("mice", "add", [0.5, 1.0], [1, 3], pipe=sdxl, steps=4, output_type="np",
                                  branch=False))
    assert_frames_close(grid, solo)  # branching vs independent: FRAME_LEVELS
    small = render("mice", [Bend("add", 1.0, 3)], pipe=sdxl, steps=4, height=32, width=48, output_type="np")
    swept = render_grid("mice", "add", [1.0], [3], pipe=sdxl, steps=4, height=32, width=48, output_type="np")
    assert small.shape == (32, 48, 3)
    assert_frames_close(swept[0][0], small)  # SDXL's size conditioning, in the sweep's own loop
    init = Image.fromarray((plain * 255).astype(np.uint8))
    a = render("mice", pipe=sdxl, steps=4, init_image=init, strength=0.5, output_type="np")
    b = render("mice", [Bend("add", 1.0, 2)], pipe=sdxl, steps=4, init_image=init, strength=0.5, output_type="np")
    assert type(img2img_pipeline(sdxl)).__name__ == "StableDiffusionXLImg2ImgPipeline" and not np.array_equal(a, b)


def test_sdxl_explorer_branches_like_a_full_render(sdxl):
    from bendlab.ui.widgets import explorer, image_array, render_branched
    bend = Bend("rotate1", 1.0, 2)
    assert_frames_close(render_branched(sdxl, "mice", bend, steps=4), render("mice", [bend], pipe=sdxl, steps=4))
    box = explorer(sdxl, prompt="mice", op="add", param=0.5, layer=2, steps=4)
    before = image_array(box)
    box.controls["param"].value = 2.0
    assert not np.array_equal(before, image_array(box)) and "color:#b00" not in box.status.value


def test_sdxl_turbo_branches_from_the_right_step(tmp_path):
    """A Turbo model (Euler, trailing timesteps, guidance 0) keeps its sampler, defaults to 1 step, and a sweep
    branched part-way equals independent renders: SDXL's pipeline resets the scheduler's begin index to 0, and
    bendlab keeps the branch at its own step."""
    folder = tiny_sdxl(tmp_path / "turbo", {"_class_name": "EulerDiscreteScheduler", "timestep_spacing": "trailing"})
    pipe = load_pipeline(folder, device="cpu")
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler" and usual_steps(folder) == 1
    grid = np.asarray(render_grid("mice", "add", [0.5, 1.0], [2], pipe=pipe, steps=4, guidance=0, output_type="np"))
    alone = render("mice", [Bend("add", 1.0, 2)], pipe=pipe, steps=4, guidance=0, output_type="np")
    assert_frames_close(grid[0][1], alone)  # branched part-way vs independent: FRAME_LEVELS
    one = render("mice", [Bend("multiply", 1.5, 1)], pipe=pipe, steps=1, guidance=0, output_type="np")
    assert one.shape == (64, 64, 3)


def test_sdxl_video(sdxl, tmp_path):
    """A few video frames with two prompts mixed (token and pooled embeddings), with the sin/cos walk and with
    a shared prefix (walk "none": the steps before layer 2 computed once per prompt)."""
    for walk in ("sincos", "none"):
        (tmp_path / walk).mkdir()
        frames = few_frames(sdxl, tmp_path / walk, walk=walk, prompts=["mice", "rats"])
        assert len(frames) == 6 and len(set(frames)) == 6


@pytest.mark.slow  # papermill inside pytest: a notebook in a subprocess
def test_sdxl_through_the_video_command_and_a_figure_notebook(sdxl_folder, tmp_path, capsys, monkeypatch):
    """The user's path, unchanged: `bendlab video --model FOLDER` writes an mp4 with sound, and the rotation-sweep
    notebook runs under papermill with MODEL set to the SDXL folder (fast mode) and saves its figure."""
    import os
    import subprocess
    import sys

    from bendlab.ui.cli import main
    from bendlab.video import video_info
    write_clip(tmp_path / "clip.wav", onset=0.1, seconds=0.3)
    out = tmp_path / "v.mp4"
    assert main(["video", str(tmp_path / "clip.wav"), "--model", str(sdxl_folder), "--device", "cpu", "--steps", "4",
                 "--op", "rotate1", "--layer", "2", "--out", str(out)]) == 0, capsys.readouterr().err
    info = video_info(out)
    assert info["video"] and info["audio"] and info["frames"] == 6
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "BENDLAB_FAST": "1", "BENDLAB_FIGURES": str(tmp_path / "figures")}
    run = subprocess.run([sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3", "--cwd",
                          str(root / "notebooks"), str(root / "notebooks" / "03_figure2_rotation_sweep.ipynb"),
                          str(tmp_path / "03.ipynb"), "-p", "MODEL", str(sdxl_folder)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    manifest = json.loads((tmp_path / "figures" / "manifest.json").read_text())
    assert (tmp_path / "figures" / "fig2-rotation-sweep.png").is_file()
    assert str(sdxl_folder) in json.dumps(manifest)


def test_an_lcm_pipeline_folder_loads_as_the_sd_family(tmp_path):
    """An LCM model as published (LatentConsistencyModelPipeline: SD's components, an LCMScheduler and a UNet with
    a guidance embedding) loads through the SD path with its sampler; guidance drives the embedding, bends act."""
    import diffusers
    shipped = load_pipeline(device="cpu")
    torch.manual_seed(0)
    unet = diffusers.UNet2DConditionModel.from_config({**shipped.unet.config, "time_cond_proj_dim": 32})
    lcm = diffusers.LatentConsistencyModelPipeline(
        vae=shipped.vae, text_encoder=shipped.text_encoder, tokenizer=shipped.tokenizer, unet=unet,
        scheduler=diffusers.LCMScheduler.from_config(shipped.scheduler.config), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)
    lcm.save_pretrained(tmp_path / "lcm", safe_serialization=True)
    pipe = load_pipeline(tmp_path / "lcm", device="cpu")
    assert type(pipe).__name__ == "StableDiffusionPipeline" and type(pipe.scheduler).__name__ == "LCMScheduler"
    assert usual_steps(tmp_path / "lcm") == 4
    plain = render("mice", pipe=pipe, output_type="np")
    assert not np.array_equal(plain, render("mice", pipe=pipe, guidance=2.0, output_type="np"))  # w embedded
    assert not np.array_equal(plain, render("mice", [Bend("rotate1", 1.0, 2)], pipe=pipe, output_type="np"))


@pytest.mark.parametrize("family", ["sd2", "sdxl", "lcm"])
def test_live_runs_on_every_family(family, sd2_folder, sdxl_folder, tmp_path):
    """`bendlab live`'s loop on SD 2.x, SDXL and an LCM sampler (no shared prefix: fresh noise every step, so
    each frame runs in full from the seed's noise): frames shown, the picture moving with the music, and a prompt
    change taking over (on the second pipeline object for DDIM/Euler, in the loop for LCM)."""
    import time
    import warnings

    from bendlab.live import Player
    from bendlab.live import Live, LiveSpec
    from bendlab.mapping import Mapping
    folder = {"sd2": sd2_folder, "sdxl": sdxl_folder,
              "lcm": lambda: few_step_folder(tmp_path, "LCMScheduler")}[family]
    folder = folder() if callable(folder) else folder
    pipe = load_pipeline(folder, device="cpu")
    spec = LiveSpec(mappings=[Mapping("rms", "rotate1", low=0, high=6.2832)], model=str(folder), fps=10)
    shown = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the silent clock's notice
        live = Live(spec, Player("bendlab/data/piano.ogg", spec.sr, device="none"), pipe=pipe,
                    on_frame=lambda im, f: shown.append((im.tobytes(), f.prompt)), status=False)
        live.start()
        while len(shown) < 4 and live.running:
            time.sleep(0.02)
        live.controls.set_prompt("a floating orb")
        deadline = len(shown) + 40
        while not any(p == 1 for _, p in shown) and len(shown) < deadline and live.running:
            time.sleep(0.02)
        live.stop()
    assert live.reason == "stopped"
    assert len({im for im, _ in shown}) >= 3
    assert shown[-1][1] == 1
