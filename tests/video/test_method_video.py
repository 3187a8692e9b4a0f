"""The video method (issue 27, first slice): AnimateDiff on the shipped model with the tiny random motion adapter of
tests/conftest.py (seeded, saved as safetensors once a session), the latent bent per frame, one window, refusals
before the model loads. A song in several windows: tests/video/test_windows.py."""

import math
import shutil

import numpy as np
import pytest
import torch

from bendlab import models
from bendlab.bend.bends import Bend
from bendlab.bend.hooks import BendCallback
from bendlab.checks import BendlabValueError
from bendlab.mapping import Mapping
from bendlab.video import VideoSpec, make_video
from bendlab.video.joint import render_clip, window_noise
from bendlab.video.spec import Plan, resolve

from conftest import ADAPTER_FRAMES, tiny_adapter, to_frame, write_clip

FRAMES = ADAPTER_FRAMES  # a 0.8 s clip at 20 fps: one window of the tiny adapter (tests/conftest.py)
STEPS = 4


@pytest.fixture
def clip16(tmp_path):
    """0.8 s: a note at 0.5 s; 16 frames at 20 fps."""
    return write_clip(tmp_path / "clip16.wav", onset=0.5, seconds=0.8)


def video_spec(clip, adapter, layer=STEPS, **kw):
    return VideoSpec(**{"audio": str(clip), "method": "video", "motion_adapter": adapter, "steps": STEPS,
                        "mappings": [Mapping("rms", "rotate1", layer, 0, math.pi)], **kw})


def window(pipe, spec, curve):
    """The frames (uint8, F x H x W x 3) of one window with the given per-frame parameter curve."""
    return to_frame(render_clip(Plan(resolve(spec), None, np.asarray(curve, dtype=float)[None]), pipe, "np"))


