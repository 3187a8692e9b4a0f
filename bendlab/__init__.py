"""bendlab: network bending of Stable Diffusion (Dzwonczyk, Cella, Ban, DAFx 2024) and audio-reactive video.

    from bendlab import Bend, render
    img = render("a floating orb", [Bend("add", 1.0, layer=40)])

The package's layers, each importing only those above it in this list (tests/test_imports.py holds it):
    checks, files, paper       the base: one error type and its validators, atomic files, the paper's settings
    models/, audio/            model families and loading; audio decoding and features
    bend/                      operators, where, Bend, the fit checks, the hooks, rendering
    mapping, session, music/   audio feature -> bend; the recorded live session (a folder format); bending a
                               music model (Stable Audio's family)
    video/, live/              audio-reactive video; live performance
    ui/                        the command line, widgets, figures and plots, recipes
"""

import importlib

# what `from bendlab import ...` gives, and the sub-package each comes from: imported on first use (PEP 562), so
# `import bendlab.checks` or the command line's parser does not pay for torch and diffusers
_EXPORTS = {"Bend": "bend", "Where": "bend", "OPERATORS": "bend", "render": "bend", "render_batch": "bend",
            "render_grid": "bend", "render_img2img": "bend", "load_pipeline": "models", "render_music": "music",
            "render_music_grid": "music", "load_music_pipeline": "music"}
__all__ = list(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
