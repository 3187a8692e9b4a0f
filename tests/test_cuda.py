"""The CUDA / float16 path. Skipped cleanly where there is no GPU (CI has none); run on a GPU machine with
`pytest -m cuda`."""

import math

import numpy as np
import pytest
import torch

from bendlab import Bend, load_pipeline, operators, render

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