HALF = [0.0] * (FRAMES // 2) + [math.pi] * (FRAMES // 2)  # no bend on the first half, rotate by pi on the second


def test_animatediff_is_a_video_family(animatediff):
    fam = models.family_of(animatediff)
    assert fam is models.ANIMATEDIFF and fam.layout is models.VIDEO
    assert type(animatediff.unet).__name__ == "UNetMotionModel"


def test_each_frame_of_the_latent_gets_its_own_parameter():
    """The callback views (1, C, F, h, w) as (F, C, h, w): frame k's slice is bent by parameter k, exactly."""
    x = torch.randn(1, 4, FRAMES, 8, 8, generator=torch.Generator().manual_seed(1))
    curve = torch.linspace(0, math.pi, FRAMES, dtype=torch.float64)
    y = BendCallback([Bend("rotate1", curve, 2)], layout=models.VIDEO).at(2, x.clone())
    for k in range(FRAMES):
        alone = Bend("rotate1", float(curve[k]), 2).apply(x[:, :, k])
        torch.testing.assert_close(y[:, :, k], alone, atol=1e-6, rtol=0)
    assert torch.equal(y[:, :, 0], x[:, :, 0])  # rotate by 0: untouched


def test_identity_curve_is_the_stock_pipeline_bit_for_bit(animatediff, clip16, adapter):
    spec = video_spec(clip16, adapter, layer=2)
    noise = window_noise(animatediff, spec.seed, FRAMES)
    stock = animatediff(prompt=spec.prompts[0], latents=noise.clone(), num_frames=FRAMES, num_inference_steps=STEPS,
                        guidance_scale=resolve(spec).guidance, output_type="np").frames[0]
    assert np.array_equal(window(animatediff, spec, [0.0] * FRAMES), to_frame(stock))


def test_a_bend_at_the_last_layer_changes_exactly_its_frames(animatediff, clip16, adapter):
    """At layer N (after the last step; the VAE decodes each frame on its own) only the frames whose parameter is
    not the identity change."""
    spec = video_spec(clip16, adapter, layer=STEPS)
    unbent, bent = window(animatediff, spec, [0.0] * FRAMES), window(animatediff, spec, HALF)
    assert np.array_equal(bent[: FRAMES // 2], unbent[: FRAMES // 2])
    diff = np.abs(bent.astype(int) - unbent.astype(int)).reshape(FRAMES, -1).max(1)
    assert (diff[FRAMES // 2:] > 100).all(), diff


def test_a_bend_before_the_last_step_moves_its_frames_most(animatediff, clip16, adapter):
    """At an earlier layer the motion modules carry part of a frame's bend to the others in the steps left: every
    frame may change, the bent ones by far the most (here 13..31 levels against 255, on the CPU)."""
    spec = video_spec(clip16, adapter, layer=2)
    unbent, bent = window(animatediff, spec, [0.0] * FRAMES), window(animatediff, spec, HALF)
    diff = np.abs(bent.astype(int) - unbent.astype(int)).reshape(FRAMES, -1).mean(1)
    assert diff[FRAMES // 2:].min() > 4 * diff[: FRAMES // 2].max(), diff


# ------------------------------------------------------------------------------------------------ refusals
@pytest.fixture
def no_loading(monkeypatch):
    """Any weights loaded fail the test: the refusals come before."""
    def boom(*a, **k):
        raise AssertionError("the model was loaded")
    monkeypatch.setattr(models.load, "_load", boom)


def _bin_adapter(tmp_path):
    return tiny_adapter(tmp_path / "bin", safe=False)


def _other_adapter(tmp_path):
    """The tiny adapter with another block layout in its config (the UNet's are 32, 64, 128)."""
    import json
    folder = tmp_path / "other"
    shutil.copytree(tiny_adapter(tmp_path / "a"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "block_out_channels": [32, 64, 64]}))
    return str(folder)


@pytest.mark.parametrize("make, kw, msg", [
    (lambda t, a: a, {"window": 24}, "window 24 is longer than the motion adapter's 16 frames (its temporal position"),
    (lambda t, a: a, {"overlap": 16}, "overlap 16 is not shorter than the window (16 frames); accepted: 0..15"),
    (lambda t, a: str(t / "nowhere"), {}, "is not a folder that exists"),
    (lambda t, a: _bin_adapter(t), {}, "(only diffusion_pytorch_model.bin: pickle files are not loaded)"),
    (lambda t, a: _other_adapter(t), {}, "has blocks [32, 64, 64] with [1, 1, 1] layers, the model's UNet"),
])
def test_bad_video_input_is_refused_before_the_model_loads(clip16, adapter, tmp_path, no_loading, make, kw, msg):
    spec = video_spec(clip16, make(tmp_path, adapter), **kw)
    with pytest.raises(BendlabValueError) as e:
        make_video(spec, tmp_path / "v.mp4", progress=False)
    assert msg in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("kw, msg", [
    ({"method": "txt2img"}, "only the video method reads it"),
    ({"mappings": [Mapping("rms", "attn_rotate", 2, 0, 1,
                           target="attn:mid_block.motion_modules.0.transformer_blocks.0.attn1")]},
     "temporal attention's queries are the window's frames; accepted: a point-wise operator"),
    ({"mappings": [Mapping("rms", "add", 2, 0, 1, target="unet:mid_block.motion_modules.0.transformer_blocks.0")]},
     "is inside the temporal module mid_block.motion_modules.0 of AnimateDiff"),
    ({"mappings": [Mapping("rms", "multiply", 2, 1, 2, target="unet:down_blocks.1.motion_modules.0.proj_in")]},
     "accepted: the module's output (unet:down_blocks.1.motion_modules.0)"),
    ({"walk": "none"}, "walk 'none': the video method denoises"),
    ({"method": "txt2img", "motion_adapter": None, "window": 8}, "window 8: only the video method reads it"),
    ({"method": "txt2img", "motion_adapter": None, "overlap": 2}, "overlap 2: only the video method reads it"),
    ({"window": 4}, "window 4 is not an integer >= 8; accepted: frames a window of the video method holds"),
    ({"window": 8, "overlap": 8}, "overlap 8 is not shorter than the window (8 frames)"),
])
def test_video_spec_refusals(clip16, adapter, kw, msg):
    with pytest.raises(BendlabValueError) as e:
        video_spec(clip16, adapter, **kw)
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_video_method_on_cuda_ray_workers_needs_a_gpu_here(clip16, adapter, tmp_path, no_loading):
    """This process decodes the workers' windows on their device: cuda workers without a GPU here are refused in one
    line before Ray starts (tests/video/test_ray_windows.py renders on CPU workers)."""
    import sys

    import torch
    from bendlab.video.cluster import RaySource
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: it can decode cuda workers' windows")
    with pytest.raises(BendlabValueError) as e:
        make_video(video_spec(clip16, adapter), tmp_path / "v.mp4", source=RaySource(2, "127.0.0.1:1", device="cuda"),
                   progress=False)
    assert "this process decodes their windows on cuda" in str(e.value) and "\n" not in str(e.value)
    assert not ("ray" in sys.modules and sys.modules["ray"].is_initialized())


# ------------------------------------------------------------------------------------------------ end to end
def test_cli_video_method_writes_an_mp4_with_every_frame(clip16, adapter, tmp_path):
    from bendlab.ui.cli import main
    from bendlab.video import video_info
    out = tmp_path / "v.mp4"
    rc = main(["video", str(clip16), "--method", "video", "--motion-adapter", adapter, "--steps", "2",
               "--device", "cpu", "--op", "rotate1", "--layer", "1", "--upscale", "1", "--out", str(out)])
    assert rc == 0
    info = video_info(out)
    assert info["frames"] == FRAMES and info["video"] and info["audio"]
    assert len(list((tmp_path / "v.frames").glob("frame_*.png"))) == FRAMES


def test_the_manifest_tells_adapters_apart(animatediff, pipe):
    """The render folder's weights fingerprint covers the motion modules: another adapter, or none, is another
    model (frames are never mixed on resume)."""
    from diffusers import AnimateDiffPipeline, MotionAdapter
    torch.manual_seed(1)
    a = MotionAdapter(block_out_channels=(32, 64, 128), motion_layers_per_block=1, motion_num_attention_heads=4,
                      motion_max_seq_length=FRAMES)
    second = AnimateDiffPipeline(vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, unet=pipe.unet,
                                 motion_adapter=a, scheduler=pipe.scheduler)
    prints = [models.weights_fingerprint(p) for p in (animatediff, second, pipe)]
    assert len(set(prints)) == 3, prints


def test_an_interrupted_window_resumes_with_the_same_frames(clip16, adapter, tmp_path):
    """The window is rendered again in full; the frames already verified are kept and the rest are byte-identical
    to an unbroken render's."""
    from bendlab.video import render_frames
    from bendlab.video.folder import frames_dir
    from conftest import same_frames
    spec = video_spec(clip16, adapter, layer=2, steps=2)
    full, part = tmp_path / "full.mp4", tmp_path / "part.mp4"
    render_frames(spec, full, device="cpu", progress=False)

    def interrupt(i):
        if i == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        render_frames(spec, part, device="cpu", progress=False, on_frame=interrupt)
    assert len(list(frames_dir(part).glob("frame_*.png"))) == 6
    written = []
    render_frames(spec, part, device="cpu", progress=False, on_frame=written.append)
    assert written == list(range(6, FRAMES))
    assert same_frames(frames_dir(full), frames_dir(part), FRAMES)
