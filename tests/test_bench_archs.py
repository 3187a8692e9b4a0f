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
