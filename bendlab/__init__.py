"""bendlab: network bending of Stable Diffusion (Dzwonczyk, Cella, Ban, DAFx 2024) and audio-reactive video.

    from bendlab import Bend, render
    img = render("a floating orb", [Bend("add", 1.0, layer=40)])

The package's layers, each importing only those above it in this list (tests/test_imports.py holds it):
    checks, files, paper, lazy  the base: one error type and its validators, atomic files, the paper's settings,
                                imports on first use
    models/, audio/             model families and loading; audio decoding and features
    bend/                       operators, where, Bend, the fit checks, the hooks, rendering
    mapping, session, music/    audio feature -> bend; the recorded live session (a folder format); bending a
                                music model (Stable Audio's family)
    video/, live/               audio-reactive video; live performance
    ui/                         the command line, widgets, figures and plots, recipes
"""

from .lazy import exports

# what `from bendlab import ...` gives, by the module that defines it: imported on first use (`lazy`), so
# `import bendlab.checks` or the command line's parser does not pay for torch and diffusers
__all__ = exports(__name__, {
    "bend.bends": ("Bend",), "bend.where": ("Where",), "bend.operators": ("OPERATORS",),
    "bend.render": ("render", "render_batch", "render_grid", "render_img2img"), "models.load": ("load_pipeline",),
    "music.render": ("render_music", "render_music_grid"), "music.model": ("load_music_pipeline",)})
__version__ = "0.1.0"
