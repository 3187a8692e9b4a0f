"""ipywidgets for live exploration: sliders laid out in a VBox, wired with `interactive_output`, rendering
on release (`continuous_update=False`) into one `widgets.Image` updated in place (no flicker, fixed height).

`slider_view` serves every figure notebook's closing slider cell; `explorer` is the full explorer of
notebooks/01_operators.ipynb. Renders are cached on their (hashable) arguments, so moving a slider back is free,
in one `Renders` per pipeline that goes when the pipeline does (closing a view frees what it holds).
`LiveView` is the live view of notebooks/08_live.ipynb: a `live.Live` session's frames in one Image, updated in
place, with its readouts and controls.

The explorer answers a move from a cache of the unbent render's latent before every layer (one render fills
it): a bend at layer L then runs only the steps after L (branching, as `render_grid` does), so at layer 40 of
50 a new parameter value costs about a fifth of a render, and the layer strip goes through the same cache.

Notebook: notebooks/01_operators.ipynb
"""

from __future__ import annotations

import functools
import html
import io
import json
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from ..bend import operators
from .. import paper
from ..bend.bends import Bend
from ..checks import BendlabValueError
from ..models.sampler import is_stochastic
from ..models.model import usual_settings
from ..models.vocabulary import unknown_words_note

DISPLAY_SIDE = 256  # pixels: smaller images are enlarged (nearest neighbour, whole factors) to about this side
EXPLORER_SIDE = 384  # pixels: the explorer's before and after (the shipped model's 64 px x 6)
STRIP_SIDE = 128  # pixels: each panel of the explorer's layer strip


def to_png(images, scale: int | None = None, gap: int = 4, labels=None, side: int = DISPLAY_SIDE) -> bytes:
    """PNG bytes of one image or several side by side, upscaled `scale` times (nearest neighbour, so the shipped
    model's 64 px stay crisp pixels; None: a whole factor that brings small images to about `side` px, e.g. the
    shipped model's 64 px x 4 for 256, SD's 512 px x 1), each with its label (if given) written under it in a
    font about 1/16 of the side (at least 13 px)."""
    return _png(_row(images, scale, gap, labels, side))


