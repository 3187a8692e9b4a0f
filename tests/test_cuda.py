"""The CUDA / float16 path. Skipped cleanly where there is no GPU (CI has none); run on a GPU machine with
`pytest -m cuda`."""

import math

import numpy as np
import pytest
import torch

from bendlab import Bend, load_pipeline, render
from bendlab.bend import operators

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")]


@pytest.mark.parametrize("name,r", [("add", 1.0), ("threshold", 0.1), ("invert", 2.0), ("rotate1", math.pi / 3),
                                    ("reflect", 2), ("erode", 3), ("dilate", 2)])
def test_operators_float16_on_cuda_match_cpu(name, r):
    x = torch.randn(2, 4, 16, 16)
    f = operators.OPERATORS[name]
    y = f(x.cuda().half(), r)
    assert y.device.type == "cuda" and y.dtype == torch.float16
    torch.testing.assert_close(y.float().cpu(), f(x, r), atol=2e-2, rtol=1e-2)
    batched = f(x.cuda().half(), torch.tensor([r, r], device="cuda"))
    torch.testing.assert_close(batched, y)


def test_render_fp16_cuda_default_and_close_to_cpu():
    pipe = load_pipeline()
    assert pipe.device.type == "cuda" and pipe.unet.dtype == torch.float16
    a = render("a floating orb", [Bend("rotate1", 1.0, 10)], pipe=pipe, steps=20, output_type="np")
    b = render("a floating orb", [Bend("rotate1", 1.0, 10)], pipe=pipe, steps=20, output_type="np")
    assert np.abs(a - b).max() <= 1e-3
    cpu = render("a floating orb", [Bend("rotate1", 1.0, 10)], pipe=load_pipeline(device="cpu"), steps=20,
                 output_type="np")
    assert np.abs(a - cpu).mean() < 0.05  # the same noise (CPU generator) gives the same picture


@pytest.mark.parametrize("bend", [Bend("add", 1.0, 0, "fraction:0.05"), Bend("reflect", 2, 20, "row:3"),
                                  Bend("erode", 3, 15, "channel:1", norm="channel"),
                                  Bend("multiply", 2.0, 5, "region:0.1,0.1,0.6,0.6"),
                                  Bend("multiply", 2.0, (0, 10), module="mid_block")],
                         ids=["fraction", "row", "channel+norm", "region", "module"])
def test_every_where_and_module_bend_runs_on_cuda(bend):
    pipe = load_pipeline()
    plain = render("a gorgeous landscape", pipe=pipe, steps=20, output_type="np")
    bent = render("a gorgeous landscape", [bend], pipe=pipe, steps=20, output_type="np")
    assert np.isfinite(bent).all() and np.abs(bent - plain).mean() > 1e-3


def test_branching_and_img2img_on_cuda():
    from bendlab import render_grid, render_img2img
    pipe = load_pipeline()
    kw = dict(pipe=pipe, steps=20, output_type="np")
    fast = np.asarray(render_grid("a gorgeous landscape", "reflect", [0, 1, 2, 3], [10], **kw))
    slow = np.asarray(render_grid("a gorgeous landscape", "reflect", [0, 1, 2, 3], [10], branch=False, **kw))
    assert fast.shape == slow.shape and np.abs(fast - slow).max() < 2e-2  # float16: rounding, not 1e-5
    init = render("a floating orb", pipe=pipe, steps=20)
    out = render_img2img(pipe, [init, init], [Bend("rotate1", torch.tensor([0.0, 1.5]), 2)], prompt="a floating orb",
                         strength=0.6, steps=20, output_type="np")
    assert len(out) == 2 and np.abs(out[0] - out[1]).mean() > 1e-3


def test_sdxl_float16_on_cuda(tmp_path):
    """A tiny SDXL in float16 (its VAE upcast by the pipeline): finite, bends act, branching within rounding."""
    from conftest import tiny_sdxl

    from bendlab import render_grid
    pipe = load_pipeline(tiny_sdxl(tmp_path / "sdxl"))
    assert pipe.device.type == "cuda" and pipe.unet.dtype == torch.float16
    plain = render("mice", pipe=pipe, steps=8, output_type="np")
    bent = render("mice", [Bend("rotate1", 1.0, 4)], pipe=pipe, steps=8, output_type="np")
    assert np.isfinite(bent).all() and np.abs(bent - plain).mean() > 1e-3
    fast = np.asarray(render_grid("mice", "add", [0.5, 1.0], [4], pipe=pipe, steps=8, output_type="np"))
    slow = np.asarray(render_grid("mice", "add", [0.5, 1.0], [4], pipe=pipe, steps=8, output_type="np", branch=False))
    assert np.abs(fast - slow).max() < 2e-2


@pytest.mark.parametrize("arch,size", [("sd14", 512), ("sdxl", 1024)])
def test_real_architectures_stay_finite_in_float16(arch, size):
    """The random-weight SD v1.4 and SDXL of `bench.py --arch` at their native sizes in float16: a bent render
    is finite (the benchmark's numbers are of real work, not of NaNs)."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import archs
    pipe = archs.build(arch, "cuda", torch.float16, load_pipeline(device="cpu").tokenizer)
    img = render("a floating orb", [Bend("add", 1.0, 8)], pipe=pipe, steps=10, height=size, width=size,
                 output_type="np")
    assert img.shape == (size, size, 3) and np.isfinite(img).all()


def test_music_family_float16_on_cuda():
    """A tiny random Stable Audio pipeline in float16 on the GPU: finite, a time bend changes its span only (at the
    last layer), audio-to-audio runs."""
    from bendlab.music import render_music, tiny_random_pipeline
    pipe = tiny_random_pipeline().to("cuda", torch.float16)
    kw = dict(pipe=pipe, seconds=1.0, steps=8)
    plain = render_music("a high bell", **kw)
    bent = render_music("a high bell", [Bend("rotate1", 3.14, 8, "time:0.5-1")], **kw)
    diff = np.abs(bent.samples - plain.samples)[0]
    assert np.isfinite(bent.samples).all() and diff[:int(0.45 * plain.sr)].max() == 0 and diff.max() > 1e-3
    again = render_music("a high bell", **kw, audio=plain.samples, strength=0.5)
    assert np.isfinite(again.samples).all()
