"""bendlab: network bending of Stable Diffusion (Dzwonczyk, Cella, Ban, DAFx 2024) and audio-reactive video.

    from bendlab import Bend, render
    img = render("a floating orb", [Bend("add", 1.0, layer=40)])

The package's layers, each importing only those above it in this list (tests/test_imports.py holds it):
    checks, files, paper       the base: one error type and its validators, atomic files, the paper's settings
    models/, audio/            model families and loading; audio decoding and features
    bend/                      operators, where, Bend, the fit checks, the hooks, rendering
    mapping, session           audio feature -> bend; the recorded live session (a folder format)
    video/, live/              audio-reactive video; live performance
    ui/                        the command line, widgets, figures and plots, recipes
"""

from .bend import OPERATORS, Bend, Where, render, render_batch, render_grid, render_img2img
from .models import load_pipeline

__all__ = ["Bend", "Where", "OPERATORS", "render", "render_batch", "render_grid", "render_img2img", "load_pipeline"]
__version__ = "0.1.0"