def _png(canvas: Image.Image) -> bytes:
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def _row(images, scale: int | None = None, gap: int = 4, labels=None, side: int = DISPLAY_SIDE) -> Image.Image:
    """`to_png`'s picture, as an image."""
    from PIL import ImageDraw, ImageFont
    if isinstance(images, Image.Image):
        images = [images]
    scale = scale or max(1, side // max(im.width for im in images))
    ims = [im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale != 1 else im for im in images]
    size = max(13, max(im.width for im in ims) // 16)
    font = ImageFont.load_default(size=size)
    band = size + 8 if labels else 0
    W = sum(im.width for im in ims) + gap * (len(ims) - 1)
    H = max(im.height for im in ims) + band
    canvas = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(canvas)
    x = 0
    for k, im in enumerate(ims):
        canvas.paste(im, (x, 0))
        if labels:
            draw.text((x + 3, H - band + 3), str(labels[k]), fill="black", font=font)
        x += im.width + gap
    return canvas


def stacked_png(rows, gap: int = 10) -> bytes:
    """PNG bytes of several rows (each `_row`'s picture), one under the other, left-aligned on white."""
    W, H = max(r.width for r in rows), sum(r.height for r in rows) + gap * (len(rows) - 1)
    canvas = Image.new("RGB", (W, H), "white")
    y = 0
    for r in rows:
        canvas.paste(r, (0, y))
        y += r.height + gap
    return _png(canvas)


class Renders:
    """One pipeline's renders, memoised on their (hashable) arguments: full renders, the unbent render's latent
    before every layer (its trace), and one bend branched from that trace. The caches go when the pipeline does:
    they hold it by a weak reference, so a closed explorer or a notebook that loads another model frees it.
    `renders(pipe)` gives every caller of a pipeline the same one.

    Notebook: notebooks/01_operators.ipynb
    """

    def __init__(self, pipe):
        self._pipe = weakref.ref(pipe)
        self._render = functools.lru_cache(maxsize=256)(self._render_uncached)
        self._trace = functools.lru_cache(maxsize=8)(self._trace_uncached)
        self._branched = functools.lru_cache(maxsize=512)(self._branched_uncached)

    @property
    def pipe(self):
        pipe = self._pipe()
        if pipe is None:
            raise ReferenceError("the pipeline of these renders has been released")
        return pipe

    def render(self, prompt: str, bends=(), seed: int = paper.SEED, steps: int | None = None,
               guidance: float | None = None):
        """bend.render.render memoised on its arguments (bends are Bend objects or recipe dicts; steps and guidance
        None: the model's usual ones)."""
        steps, guidance = usual_settings(steps, guidance, pipe=self.pipe)
        key = json.dumps([b.to_dict() if isinstance(b, Bend) else b for b in bends], sort_keys=True)
        return self._render(prompt, key, seed, steps, guidance)

    def branched(self, prompt: str, bend: Bend | None = None, seed: int = paper.SEED, steps: int | None = None,
                 guidance: float | None = None):
        """The image of `prompt` with one bend (None: unbent), memoised, and branched from the cached latent
        before the bend's layer: only the steps after it run. A VAE bend decodes the cached final latent (no
        denoising); a UNet module or text bend, or a layer range, renders in full.
        Equal to `bend.render.render` within float rounding (tested to 1e-5)."""
        pipe = self.pipe
        steps, guidance = usual_settings(steps, guidance, pipe=pipe)
        if bend is None:
            return self._trace(prompt, seed, steps, guidance)[2]
        from ..bend.fit import check_bends, check_settings
        from ..bend.render import latent_shape
        check_settings(steps, guidance, seed)
        check_bends(pipe, [bend], steps, latent_shape(pipe, 1))
        if bend.kind not in ("latent", "vae") or isinstance(bend.layer, tuple) or is_stochastic(pipe.scheduler):
            return self.render(prompt, [bend], seed, steps, guidance)
        return self._branched(prompt, seed, steps, guidance, json.dumps(bend.to_dict(), sort_keys=True))

    def _render_uncached(self, prompt: str, bends_json: str, seed: int, steps: int, guidance: float):
        from ..bend.render import render
        return render(prompt, [Bend.from_dict(b) for b in json.loads(bends_json)], pipe=self.pipe, seed=seed,
                      steps=steps, guidance=guidance)

    def _trace_uncached(self, prompt: str, seed: int, steps: int, guidance: float):
        """The unbent render and its latent before every layer 0..steps: (embeddings, latents, image)."""
        from ..bend.hooks import bending
        from ..bend.render import denoise, encode_prompts, initial_noise
        pipe = self.pipe
        embeds = encode_prompts(pipe, [prompt])
        with bending(pipe, [], capture=range(steps + 1)) as cb:
            out = denoise(pipe, embeds, initial_noise(pipe, seed), steps=steps, guidance=guidance, callback=cb,
                          output_type="pil", seed=seed)
        return embeds, cb.captured, out.images[0]

    def _branched_uncached(self, prompt: str, seed: int, steps: int, guidance: float, bend_json: str):
        """The image of one latent bend at one layer, run from the cached latent before that layer (a VAE bend:
        from the final latent, so only the decode runs, as `bend.render.render_grid` branches VAE sweeps)."""
        from ..bend.render import run_batch
        embeds, latents, _ = self._trace(prompt, seed, steps, guidance)
        bend = Bend.from_dict(json.loads(bend_json))  # checked by `branched`
        start = steps if bend.kind == "vae" else bend.layer
        return run_batch(self.pipe, [bend], embeds, latents[start].clone(), steps=steps, guidance=guidance,
                         start=start)[0]


_RENDERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # pipeline -> its Renders, gone with it


def renders(pipe) -> Renders:
    """The pipeline's Renders (made on first use), shared by the explorer and the notebooks' slider cells."""
    if pipe not in _RENDERS:
        _RENDERS[pipe] = Renders(pipe)
    return _RENDERS[pipe]


def render_cached(pipe, prompt: str, bends=(), seed: int = paper.SEED, steps: int | None = None,
                  guidance: float | None = None):
    """bend.render.render memoised on its arguments (bends are Bend objects or recipe dicts; steps and guidance None:
    the model's usual ones): `renders(pipe).render`.

    Notebook: notebooks/02_figure1_pointwise.ipynb
    """
    return renders(pipe).render(prompt, bends, seed, steps, guidance)


def render_branched(pipe, prompt: str, bend: Bend | None = None, seed: int = paper.SEED, steps: int | None = None,
                    guidance: float | None = None):
    """The image of `prompt` with one bend (None: unbent), memoised and branched from the cached latent before
    the bend's layer: `renders(pipe).branched`."""
    return renders(pipe).branched(prompt, bend, seed, steps, guidance)


def slider_view(view: Callable, height: int = 280, **controls):
    """A VBox of the given widgets (name -> widget) above one Image updated in place with view(**values).

    `view` returns a PIL image, a list of them (shown side by side), an (images, labels) pair, PNG bytes, or
    None to keep the picture shown (after a bad input, say). The first render happens at once, so a headless run
    (papermill) exercises the render path. Returns the VBox; `.image` is the Image widget; `.close()` closes every
    widget in it (`close_view`).
    """
    import ipywidgets as w
    for c in controls.values():
        if hasattr(c, "continuous_update"):
            c.continuous_update = False
    image = w.Image(format="png", layout=w.Layout(height=f"{height}px", object_fit="contain"))

    def update(**values):
        shown = view(**values)
        if shown is None:
            return
        if isinstance(shown, bytes):
            image.value = shown
            return
        images, labels = shown if isinstance(shown, tuple) else (shown, None)
        image.value = to_png(images, labels=labels)

    out = w.interactive_output(update, controls)
    box = w.VBox([w.HBox(list(controls.values())[i:i + 3]) for i in range(0, len(controls), 3)] + [image, out])
    box.image = image
    box.controls = controls
    box.close = functools.partial(close_view, box)
    return box


def close_view(box) -> None:
    """Close a widget and every widget inside it. ipywidgets holds each widget until it is closed, and with it
    the callbacks it calls (and the pipeline they render with): closing the VBox alone would keep them."""
    for child in getattr(box, "children", ()):
        close_view(child)
    type(box).close(box)


def param_slider(op: str, value: float | None = None, description: str = "param r"):
    """A slider over the operator's own range and step (`operators.slider_range`): radians for rotations,
    whole numbers for kernels and channels."""
    import ipywidgets as w
    lo, hi, step = operators.slider_range(op)
    return w.FloatSlider(value=float(value if value is not None else lo), min=lo, max=hi, step=step,
                         description=description, continuous_update=False, readout_format=_readout(op))


def _readout(op: str) -> str:
    return ".0f" if op in operators.INTEGER_OPERATORS else ".4g"  # kernels and channels read as integers


def _rerange(slider, op: str) -> None:
    """Give the slider the operator's range and step, keeping its value where it fits."""
    lo, hi, step = operators.slider_range(op)
    value = min(max(round(slider.value / step) * step, lo), hi)
    _set_range(slider, lo, hi)
    slider.step, slider.value, slider.readout_format = step, value, _readout(op)


def _set_range(slider, lo: float, hi: float) -> None:
    if lo > slider.max:  # keep min <= max at every step
        slider.max, slider.min = hi, lo
    else:
        slider.min, slider.max = lo, hi


def operator_choices(target: str = "latent") -> list[str]:
    """The one-slider operators `target` takes, in `operators.OPERATORS` order: each tried as a `Bend` at its
    slider's low end, the same checks a render makes (no channel mixing on a module, attention-map transforms only
    on attn targets, two-number operators never: one slider cannot set them).

    Notebook: notebooks/01_operators.ipynb
    """
    at = None if target.partition(":")[0] == "vae" else 1
    ok = []
    for op in operators.OPERATORS:
        if op in operators.N_PARAMS:
            continue
        try:
            Bend(op, operators.slider_range(op)[0], at, "all", target=target)
        except ValueError:
            continue
        ok.append(op)
    return ok


def target_choices(model=None) -> list[str]:
    """The explorer's target options, from `models.bend_targets(model)` (its configs, no weights): "latent" first
    (the default), the UNet modules as "unet:NAME", the VAE decoder's blocks, "text", then any other bendable
    target (the attention modules' "attn:PATH" where the model lists them).

    Notebook: notebooks/01_operators.ipynb
    """
    from ..models.targets import bend_targets
    names = [t.name for t in bend_targets(model) if t.bendable]
    unet = [f"unet:{n}" for n in names if ":" not in n and n not in ("latent", "text")]
    vae = [n for n in names if n.startswith("vae:")]
    other = [n for n in names if ":" in n and not n.startswith("vae:")]
    return ["latent", *unet, *vae, "text", *other]


def _model_of(pipe):
    """The folder or hub id `pipe` was loaded from (None: not known, e.g. a pipeline built in memory)."""
    return getattr(pipe, "name_or_path", None) or None


def explorer(pipe, prompt: str = "a floating orb", op: str = "rotate1", param: float = 1.57, layer: int = 20,
             where: str = "all", seed: int = paper.SEED, steps: int | None = None,
             strip_layers=(0, 10, 20, 30, 40, 49, 50), strip: bool = False, guidance: float | None = None,
             target: str = "latent", targets=None):
    """Pickers for prompt, operator, parameter (a slider over the operator's own range, re-ranged when the
    operator changes, its exact value editable beside it), layer, where, seed and target; shows the unbent image,
    the bent one, and (with "layer strip" ticked) the same bend at each of `strip_layers`, every panel labelled.
    The target Dropdown lists `targets` (None: `target_choices` of the model `pipe` was loaded from; "latent"
    alone for a pipeline built in memory): the latent, a UNet module (the layer is then the step whose UNet
    evaluation it bends, 0..N-1), a VAE decoder block (bent once at decode: the layer and the strip do not
    apply; the cached final latent is decoded, no denoising) or the text (where="token:WORD" picks a word).
    The operator Dropdown lists the one-slider operators the target takes (`operator_choices`), updated with the
    target (an operator the new target does not take becomes the first one it does). A bad input, or a layer or
    where the target does not take, keeps the last picture and says why in one line. Returns the VBox
    (`.image`, `.controls`, `.status`, `.pipe` and `.renders`, the pipeline's caches); `.close()` closes it and
    every widget in it, and with them the explorer's hold on the pipeline.

    Notebook: notebooks/01_operators.ipynb
    """
    import ipywidgets as w

    ops = operator_choices(target)
    if op not in ops:
        raise BendlabValueError(f"operator {op!r} is not one the explorer offers for target {target!r}; accepted: "
                                f"{', '.join(ops)}")
    shown = renders(pipe)
    model = _model_of(pipe)
    steps, guidance = usual_settings(steps, guidance, pipe=pipe)
    slider = param_slider(op, param)
    exact = w.FloatText(value=slider.value, description="exact r", layout=w.Layout(width="180px"))

    def typed(change):  # a typed value outside the slider's range widens it rather than being clamped
        v = change["new"]
        if not (slider.min <= v <= slider.max):
            _set_range(slider, min(v, slider.min), max(v, slider.max))
        slider.value = v
    exact.observe(typed, names="value")
    slider.observe(lambda change: setattr(exact, "value", change["new"]), names="value")
    controls = dict(
        prompt=w.Text(value=prompt, description="prompt", continuous_update=False),
        op=w.Dropdown(options=ops, value=op,
                      description="operator"),  # one slider: the one-parameter operators the target takes
        param=slider,
        layer=w.IntSlider(value=min(layer, steps), min=0, max=steps, description="layer", continuous_update=False),
        where=w.Text(value=where, description="where", continuous_update=False),
        seed=w.IntText(value=seed, description="seed"),
        strip=w.Checkbox(value=strip, description="layer strip"),
        target=w.Dropdown(options=list(targets) if targets is not None else
                          target_choices(model) if model else ["latent"],
                          value=target, description="target"),
    )
    controls["op"].observe(lambda change: _rerange(slider, change["new"]), names="value")  # before the render

    def retarget(change):  # the operators the new target takes; one it does not becomes the first it does
        ops, current = operator_choices(change["new"]), controls["op"].value
        controls["op"].options = ops  # ipywidgets selects the first option
        if current in ops:
            controls["op"].value = current
    controls["target"].observe(retarget, names="value")  # before the render too
    status = w.HTML()

    def view(prompt, op, param, layer, where, seed, strip, target):
        kind = target.partition(":")[0]
        at = None if kind == "vae" else layer  # a VAE bend acts once, at decode
        try:
            bend = Bend(op, param, at, where, target=target)
            images = [shown.branched(prompt, None, seed, steps, guidance),
                      shown.branched(prompt, bend, seed, steps, guidance)]
            labels = ["no bend", f"{op}({param:.4g}) at layer {layer}" if kind == "latent" else
                      f"{op}({param:.4g}) at " + ("decode" if kind == "vae" else f"step {layer}")]
            top = steps if kind == "latent" else steps - 1  # modules and the text: the UNet's steps
            strip_images, strip_labels = [], []
            for L in sorted({min(paper.fit_layer(L, steps), top) for L in strip_layers}) if strip and at is not None \
                    else []:
                strip_images.append(shown.branched(prompt, Bend(op, param, L, where, target=target), seed, steps,
                                                   guidance))
                strip_labels.append(f"layer {L}")
        except ValueError as e:  # bad input from a picker, or one the target does not take: say so, keep the picture
            status.value = f"<b style='color:#b00'>{e}</b>"
            return None
        if kind == "latent":
            status.value = f"{op}({param:.4g}) at layer {layer}, where {where}" + (
                "; the strip: the same bend at each layer" if strip else "")
        else:
            status.value = f"{op}({param:.4g}) on {target} " + (
                "when the VAE decodes (the layer and the strip do not apply)" if kind == "vae" else
                f"at step {layer}") + f", where {where}" + (
                "; the strip: the same bend at each step" if strip and kind != "vae" else "")
        note = unknown_words_note(model, [prompt]) if model else None
        if note:  # a word the shipped model never saw: say so under the picture
            status.value += f"<br><i>{html.escape(note)}</i>"
        rows = [_row(images, labels=labels, side=EXPLORER_SIDE)]
        if strip_images:
            rows.append(_row(strip_images, labels=strip_labels, side=STRIP_SIDE))
        if picture:  # the image widget fits the picture: no empty bands
            picture[0].layout.height = f"{sum(r.height for r in rows) + 10 * (len(rows) - 1)}px"
        return stacked_png(rows)

    picture = []
    box = slider_view(view, height=EXPLORER_SIDE + 30, **controls)
    picture.append(box.image)
    wide = dict(width="640px")
    for name in ("prompt", "param", "layer"):
        controls[name].layout = w.Layout(**wide)
    for c in controls.values():
        c.style.description_width = "80px"
    exact.style.description_width = "60px"
    box.children = (w.HBox([controls["prompt"]]), w.HBox([controls["target"], controls["op"], controls["where"]]),
                    w.HBox([controls["param"], exact]), w.HBox([controls["layer"], controls["seed"]]),
                    controls["strip"], *box.children[-2:], status)
    box.image.layout.width = "auto"
    if box.image.value:  # the first picture, rendered before `picture` was known
        box.image.layout.height = f"{Image.open(io.BytesIO(box.image.value)).height}px"
    box.status = status
    box.pipe, box.renders = pipe, shown  # its state: the pipeline (held while the explorer is open), its caches
    return box


def image_array(box) -> np.ndarray:
    """The image a slider view currently shows, as an array (tests compare it before and after a change)."""
    return np.asarray(Image.open(io.BytesIO(box.image.value)))


def input_devices() -> list[tuple[str, int]]:
    """PortAudio's input devices as (label, index) Dropdown options; none where PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError:  # no PortAudio library: a file is the only input
        return []
    return [(f"{i}: {d['name']}", i) for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


class LiveView:
    """The live view of a `live.Live` session: one Image updated in place with every frame, readouts of the
    achieved fps, the audio-to-frame latency (p50/p95) and the frames shown/dropped, a start/stop toggle, the
    input (the file `play`, played to `output`, or a PortAudio input device), per mapping sliders for its low,
    high and layer and the prompt box (set on the running session through `Live.controls`, and kept for the next
    start), and a record box (each run a new session folder under `out_dir`; the last one in `.session`).

    `run(seconds)` plays a session in the caller's thread (a notebook cell, papermill); the toggle runs one in a
    thread until it is pressed again or the input ends. `.box` is the VBox to display; `.live` the last session.

    Notebook: notebooks/08_live.ipynb
    """

    READOUT_EVERY = 0.25  # seconds between readout updates (the image: every frame)

    def __init__(self, spec, pipe, play, output=None, out_dir=None, record: bool = False, height: int = 280):
        import ipywidgets as w
        from ..live.loop import resolve
        from ..models.model import Model
        self.spec, self.pipe, self.play, self.output = resolve(spec, Model.of(spec.model, pipe)), pipe, play, output
        self.out_dir, self.live, self.session, self._thread, self._shown = out_dir, None, None, None, 0.0
        self._prompt_shown: int | None = None  # the prompt index of the frame on screen
        self.image = w.Image(format="png", layout=w.Layout(height=f"{height}px", object_fit="contain"))
        spaced = dict(layout=w.Layout(margin="0 24px 0 0"))  # readouts side by side, apart
        self.fps, self.latency, self.frames, self.status = w.Label(**spaced), w.Label(**spaced), w.Label(), w.Label()
        self.toggle = w.ToggleButton(description="start", icon="play")
        self.input = w.Dropdown(options=[(f"{Path(play).name} (played)", "play")] + input_devices(),
                                description="input")
        self.record = w.Checkbox(value=record, description="record", disabled=out_dir is None)
        self.prompt = w.Text(value=self.spec.prompts[0], description="prompt", continuous_update=False,
                             layout=w.Layout(width="500px"))
        rows = []
        for j, m in enumerate(self.spec.mappings):
            lo, hi, step = operators.slider_range(m.op)
            label = f"mapping {j + 1}: "
            wide = dict(style={"description_width": "initial"}, layout=w.Layout(width="300px"))
            row = [w.FloatSlider(value=v, min=min(lo, v), max=max(hi, v), step=step, description=f"{label}{name}",
                                 readout_format=_readout(m.op), **wide) for name, v in (("low", m.low),
                                                                                        ("high", m.high))]
            row.append(w.IntSlider(value=m.layer, min=0, max=self.spec.steps, description=f"{label}layer", **wide))
            for field, s in zip(("low", "high", "layer"), row):
                s.observe(functools.partial(self._set, j, field), names="value")
            rows.append(w.HBox(row))
        self.prompt.observe(self._set_prompt, names="value")
        self.toggle.observe(self._toggled, names="value")
        self.box = w.VBox([w.HBox([self.toggle, self.input, self.record]), self.image,
                           w.HBox([self.fps, self.latency, self.frames]), *rows, self.prompt, self.status])

    def _ipython_display_(self):
        from IPython.display import display
        display(self.box)

    # ------------------------------------------------------------------ the performer's changes
    def _set(self, j: int, field: str, change) -> None:
        from ..checks import BendlabValueError
        try:
            if self.live is not None and self.live.controls is not None and self.running:
                self.live.controls.set(j, field, change["new"])
            mappings = list(self.spec.mappings)
            mappings[j] = replace(mappings[j], **{field: change["new"]})  # kept for the next start
            self.spec.mappings = mappings
        except (BendlabValueError, ValueError) as e:  # a range the operator refuses: say so, play on
            self.status.value = str(e)

    def _set_prompt(self, change) -> None:
        from ..checks import BendlabValueError
        try:
            if self.live is not None and self.live.controls is not None and self.running:
                self.live.controls.set_prompt(change["new"])
            self.spec.prompts = [change["new"]]
        except BendlabValueError as e:
            self.status.value = str(e)

    # ------------------------------------------------------------------ a session
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _audio_in(self):
        from ..live import audio_in as audioin
        if self.input.value == "play":
            return audioin.Player(self.play, self.spec.sr, device=self.output)
        return audioin.Microphone(self.input.value, self.spec.sr)

    def _folder(self):
        if not (self.record.value and self.out_dir is not None):
            return None
        stem = Path(self.out_dir) / time.strftime("session-%Y%m%d-%H%M%S")
        folder, k = stem, 1
        while folder.exists():
            folder, k = stem.with_name(f"{stem.name}-{k}"), k + 1
        return folder

    def _frame(self, image, info) -> None:
        self.image.value = to_png(image)
        self._prompt_shown = info.prompt
        if time.monotonic() - self._shown >= self.READOUT_EVERY:
            self._readouts()

    def _readouts(self) -> None:
        st, self._shown = self.live.stats, time.monotonic()
        self.fps.value = f"{st.fps:.1f} fps (target {self.spec.fps:g})"
        self.latency.value = f"latency p50 {st.latency(50) * 1000:.0f} ms, p95 {st.latency(95) * 1000:.0f} ms"
        prompts = self.live.controls.prompts if self.live.controls is not None else self.spec.prompts
        shown = self._prompt_shown if self._prompt_shown is not None and self._prompt_shown < len(prompts) else None
        # a new prompt shows once its first steps are computed: say which one is on screen
        self.frames.value = f"{st.frames} shown, {st.dropped} dropped" + (
            "" if shown is None else f"; showing {prompts[shown]!r}")

    def run(self, seconds: float | None = None) -> str:
        """Play a session here until `seconds`, the input's end or a stop; returns why it stopped."""
        from ..live.loop import Live, stop_words
        if self.running and self._thread is not threading.current_thread():
            raise RuntimeError("a session is playing (the start/stop button); stop it first")
        folder = self._folder()
        self.live = Live(self.spec, self._audio_in(), pipe=self.pipe, record=folder, on_frame=self._frame,
                         status=False)
        self.status.value = (f"playing {Path(self.play).name}" if self.input.value == "play" else
                             f"listening to {self.input.label}") + (f", recording to {folder}" if folder else "")
        reason = self.live.run(seconds)
        self._readouts()
        self.session = folder or self.session
        why = "you stopped it" if reason == "stopped" else stop_words(reason, seconds)  # the button, not Ctrl-C
        self.status.value = f"stopped: {why}" + (f"; recorded in {folder}" if folder else "")
        return reason

    def start(self) -> None:
        """Play a session in a thread (what the toggle does)."""
        if not self.running:
            self._thread = threading.Thread(target=self._played, daemon=True, name="bendlab-live-view")
            self._thread.start()

    def _played(self) -> None:
        try:
            self.run()
        except Exception as e:  # noqa: BLE001 - shown under the picture: the thread has no one else to tell
            self.status.value = f"{type(e).__name__}: {e}"
        finally:
            self.toggle.value = False

    def stop(self) -> None:
        """Stop the session the toggle started (its recording closed) and wait for it."""
        if self.live is not None:
            self.live.stop(wait=False)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def _toggled(self, change) -> None:
        self.toggle.description, self.toggle.icon = ("stop", "stop") if change["new"] else ("start", "play")
        if change["new"]:
            self.start()
        else:
            self.stop()


# ------------------------------------------------------------------------------------------ sound (music models)
def wav_bytes(sound) -> bytes:
    """A `music.render.Sound` as 16-bit WAV bytes (peak-normalised if it would clip): what ipywidgets.Audio plays."""
    import io

    import soundfile as sf
    data = sound.samples / max(1.0, sound.peak)
    buf = io.BytesIO()
    sf.write(buf, data.T, sound.sr, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def spectrogram_png(sounds, labels=None) -> bytes:
    """`plots.plot_spectrograms` of the sounds as PNG bytes (for an Image widget updated in place)."""
    import io

    import matplotlib.pyplot as plt
    from .plots import plot_spectrograms
    axes = plot_spectrograms(sounds, labels)
    fig = axes[0].figure
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def audio_players(pairs, columns: int = 4):
    """A grid of labelled players, one per (label, Sound): hear a figure's sounds under its spectrograms."""
    import ipywidgets as w
    cells = [w.VBox([w.Label(label), w.Audio(value=wav_bytes(s), format="wav", autoplay=False, loop=False,
                                             layout=w.Layout(width="220px"))]) for label, s in pairs]
    return w.VBox([w.HBox(cells[i:i + columns]) for i in range(0, len(cells), columns)])


def sound_view(view: Callable, **controls):
    """Controls (name -> widget) above a player and the sound's spectrogram, both updated in place with the
    `Sound` view(**values) returns (None keeps what is shown). Renders once at once (papermill exercises it) and
    again on each release of a control; the player starts on each new sound. Returns the VBox (`.audio`,
    `.image`, `.close()`)."""
    import ipywidgets as w
    for c in controls.values():
        if hasattr(c, "continuous_update"):
            c.continuous_update = False
    audio = w.Audio(format="wav", autoplay=True, loop=False)
    image = w.Image(format="png", layout=w.Layout(height="240px", object_fit="contain"))

    def update(**values):
        sound = view(**values)
        if sound is None:
            return
        audio.value = wav_bytes(sound)
        image.value = spectrogram_png([sound])

    out = w.interactive_output(update, controls)
    box = w.VBox([w.HBox(list(controls.values())[i:i + 3]) for i in range(0, len(controls), 3)] + [audio, image, out])
    box.audio, box.image, box.controls = audio, image, controls
    box.close = functools.partial(close_view, box)
    return box
