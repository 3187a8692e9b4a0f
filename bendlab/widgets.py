"""ipywidgets for live exploration: sliders laid out in a VBox, wired with `interactive_output`, rendering
on release (`continuous_update=False`) into one `widgets.Image` updated in place (no flicker, fixed height).

`slider_view` serves every figure notebook's closing slider cell; `explorer` is the full explorer of
notebooks/01_operators.ipynb. Renders are cached on their (hashable) arguments, so moving a slider back is free.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import functools
import io
import json
from typing import Callable

import numpy as np
from PIL import Image

from . import operators
from .bend import Bend

DISPLAY_SCALE = 4  # the shipped model's 64x64 images shown 256x256 (nearest neighbour)


def to_png(images, scale: int = DISPLAY_SCALE, gap: int = 4) -> bytes:
    """PNG bytes of one image or several side by side, upscaled `scale` times (nearest neighbour)."""
    if isinstance(images, Image.Image):
        images = [images]
    ims = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale != 1 else im for im in images]
    W = sum(im.width for im in ims) + gap * (len(ims) - 1)
    H = max(im.height for im in ims)
    canvas = Image.new("RGB", (W, H), "white")
    x = 0
    for im in ims:
        canvas.paste(im, (x, 0))
        x += im.width + gap
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


@functools.lru_cache(maxsize=256)
def _cached_render(pipe_key: int, prompt: str, bends_json: str, seed: int, steps: int, guidance: float):
    from .engine import render
    return render(prompt, [Bend.from_dict(b) for b in json.loads(bends_json)], pipe=_PIPES[pipe_key], seed=seed,
                  steps=steps, guidance=guidance)


_PIPES: dict[int, object] = {}


def render_cached(pipe, prompt: str, bends=(), seed: int = 46, steps: int = 50, guidance: float = 7.5):
    """engine.render memoised on its arguments (bends are Bend objects or recipe dicts)."""
    _PIPES[id(pipe)] = pipe
    key = json.dumps([b.to_dict() if isinstance(b, Bend) else b for b in bends], sort_keys=True)
    return _cached_render(id(pipe), prompt, key, seed, steps, guidance)


def slider_view(view: Callable, height: int = 280, **controls):
    """A VBox of the given widgets (name -> widget) above one Image updated in place with view(**values).

    `view` returns a PIL image or a list of them (shown side by side). The first render happens at once, so
    a headless run (papermill) exercises the render path. Returns the VBox; `.image` is the Image widget.
    """
    import ipywidgets as w
    for c in controls.values():
        if hasattr(c, "continuous_update"):
            c.continuous_update = False
    image = w.Image(format="png", layout=w.Layout(height=f"{height}px", object_fit="contain"))

    def update(**values):
        image.value = to_png(view(**values))

    out = w.interactive_output(update, controls)
    box = w.VBox([w.HBox(list(controls.values())[i:i + 3]) for i in range(0, len(controls), 3)] + [image, out])
    box.image = image
    box.controls = controls
    return box


def param_slider(op: str, value: float | None = None, description: str = "param r"):
    """A slider whose range suits the operator (radians for rotations, integers for kernels/channels)."""
    import ipywidgets as w
    lo, hi = operators.PARAM_RANGES[op]
    if op in ("reflect", "erode", "dilate"):
        return w.IntSlider(value=int(value if value is not None else lo), min=int(lo), max=int(hi),
                           description=description, continuous_update=False)
    return w.FloatSlider(value=float(value if value is not None else lo), min=lo, max=hi, step=(hi - lo) / 100,
                         description=description, continuous_update=False, readout_format=".3g")


def explorer(pipe, prompt: str = "a floating orb", op: str = "rotate1", param: float = 1.57, layer: int = 20,
             where: str = "all", seed: int = 46, steps: int = 50, strip_layers=(0, 10, 20, 30, 40, 49, 50),
             strip: bool = False):
    """Pickers for prompt, operator, parameter, layer, where and seed; shows the unbent image, the bent one,
    and (with the "layer strip" box ticked) the same bend across `strip_layers`, which costs about four
    renders. Returns the VBox (its `.image` holds the PNG shown)."""
    import ipywidgets as w

    from .engine import render_grid
    from .figures import fit_layer
    controls = dict(
        prompt=w.Text(value=prompt, description="prompt", continuous_update=False),
        op=w.Dropdown(options=list(operators.OPERATORS), value=op, description="operator"),
        param=w.FloatText(value=param, description="param r"),
        layer=w.IntSlider(value=min(layer, steps), min=0, max=steps, description="layer", continuous_update=False),
        where=w.Text(value=where, description="where", continuous_update=False),
        seed=w.IntText(value=seed, description="seed"),
        strip=w.Checkbox(value=strip, description="layer strip"),
    )
    status = w.HTML()

    def view(prompt, op, param, layer, where, seed, strip):
        try:
            bend = Bend(op, param, layer, where)
            plain = render_cached(pipe, prompt, (), seed, steps)
            bent = render_cached(pipe, prompt, (bend,), seed, steps)
            layers = sorted({fit_layer(L, steps) for L in strip_layers}) if strip else []
            rows = render_grid(prompt, op, [param], layers, where, pipe=pipe, seed=seed, steps=steps) if layers else []
            status.value = (f"left: no operator; next: {op}({param:g}) at layer {layer}, where {where}"
                            + (f"; then the same bend at layers {layers}" if layers else ""))
            return [plain, bent] + [row[0] for row in rows]
        except ValueError as e:  # bad input from a picker: say so, keep the last image
            status.value = f"<b style='color:#b00'>{e}</b>"
            return [Image.new("RGB", (pipe.unet.config.sample_size * pipe.vae_scale_factor,) * 2, "white")]

    box = slider_view(view, **controls)
    box.children = box.children + (status,)
    box.status = status
    return box


def image_array(box) -> np.ndarray:
    """The image a slider view currently shows, as an array (tests compare it before and after a change)."""
    return np.asarray(Image.open(io.BytesIO(box.image.value)))
