"""bendlab: network bending of Stable Diffusion (Dzwonczyk, Cella, Ban, DAFx 2024) and audio-reactive video.

    from bendlab import Bend, render
    img = render("a floating orb", [Bend("add", 1.0, layer=40)])
"""

from .bend import Bend
from .engine import render, render_batch, render_grid, render_img2img
from .models import load_pipeline
from .operators import OPERATORS
from .where import Where

__all__ = ["Bend", "Where", "OPERATORS", "render", "render_batch", "render_grid", "render_img2img", "load_pipeline"]
__version__ = "0.1.0"
