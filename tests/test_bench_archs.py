"""The random-weight architectures of `benchmarks/bench.py --arch` are the real ones: their UNets have the
published parameter counts, and torch counts their FLOPs on the meta device (no memory, no weights)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import archs  # noqa: E402


@pytest.mark.parametrize("arch", ["sd14", "sdxl"])
def test_unet_has_the_published_parameter_count(arch):
    unet = archs.unet_meta(arch)
    assert sum(p.numel() for p in unet.parameters()) == archs.ARCHS[arch]["unet_params"]


def test_unet_flops_grow_with_the_image_and_count_attention():
    sd, xl = archs.unet_flops("sd14", 512), archs.unet_flops("sdxl", 1024)
    assert 1.5e12 < sd < 1.7e12  # ~0.8 TFLOP per image per step, as usually quoted for SD v1.x at 512 px
    assert 6.5 < xl / sd < 10  # SDXL at 1024 px: ~6.8 TFLOP per image per step
    assert archs.unet_flops("sd14", 256) < sd / 3  # fewer pixels, and attention grows faster than linearly
    assert archs.card_peak("NVIDIA H200") == 989e12 and archs.card_peak("a card nobody knows") is None


@pytest.mark.parametrize("arch", list(archs.VIDEO_ARCHS))
def test_video_models_have_the_published_parameter_counts(arch):
    """The part that makes each a video model, on the meta device: AnimateDiff v1.5-2's motion modules 453,209,280
    (its float32 safetensors: 1.82 GB), Wan 2.1 1.3B's transformer 1,418,996,800 (5.68 GB), LTX-Video 0.9's
    1,923,385,472 (7.69 GB)."""
    a = archs.VIDEO_ARCHS[arch]
    n = sum(p.numel() for p in a.meta().parameters())
    assert n == a.params
    assert abs(4 * n - {"animatediff-sd15": 1.82e9, "wan-1.3b": 5.68e9, "ltx-video": 7.69e9}[arch]) < 0.01e9


def test_animatediff_is_sd15s_unet_with_the_motion_modules_added():
    """The motion UNet AnimateDiffPipeline assembles holds SD v1.x's UNet and the adapter's modules, nothing else;
    the VAEs of the transformers as published (Wan 508 MB, LTX-Video 1.68 GB in float32)."""
    import torch
    with torch.device("meta"):
        unet = archs.motion_unet(archs.ANIMATEDIFF_SD15)
    assert sum(p.numel() for p in unet.parameters()) == archs.ARCHS["sd14"]["unet_params"] + 453_209_280
    assert sum(p.numel() for p in archs.WAN_13B.meta("vae").parameters()) == 126_892_531
    assert sum(p.numel() for p in archs.LTX_09.meta("vae").parameters()) == 419_193_649


def test_the_windows_fill_whole_latent_frames():
    """Each GPU window is a clip its pipeline renders as asked (frames 1 + r k, sides multiples of the patches)."""
    assert (archs.WAN_13B.frames - 1) % 4 == 0 and archs.WAN_13B.height % 16 == archs.WAN_13B.width % 16 == 0
    assert (archs.LTX_09.frames - 1) % 8 == 0 and archs.LTX_09.height % 32 == archs.LTX_09.width % 32 == 0
    assert archs.ANIMATEDIFF_SD15.frames <= archs.ANIMATEDIFF_SD15.configs["motion_adapter"]["motion_max_seq_length"]
