"""Every figure of the paper (and of its discussion) as data, how to render it, and the one `savefig`.

`FIGURES` is the single spec: prompts, operators, parameters, layers, where, panel labels. The notebooks and
the tests read it; nothing is written twice. Layers are given for the paper's 50 steps; `fit_layer` maps
them proportionally when a notebook runs with fewer steps (its fast mode).

`savefig(fig, name)` writes `out/figures/<name>.png` under the working folder (the folder overridable by
$BENDLAB_FIGURES; `make figures` sets it to the repository's committed figures/, and nothing else writes there)
and records the
figure's spec hash and render settings in `manifest.json` beside it, so a test can tell that every committed
figure was produced by the current spec.

Notebook: notebooks/02_figure1_pointwise.ipynb (and 03-06)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


from ..bend.bends import Bend
from ..files import savefig_atomic, write_text_atomic
from ..paper import SEED as PAPER_SEED, STEPS as PAPER_STEPS, fit_layer
from ..checks import BendlabValueError

PI = math.pi
REPO_FIGURES = Path(__file__).resolve().parents[2] / "figures"


@dataclass
class Panel:
    label: str
    prompt: str
    bends: list[dict] = field(default_factory=list)


@dataclass
class Sweep:
    """A grid: rows = layers, columns = params (rendered with branching by bend.render.render_grid)."""

    prompt: str
    op: str
    params: list[float]
    layers: list[int]
    where: str = "all"
    norm: str | None = None
    param_fmt: str = "{:g}"


@dataclass
class Figure:
    name: str  # file stem: figures/<name>.png
    title: str
    notebook: str
    panels: list[Panel] = field(default_factory=list)
    sweeps: list[Sweep] = field(default_factory=list)
    ncols: int = 5
    settings: str = ""  # one line for figures/README.md

    def spec_hash(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k not in ("notebook", "settings")}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _angles(n: int = 8) -> list[float]:
    return [round(2 * PI * k / n, 6) for k in range(n)]


def _b(op, param, layer, where="all", norm=None) -> dict:
    d = {"op": op, "param": param, "layer": layer, "where": where}
    if norm:
        d["norm"] = norm
    return d


ORB, LAND = "a floating orb", "a gorgeous landscape"
# the R1 angle (layer 0) per homograph for Figure 3's main panel, chosen from its angle strip where the meaning
# flips with the shipped model: the bird becomes a building crane at 1.5 pi, the cricket pitch an insect at
# 0.5 pi, the burning match a football match at 1.5 pi; no angle turns the bass fish into an instrument (pi
# shown: the shape changes most there). The paper's crane used 0.5 pi with SD v1.4.
HOMOGRAPHS = {"a photo of a crane": 1.5 * PI, "bass": PI, "cricket": 0.5 * PI, "a match": 1.5 * PI}
INVERT_STRIP = [1.0, 3.0, 10.0, 30.0, 100.0, 1000.0]
SWEEP_LAYERS = [0, 10, 20, 30, 40, 49, 50]
SWEEP_PARAMS = {  # a few values per operator for the layer sweeps
    "add": [-1.0, 1.0, 2.0], "multiply": [-1.0, 2.0, 10.0], "threshold": [-0.5, 0.1, 0.5],
    "gate": [0.1, 0.5, 1.0], "invert": [1.0, 30.0, 1000.0], "rotate1": [0.5 * PI, PI, 1.5 * PI],
    "rotate2": [0.5 * PI, PI, 1.5 * PI], "rotate3": [0.5 * PI, PI, 1.5 * PI], "rotate4": [0.5 * PI, PI, 1.5 * PI],
    "reflect": [0, 1, 2, 3], "erode": [2, 4], "dilate": [2, 4],
}

FIGURES: dict[str, Figure] = {}


def _add(fig: Figure) -> None:
    FIGURES[fig.name] = fig


_add(Figure(
    "fig1-pointwise", "Figure 1: point-wise operators on \"a floating orb\"", "02_figure1_pointwise.ipynb",
    panels=[
        Panel("(a) no operator", ORB),
        Panel("(b) add 1, layer 40", ORB, [_b("add", 1.0, 40)]),
        Panel("(c) add 1, layer 0, 5%", ORB, [_b("add", 1.0, 0, "fraction:0.05")]),
        Panel("(d) multiply 10, layer 49", ORB, [_b("multiply", 10.0, 49)]),
        Panel("(e) threshold 0.1, layer 49", ORB, [_b("threshold", 0.1, 49)]),
        Panel("(e') gate 0.1, layer 49", ORB, [_b("gate", 0.1, 49)]),
        *[Panel(f"({c}) invert 1000, layer {L}", ORB, [_b("invert", 1000.0, L)])
          for c, L in zip("fghij", (0, 3, 6, 9, 49))],
    ], ncols=6,
    settings="\"a floating orb\"; (b) add 1 @40; (c) add 1 @0 on 5%; (d) x10 @49; (e) threshold 0.1 @49 and "
             "the authors' gate; (f)-(j) invert 1000 @0,3,6,9,49"))

_add(Figure(
    "fig2-rotation-sweep", "Figure 2: R1 at layer 20, angle swept over [0, 2 pi] (9 angles)",
    "03_figure2_rotation_sweep.ipynb",
    sweeps=[Sweep(LAND, "rotate1", _angles(8) + [round(2 * PI, 6)], [20], param_fmt="{:.2f} rad")], ncols=9,
    settings="\"a gorgeous landscape\"; rotate1 @20; 9 angles 0..2 pi, as the authors' grid (2 pi = no turn)"))

_add(Figure(
    "fig3-semantic-shift", "Figure 3: semantic shift, R1 at layer 0 (top: no operator)",
    "04_figure3_semantic_shift.ipynb",
    panels=[Panel(p, p) for p in HOMOGRAPHS]
    + [Panel(f"R1 {a / PI:g} pi, layer 0", p, [_b("rotate1", round(a, 6), 0)]) for p, a in HOMOGRAPHS.items()],
    ncols=4, settings="crane, bass, cricket, a match; rotate1 @0 at the angle where each meaning flips (from the "
                      "strips; bass: none flips)"))

_add(Figure(
    "fig3-angle-strips", "Figure 3, extended: R1 at layer 0, angle strip per homograph",
    "04_figure3_semantic_shift.ipynb",
    sweeps=[Sweep(p, "rotate1", _angles(8), [0], param_fmt="{:.2f} rad") for p in HOMOGRAPHS], ncols=8,
    settings="each homograph; rotate1 @0; 8 angles"))
_add(Figure(
    "fig3-reflect-strips", "Figure 3, extended: reflection across each channel at layer 0, per homograph",
    "04_figure3_semantic_shift.ipynb",
    sweeps=[Sweep(p, "reflect", [0, 1, 2, 3], [0], param_fmt="channel {:g}") for p in HOMOGRAPHS], ncols=4,
    settings="each homograph; reflect channel 0..3 @0 (the paper: reflections shift meaning too)"))
_add(Figure(
    "fig3-invert-strips", "Figure 3, extended: inversion at layer 0, per homograph", "04_figure3_semantic_shift.ipynb",
    sweeps=[Sweep(p, "invert", INVERT_STRIP, [0], param_fmt="r = {:g}") for p in HOMOGRAPHS], ncols=6,
    settings=f"each homograph; invert r in {INVERT_STRIP} @0 (the paper: inversion shifts meaning too)"))

_add(Figure(
    "fig4-scene-change", "Figure 4: scene change (top: no operator)", "05_figure4_scene_change.ipynb",
    panels=[Panel("(a) " + ORB, ORB), Panel("(b) " + LAND, LAND), Panel("(c) mice", "mice"),
            Panel("invert 30, layer 0", ORB, [_b("invert", 30.0, 0)]),
            Panel("add 2, layer 0, 5%", LAND, [_b("add", 2.0, 0, "fraction:0.05")]),
            Panel("R1 pi, layer 0", "mice", [_b("rotate1", round(PI, 6), 0)])],
    ncols=3, settings="(a) orb invert 30 @0; (b) landscape add 2 @0 on 5%; (c) mice rotate1 pi @0"))

_add(Figure(
    "disc-green-bar", "Discussion: a scalar added to the middle row only", "06_discussion_experiments.ipynb",
    panels=[Panel("no operator", LAND)]
    + [Panel(f"add {r:g} to the middle row, layer {L}", LAND, [_b("add", r, L, "row:mid")]) for L in (0, 25, 49)
       for r in (2.0,)]
    + [Panel("add 2 to the middle column, layer 49", LAND, [_b("add", 2.0, 49, "column:mid")]),
       Panel("add 2 to region, layer 49", LAND, [_b("add", 2.0, 49, "region:0.5,0,1,0.5")])],
    ncols=6, settings="landscape; add 2 to the middle latent row (row:mid: 8 of 16 here, 32 of 64 in SD) @0,25,49; "
                      "column and region"))

_add(Figure(
    "disc-reflections", "Discussion: reflection across each latent channel", "06_discussion_experiments.ipynb",
    sweeps=[Sweep(ORB, "reflect", [0, 1, 2, 3], [0, 25, 49], param_fmt="channel {:g}")], ncols=4,
    settings="orb; reflect channel 0..3 @0,25,49"))

_add(Figure(
    "disc-morphology", "Discussion: erosion and dilation (kernel 4) with mean-normalisation",
    "06_discussion_experiments.ipynb",
    panels=[Panel(f"{op}{' + norm ' + n if n else ''}, layer {L}", LAND, [_b(op, 4, L, norm=n)])
            for op in ("erode", "dilate") for n in (None, "channel", "row", "column") for L in (25, 50)],
    ncols=8, settings="landscape; erode/dilate kernel 4, none/channel/row/column norm, @25 and @50 (before decode)"))
_add(Figure(
    "disc-morphology-early", "Discussion: erosion and dilation (kernel 4) at the early layers, where they act most",
    "06_discussion_experiments.ipynb",
    panels=[Panel(f"{op}{' + norm ' + n if n else ''}, layer {L}", LAND, [_b(op, 4, L, norm=n)])
            for op in ("erode", "dilate") for n in (None, "channel", "row", "column") for L in (0, 5, 10)],
    ncols=6, settings="landscape; erode/dilate kernel 4, none/channel/row/column norm, @0, 5 and 10"))

for _op, _params in SWEEP_PARAMS.items():
    _add(Figure(
        f"sweep-{_op}", f"Layer sweep: {_op} (rows: layers, columns: r)", "06_discussion_experiments.ipynb",
        sweeps=[Sweep(ORB, _op, _params, SWEEP_LAYERS)], ncols=len(_params),
        settings=f"orb; {_op} r in {_params}; layers {SWEEP_LAYERS}"))

# the img2img chain strip (issue 21): the paper's method B on the shipped piano (each frame from the previous, empty
# prompt after the first; R1 driven by RMS over the mapping's default 0..2 pi at its default layer), one row per
# finishing setting, one column per frame; rendered by `make_chain_strip`, not `render_figure`
PIANO_FILE = Path(__file__).resolve().parents[1] / "data" / "piano.ogg"  # the shipped synthesized piano
CHAIN = {"prompt": "3D mesh geometry", "strength": 0.5, "fps": 10.0, "feature": "rms", "op": "rotate1"}
CHAIN_FRAMES = (0, 10, 20, 40, 60)
CHAIN_ROWS = {  # row label -> the VideoSpec settings it adds
    "none (the paper)": {"color_coherence": "none"},
    "--color-coherence lab": {"color_coherence": "lab"},
    "lab + --flow 0.5": {"color_coherence": "lab", "flow": 0.5},
    "lab + --flow 1": {"color_coherence": "lab", "flow": 1.0},
}
_add(Figure(
    "video-coherence", f"The img2img chain on the piano: \"{CHAIN['prompt']}\", strength {CHAIN['strength']:g}, "
    f"{CHAIN['fps']:g} fps, {CHAIN['op']} <- {CHAIN['feature']}; rows: {'; '.join(CHAIN_ROWS)}",
    "07_audio_reactive_video.ipynb", ncols=len(CHAIN_FRAMES),
    settings=f"shipped piano; img2img, strength {CHAIN['strength']:g}, {CHAIN['fps']:g} fps, {CHAIN['op']} driven by "
             f"{CHAIN['feature']}; frames {', '.join(map(str, CHAIN_FRAMES))}; rows: no coherence, "
             "--color-coherence lab, lab + --flow 0.5, lab + --flow 1; each panel: its L* mean change from frame 0 "
             "and SSIM"))


# the three ways to make a video, and the video method's seams (issue 27 section 4): notebooks/10_video_models.ipynb;
# rendered by `make_methods_figure` (video.compare), not `render_figure`
METHODS_VIDEO = {"prompt": "a floating orb", "fps": 10.0, "seconds": 4.0, "feature": "rms", "op": "rotate1",
                 "low": 0.0, "high": round(PI, 6)}
METHODS_FRAMES = tuple(range(8, 16))  # 8 consecutive frames: 0.8-1.5 s, the piano's first notes
METHODS_WINDOW = (16, 4)  # the video method's window and overlap (frames)
_add(Figure(
    "video-methods", f"Three ways to a video of \"{METHODS_VIDEO['prompt']}\" on the piano, {METHODS_VIDEO['op']} <- "
    f"{METHODS_VIDEO['feature']} (rows: method A, method B with LAB, the video method; then how much each frame "
    "changes from the one before)", "10_video_models.ipynb", ncols=len(METHODS_FRAMES),
    settings=f"shipped piano, first {METHODS_VIDEO['seconds']:g} s at {METHODS_VIDEO['fps']:g} fps; "
             f"{METHODS_VIDEO['op']} driven by {METHODS_VIDEO['feature']} over {METHODS_VIDEO['low']:g}..pi at the "
             f"default layer; frames {METHODS_FRAMES[0]}-{METHODS_FRAMES[-1]}; A: txt2img, sin/cos noise walk; "
             "B: img2img strength 0.5, --color-coherence lab; video: AnimateDiff with the shipped motion adapter, "
             "windows of 16 overlapping by 4"))
_add(Figure(
    "video-seams", "The video method's window seams on the piano: the change of each frame from the one before, "
    "windows shaded", "10_video_models.ipynb",
    settings="the video method's frames of video-methods (4 s at 10 fps: windows 0-15, 12-27, 24-39); seam pairs "
             "marked, mean across the seams and within the windows"))


# the bend targets and what a model computes inside (issue 20 section 3): notebooks/09_bending_targets.ipynb
ATTN2_DOWN = "down_blocks.2.attentions.0.transformer_blocks.0.attn2"  # the first cross-attention of the UNet
ATTN2_MID = "mid_block.attentions.0.transformer_blocks.0.attn2"
TARGET_ROWS = {  # row label -> what a bend of that row targets (a paper layer, or a range of UNet steps)
    "latent, layer 20": {"layer": 20},
    "unet:mid_block, steps 0-49": {"layer": [0, 49], "target": "unet:mid_block"},
    "vae:decoder.up_blocks.1, at decode": {"target": "vae:decoder.up_blocks.1"},
    "text token:orb, steps 0-49": {"layer": [0, 49], "where": "token:orb", "target": "text"},
    "attn:down_blocks.2...attn2 token:orb, steps 0-49": {"layer": [0, 49], "where": "token:orb",
                                                          "target": "attn:" + ATTN2_DOWN},
}
TARGET_PARAMS = [-1.0, 0.0, 0.5, 1.0, 2.0, 4.0]  # multiply r: 1 is no bend
_add(Figure(
    "targets-multiply", "Bend targets: multiply r on \"a floating orb\" (rows: targets; columns: r, 1 = no bend)",
    "09_bending_targets.ipynb",
    panels=[Panel(f"{row}: r = {r:g}" if j == 0 else f"r = {r:g}", ORB,
                  [{"op": "multiply", "param": r, "where": "all", **t}])
            for row, t in TARGET_ROWS.items() for j, r in enumerate(TARGET_PARAMS)],
    ncols=len(TARGET_PARAMS),
    settings=f"orb; multiply r in {TARGET_PARAMS} on the latent @20, unet:mid_block steps 0-49, "
             "vae:decoder.up_blocks.1 at decode, the text embedding of \"orb\" steps 0-49, the attention "
             "probabilities of \"orb\" in down_blocks.2's attn2 steps 0-49 (rows renormalised)"))

FOLLOW_UP = {  # the authors' follow-up operators (issue 20 section 2): row label -> (op, param)
    "hadamard": ("hadamard", 0.0),
    "rotate6, pi/4 in all six planes": ("rotate6", [round(PI / 4, 6)] * 6),
    "rotate6, pi/2 in all six planes": ("rotate6", [round(PI / 2, 6)] * 6),
    "matrix: channel k <- channel k+1 (mod 4)": ("matrix", [0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0]),
}
_add(Figure(
    "targets-follow-up-operators", "The authors' follow-up operators on the latent (rows: operators; columns: layers)",
    "09_bending_targets.ipynb",
    panels=[Panel(f"{row}\nlayer {L}" if j == 0 else f"layer {L}", ORB, [_b(op, prm, L)])
            for row, (op, prm) in FOLLOW_UP.items() for j, L in enumerate(SWEEP_LAYERS)],
    ncols=len(SWEEP_LAYERS),
    settings=f"orb; hadamard, rotate6 (pi/4 and pi/2 in every plane), matrix (a cycle of the channels); layers "
             f"{SWEEP_LAYERS}"))


@dataclass
class View:
    """One row of an insides figure: `prompt` rendered with `bends`, seen through the figure's view. target: the
    module (feature maps: "unet:PATH" or "vae:PATH"; cross-attention: a UNet path); layer: a paper layer (of 50),
    the step of a UNet view (None: a VAE view, at decode); means: channel means instead of channels."""

    label: str
    prompt: str
    bends: list[dict] = field(default_factory=list)
    target: str = ""
    layer: int | None = None
    means: bool = False


@dataclass
class Insides(Figure):
    """A figure of what the model computes inside (`make_insides_figure` renders it): `view` is "feature_maps"
    (each row: its views' maps side by side), "latent_steps" (each row: the 4 channels at `layers`) or
    "cross_attention" (each row: the image and its word tokens' maps); `rows` label -> the row's `View`s."""

    view: str = "feature_maps"
    rows: dict = field(default_factory=dict)
    layers: list[int] = field(default_factory=list)


R1_PI = _b("rotate1", round(PI, 6), 20)  # Figure 2's rotation, half a turn at layer 20
TEXT_ORB = {"op": "multiply", "param": 3.0, "layer": [0, 49], "where": "token:orb", "target": "text"}
_add(Insides(
    "insides-feature-maps", "Feature maps of \"a floating orb\": unet:up_blocks.1 at step 25 and "
    "vae:decoder.up_blocks.1 at decode (rows: no bend; R1 pi at layer 20)", "09_bending_targets.ipynb",
    view="feature_maps",
    rows={label: [View("unet:up_blocks.1, step 25: 16 of 64 channels", ORB, bends, "unet:up_blocks.1", 25),
                  View("vae:decoder.up_blocks.1: 16 channel means of 32", ORB, bends, "vae:decoder.up_blocks.1",
                       means=True)]
          for label, bends in (("no bend", []), ("rotate1 pi @20", [R1_PI]))},
    settings="orb; unet:up_blocks.1 @ step 25 (16 of its 64 channels) and vae:decoder.up_blocks.1 at decode (16 means "
             "of pairs of its 32 channels), each tile on its own scale; no bend vs rotate1 pi @20"))
_add(Insides(
    "insides-latent-steps", "The latent's 4 channels across the steps of \"a floating orb\" (top: no bend; bottom: "
    "R1 pi at layer 20)", "09_bending_targets.ipynb", view="latent_steps",
    rows={"no bend": [View("no bend", ORB)], "rotate1 pi @20": [View("rotate1 pi @20", ORB, [R1_PI])]},
    layers=[0, 5, 10, 15, 20, 25, 30, 40, 50],
    settings="orb; channels 0-3 at layers 0, 5, 10, 15, 20, 25, 30, 40, 50, each row on its own +- scale; no bend vs "
             "rotate1 pi @20"))
_ORB_MAP = {"layer": [0, 49], "where": "token:orb", "target": "attn:" + ATTN2_MID}
_add(Insides(
    "insides-cross-attention", "Cross-attention of \"a floating orb\" per word in the middle block at step 25 (rows: "
    "no bend; the text of \"orb\" x 3; its attention map mirrored; turned a quarter)", "09_bending_targets.ipynb",
    view="cross_attention",
    rows={"no bend": [View("no bend", ORB, [], "mid_block", 25)],
          "text orb x 3": [View("text token:orb x 3, steps 0-49", ORB, [TEXT_ORB], "mid_block", 25)],
          "attn_flip": [View("attn:mid_block...attn2 attn_flip 1 (mirror) on orb, steps 0-49", ORB,
                             [{"op": "attn_flip", "param": 1, **_ORB_MAP}], "mid_block", 25)],
          "attn_rotate": [View("attn:mid_block...attn2 attn_rotate pi/2 on orb, steps 0-49", ORB,
                               [{"op": "attn_rotate", "param": round(PI / 2, 6), **_ORB_MAP}], "mid_block", 25)]},
    settings="orb; mid_block's cross-attention (heads averaged) @ step 25, the prompt's words, each row on its own "
             "scale (the rest of each softmax goes to the start and end tokens); no bend, multiply 3 on the text "
             "embedding of \"orb\", and attn_flip 1 / attn_rotate pi/2 of \"orb\"'s map in mid_block's attn2 (rows "
             "renormalised), @0-49"))



# ------------------------------------------------------------------------------------------ music (issue 28)
@dataclass
class Sounds(Figure):
    """A figure of bent sounds (`make_music_figure`): one spectrogram per entry of `rows` (label -> bend dicts),
    each `prompt` rendered for `seconds` on the music model with those bends (the paper's figures, for sound)."""

    prompt: str = ""
    rows: dict = field(default_factory=dict)
    seconds: float = 2.0


MUSIC_PROMPT = "a slow piano phrase"  # the music figures' prompt (a phrase the shipped music model was trained on)
_MUSIC_NB = "11_bending_music.ipynb"
_add(Sounds(
    "music-operators", f"Figure 1 for sound: operators on \"{MUSIC_PROMPT}\" (spectrograms)", _MUSIC_NB, ncols=4,
    prompt=MUSIC_PROMPT,
    rows={"no operator": [], "add 1 @40": [_b("add", 1.0, 40)], "add 1 @0, 5%": [_b("add", 1.0, 0, "fraction:0.05")],
          "multiply 3 @49": [_b("multiply", 3.0, 49)], "threshold 0.1 @49": [_b("threshold", 0.1, 49)],
          "invert 30 @0": [_b("invert", 30.0, 0)], "rotate1 pi @20": [_b("rotate1", round(PI, 6), 20)],
          "erode 3 @25": [_b("erode", 3, 25)]},
    settings=f"\"{MUSIC_PROMPT}\", 2 s; no operator, add 1 @40 and @0 on 5%, multiply 3 @49, threshold 0.1 @49, "
             "invert 30 @0, rotate1 pi @20 (every group of 4 channels), erode 3 (latent frames, along time) @25"))
_add(Sounds(
    "music-rotation-sweep", f"Figure 2 for sound: R1 at layer 20, angle swept over [0, 2 pi] on \"{MUSIC_PROMPT}\"",
    _MUSIC_NB, ncols=5, prompt=MUSIC_PROMPT,
    rows={f"rotate1 {a:.2f} @20": [_b("rotate1", round(a, 6), 20)] for a in [2 * PI * k / 8 for k in range(9)]},
    settings=f"\"{MUSIC_PROMPT}\", 2 s; rotate1 @20 on every group of 4 channels; 9 angles 0..2 pi"))
_add(Sounds(
    "music-layer-sweep", f"R1 pi on \"{MUSIC_PROMPT}\" at each layer (left: no operator)", _MUSIC_NB, ncols=4,
    prompt=MUSIC_PROMPT,
    rows={"no operator": [], **{f"rotate1 pi @{L}": [_b("rotate1", round(PI, 6), L)] for L in (0, 10, 20, 30, 40,
                                                                                                49, 50)}},
    settings=f"\"{MUSIC_PROMPT}\", 2 s; rotate1 pi at layers 0, 10, 20, 30, 40, 49, 50"))
_add(Sounds(
    "music-targets", f"Bend targets of the music model: multiply 3 on \"{MUSIC_PROMPT}\" (and where time: says)",
    _MUSIC_NB, ncols=3, prompt=MUSIC_PROMPT,
    rows={"no bend": [], "latent @20": [_b("multiply", 3.0, 20)],
          "latent @20, time 0.5-1 s": [_b("multiply", 3.0, 20, "time:0.5-1")],
          "DiT block 0, steps 0-49": [{"op": "multiply", "param": 3.0, "layer": [0, 49],
                                       "target": "unet:transformer_blocks.0"}],
          "VAE decoder block 0": [{"op": "multiply", "param": 3.0, "target": "vae:decoder.block.0"}],
          "text, steps 0-49": [{"op": "multiply", "param": 3.0, "layer": [0, 49], "target": "text"}]},
    settings=f"\"{MUSIC_PROMPT}\", 2 s; multiply 3 on the latent @20 (all, and seconds 0.5-1 only), "
             "unet:transformer_blocks.0 steps 0-49, vae:decoder.block.0 at decode, the text embedding steps 0-49"))


# one curve, sound and picture (issue 28 section 3): the generated music and the video bent by the same curve, and
# the music's own RMS read back by a second mapping; rendered by `make_music_video_figure` (a `make_video` run)
MUSIC_VIDEO = {"music": MUSIC_PROMPT, "prompt": "a floating orb", "curve": "lfo:1", "bpm": 120.0, "fps": 10.0,
               "op": "rotate1", "music_op": "rotate1", "music_layer": 40, "high": round(PI, 6)}
MUSIC_VIDEO_FRAMES = (0, 3, 5, 8, 10, 13, 15, 18)
_add(Figure(
    "music-video", f"One curve, sound and picture: an LFO at {MUSIC_VIDEO['bpm']:g} bpm turns R1 on the music and on "
    f"the frames (top: the curve; middle: the music's spectrogram; bottom: frames)", _MUSIC_NB,
    ncols=len(MUSIC_VIDEO_FRAMES),
    settings=f"music \"{MUSIC_VIDEO['music']}\" (the shipped music model, its longest output), bent by R1 @"
             f"{MUSIC_VIDEO['music_layer']} over 0..pi along {MUSIC_VIDEO['curve']} at {MUSIC_VIDEO['bpm']:g} bpm; "
             f"frames of \"{MUSIC_VIDEO['prompt']}\" at {MUSIC_VIDEO['fps']:g} fps, R1 over 0..pi along the same "
             "curve, multiply 1..2 along the music's RMS; frames " + ", ".join(map(str, MUSIC_VIDEO_FRAMES))))


def make_music_video_figure(out, *, steps: int | None = None, music_steps: int | None = None,
                            seed: int = PAPER_SEED, folder=None, pipe=None, progress: bool = False):
    """Render the joint audio-visual video of `MUSIC_VIDEO` to the mp4 `out` (`make_video` with music: the music
    rendered first with its own bend along the curve, then the frames; resumed if its render folder is there),
    draw the shared curve, the music's spectrogram and frames `MUSIC_VIDEO_FRAMES` (`ui.plots.plot_soundtrack`),
    and save it as figure "music-video" through `savefig`. steps / music_steps: the frames' and the music's
    denoising steps (None: each model's usual). Returns (the Figure, the mp4's path, the music as a `Sound`).

    Notebook: notebooks/11_bending_music.ipynb
    """
    import soundfile as sf
    from PIL import Image

    from ..mapping import Mapping
    from ..music.curve import MusicBend
    from ..music.render import Sound
    from ..video.folder import frames_dir
    from ..video.make import check_spec, make_video
    from ..video.soundtrack import MUSIC_WAV, prepare
    from ..video.spec import VideoSpec
    from .plots import plot_soundtrack
    v = MUSIC_VIDEO
    music_layer = v["music_layer"] if music_steps is None else fit_layer(v["music_layer"], music_steps)
    spec = VideoSpec(music=v["music"], prompts=[v["prompt"]], bpm=v["bpm"], fps=v["fps"], seed=seed, steps=steps,
                     music_steps=music_steps, music_bend=MusicBend(v["music_op"], music_layer, 0.0, v["high"]),
                     mappings=[Mapping(v["curve"], v["op"], None, 0.0, v["high"]),
                               Mapping("rms", "multiply", None, 1, 2)])
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    mp4 = make_video(spec, out, pipe=pipe, upscale=4, progress=progress)
    wav = frames_dir(mp4) / MUSIC_WAV
    y, sr = sf.read(wav, dtype="float32", always_2d=True)
    sound = Sound(y.T, sr)
    p = check_spec(spec, audio_path=str(wav))
    shown = [k for k in MUSIC_VIDEO_FRAMES if k < p.n_frames]
    frames = {k: Image.open(frames_dir(mp4) / f"frame_{k:05d}.png") for k in shown}
    axes = plot_soundtrack(p.curves[0], v["fps"], sound, frames, label=f"{v['curve']} at {v['bpm']:g} bpm",
                           music_curve=prepare(spec).curve)
    fig = axes[0].figure
    fig.suptitle(f"\"{v['music']}\" and \"{v['prompt']}\", one curve", fontsize=9)
    savefig(fig, "music-video", folder, {"steps": p.spec.steps, "music_steps": spec.music_steps, "seed": seed,
                                         "frames": shown, **v})
    return fig, mp4, sound


def render_music_figure(name: str, pipe, *, steps: int | None = None, seed: int = PAPER_SEED) -> list:
    """Render every entry of the Sounds figure FIGURES[name] on a music pipeline: (label, `Sound`) pairs. Layers
    are given for 50 steps and mapped proportionally for fewer (`_fit`)."""
    from ..music.defaults import STEPS as MUSIC_STEPS
    from ..music.render import render_music
    f = FIGURES[name]
    steps = MUSIC_STEPS if steps is None else steps
    return [(label, render_music(f.prompt, [_fit(b, steps) for b in bends], seconds=f.seconds, steps=steps,
                                 seed=seed, pipe=pipe)) for label, bends in f.rows.items()]


def make_music_figure(name: str, pipe, *, steps: int | None = None, seed: int = PAPER_SEED, folder=None,
                      model: str = ""):
    """Render the Sounds figure `name`, draw its spectrograms in a grid (`plots.plot_spectrograms`), save it
    through `savefig`; returns (matplotlib Figure, the (label, Sound) pairs) so a notebook can play them."""
    import matplotlib.pyplot as plt
    from ..music.defaults import STEPS as MUSIC_STEPS
    from .plots import plot_spectrograms
    steps = MUSIC_STEPS if steps is None else steps
    f = FIGURES[name]
    sounds = render_music_figure(name, pipe, steps=steps, seed=seed)
    n = len(sounds)
    rows = math.ceil(n / f.ncols)
    fig, axes = plt.subplots(rows, f.ncols, figsize=(2.6 * f.ncols, 2.2 * rows), squeeze=False, sharex=True,
                             sharey=True)
    plot_spectrograms([s for _, s in sounds], [label for label, _ in sounds], axes=list(axes.flat)[:n])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    for ax in list(axes.flat)[:n]:
        ax.set_ylabel("")
    axes[0, 0].set_ylabel("Hz")
    fig.suptitle(f.title + (f"  [{steps} steps]" if steps != PAPER_STEPS else ""), fontsize=10)
    fig.tight_layout()
    savefig(fig, name, folder, {"steps": steps, "seed": seed, "model": model})
    return fig, sounds


# ------------------------------------------------------------------------------------------ rendering
def _fit(bend: dict, steps: int) -> Bend:
    """A spec's bend at `steps` steps: its layer (or [first, last] range) mapped by `fit_layer`, kept within the
    layers its target takes (UNet steps and the text: 0..steps-1); no layer (a VAE bend) stays none."""
    layer = bend.get("layer")
    if layer is None:
        return Bend.from_dict(bend)
    top = steps - 1 if Bend.from_dict(bend).kind in ("unet", "text", "attn") else steps
    fitted = [min(fit_layer(v, steps), top) for v in (layer if isinstance(layer, list) else [layer])]
    return Bend.from_dict({**bend, "layer": fitted if isinstance(layer, list) else fitted[0]})


def render_figure(name: str, pipe, *, steps: int | None = None, seed: int = PAPER_SEED, guidance: float | None = None,
                  progress: bool = True) -> list[tuple[str, object]]:
    """Render every panel of FIGURES[name]; returns (label, PIL image) pairs in reading order. Layers are
    the paper's (of 50 steps), mapped proportionally when `steps` differs (steps and guidance None: the model's
    usual ones)."""
    from tqdm.auto import tqdm

    from ..bend.render import render, render_grid
    from ..models.model import usual_settings
    steps, guidance = usual_settings(steps, guidance, pipe=pipe)
    fig = FIGURES[name]
    out = []
    for p in tqdm(fig.panels, desc=name, disable=not progress or not fig.panels, unit="panel"):
        bends = [_fit(b, steps) for b in p.bends]
        label = p.label if steps == PAPER_STEPS or not bends else (
            f"{p.label}\n(run: layer {', '.join(str(b.layer) for b in bends)} of {steps})")
        out.append((label, render(p.prompt, bends, pipe=pipe, steps=steps, seed=seed, guidance=guidance)))
    for s in fig.sweeps:
        layers = [fit_layer(L, steps) for L in s.layers]
        rows = render_grid(s.prompt, s.op, s.params, layers, s.where, s.norm, pipe=pipe, steps=steps, seed=seed,
                           guidance=guidance, progress=progress)
        for L, row in zip(layers, rows):  # the layer actually used (fewer steps: mapped)
            for j, (prm, img) in enumerate(zip(s.params, row)):
                if len(fig.sweeps) > 1:  # one row per prompt: name it once, at the row's start
                    label = (f"{s.prompt}\n" if j == 0 else "") + s.param_fmt.format(prm)
                else:
                    label = f"{s.param_fmt.format(prm)}, layer {L}"
                out.append((label, img))
    return out


OUT_FIGURES = Path("out") / "figures"  # relative to the working folder: a notebook's figures land beside it


def figures_dir(folder: str | os.PathLike | None = None) -> Path:
    """`folder`, else $BENDLAB_FIGURES if set, else out/figures/ in the working folder: running a notebook never
    rewrites the repository's committed figures/ (only `make figures` points $BENDLAB_FIGURES there)."""
    return Path(folder or os.environ.get("BENDLAB_FIGURES") or OUT_FIGURES)


def savefig(fig, name: str, folder=None, settings: dict | None = None) -> Path:
    """Write figure `name` to <figures>/<name>.png and record its spec hash and settings in manifest.json."""
    d = figures_dir(folder)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.png"
    savefig_atomic(fig, path, dpi=110, bbox_inches="tight")
    mpath = d / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.is_file() else {}
    entry = {"file": path.name}
    if name in FIGURES:
        entry["spec_hash"] = FIGURES[name].spec_hash()
        entry["notebook"] = FIGURES[name].notebook
    entry.update(settings or {})
    manifest[name] = entry
    write_text_atomic(mpath, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return path


def make_figure(name: str, pipe, *, steps: int | None = None, seed: int = PAPER_SEED, folder=None, model: str = "",
                **kw):
    """Render FIGURES[name], plot it, save it through `savefig`; returns the matplotlib Figure (an `Insides`
    figure through `make_insides_figure`). steps: None -> the model's usual count (50 with DDIM, the paper's)."""
    if isinstance(FIGURES[name], Insides):
        return make_insides_figure(name, pipe, steps=steps, seed=seed, folder=folder, model=model)
    from ..models.model import usual_steps
    steps = usual_steps(pipe=pipe) if steps is None else steps  # for the title and manifest
    f = FIGURES[name]
    panels = render_figure(name, pipe, steps=steps, seed=seed, **kw)
    from .plots import plot_panels
    fig = plot_panels(panels, f.ncols, f.title + (f"  [{steps} steps]" if steps != PAPER_STEPS else ""))
    savefig(fig, name, folder, {"steps": steps, "seed": seed, "model": model})
    return fig


def _fit_view(v, steps: int, paper: bool = True):
    """A `View`'s step and bends at `steps` steps: paper layers mapped (`paper`), or taken as they are; a UNet
    step kept below `steps`."""
    if not paper:
        return None if v.layer is None else min(v.layer, steps - 1), [Bend.from_dict(dict(b)) for b in v.bends]
    layer = None if v.layer is None else min(fit_layer(v.layer, steps), steps - 1)
    return layer, [_fit(b, steps) for b in v.bends]


def make_insides_figure(name: str, pipe, *, steps: int | None = None, seed: int = PAPER_SEED, folder=None,
                        model: str = ""):
    """Render the insides figure `FIGURES[name]` (`draw_insides`) and save it through `savefig`; returns the
    matplotlib Figure. Layers are the paper's (of 50), mapped when `steps` differs (None: the model's usual count).

    Notebook: notebooks/09_bending_targets.ipynb
    """
    from ..models.model import usual_steps
    steps = usual_steps(pipe=pipe) if steps is None else steps
    fig = draw_insides(FIGURES[name], pipe, steps=steps, seed=seed)
    savefig(fig, name, folder, {"steps": steps, "seed": seed, "model": model})
    return fig


def draw_insides(f: Insides, pipe, *, steps: int | None = None, seed: int = PAPER_SEED, paper_layers: bool = True):
    """Render and plot an `Insides` figure (feature maps, the latent's steps or cross-attention, one row per entry
    of its `rows`: `ui.plots.plot_feature_maps`, `plot_latent_steps`, `plot_cross_attention`); returns the matplotlib
    Figure, unsaved. paper_layers: the views' layers are the paper's (of 50) and mapped to `steps`; False: they
    are this run's steps (a notebook's sliders).

    Notebook: notebooks/09_bending_targets.ipynb
    """
    import matplotlib.pyplot as plt

    from ..bend.insides import cross_attention, feature_maps, latent_steps
    from ..bend.render import render
    from ..models.model import usual_steps
    from . import plots
    steps = usual_steps(pipe=pipe) if steps is None else steps
    rows = list(f.rows.items())
    ncols = max(len(views) for _, views in rows)
    size = {"feature_maps": (4.2 * ncols, 4.4), "latent_steps": (0.9 * len(f.layers) + 1, 4.2),
            "cross_attention": (7.5, 1.9)}[f.view]
    fig = plt.figure(figsize=(size[0], size[1] * len(rows) + 0.4), layout="constrained")
    subs = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    for k, (label, views) in enumerate(rows):
        sub = subs[k]
        sub.suptitle(label, fontsize=9)
        if f.view == "feature_maps":
            cells = sub.subfigures(1, ncols, squeeze=False)[0]
            for cell, v in zip(cells, views):
                layer, bends = _fit_view(v, steps, paper_layers)
                maps = feature_maps(pipe, v.prompt, v.target, layer if v.target.startswith("unet:") else None, bends,
                                    seed, steps)
                title = (v.label if steps == PAPER_STEPS or layer is None or not paper_layers else
                         f"{v.label} (run: step {layer})")
                plots.plot_feature_maps(maps, cell, means=v.means, title=title)
        elif f.view == "latent_steps":
            v = views[0]
            lat = latent_steps(pipe, v.prompt, _fit_view(v, steps, paper_layers)[1], seed, steps)
            shown = sorted({fit_layer(L, steps) if paper_layers else L for L in f.layers}) if f.layers else None
            plots.plot_latent_steps(lat, shown, sub,
                                    title=f"the latent's channels, {steps} steps (each row on its own +- scale)")
        else:  # the prompt's words, each row on its own scale (its colour bar): a bent map stays visible
            v = views[0]
            layer, bends = _fit_view(v, steps, paper_layers)
            maps = cross_attention(pipe, v.prompt, v.target, layer, bends, seed, steps)
            image = render(v.prompt, bends, pipe=pipe, seed=seed, steps=steps)
            plots.plot_cross_attention({t: m for t, m in maps.items() if t not in ("<start>", "<end>")}, sub,
                                       image=image, title=f"{v.label}: the prompt's words at step {layer} of {steps}")
    fig.suptitle(f.title + (f"  [{steps} steps]" if steps != PAPER_STEPS else ""), fontsize=10)
    return fig


def make_chain_strip(pipe, out_dir, *, track: str | None = None, steps: int | None = None, seed: int = PAPER_SEED,
                     frames=CHAIN_FRAMES, folder=None, model: str = "", progress: bool = False):
    """Render the img2img chain of `CHAIN` once per row of `CHAIN_ROWS` (each into its own render folder under
    `out_dir`, resumed if there), plot frames `frames` of each in a row (`ui.plots.plot_strip`), every panel titled
    with its frame, its L* mean change from frame 0 and its SSIM to frame 0 (`video.quality.drift`), and save it as
    figure "video-coherence" through `savefig`. track: the audio (None: the shipped piano); steps: None -> the
    model's usual count (strength 0.5 runs half of them). Returns (the matplotlib Figure, {row label: Drift}).

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    from PIL import Image

    from ..mapping import Mapping
    from ..models.folder import DEFAULT_MODEL
    from ..models.model import usual_steps
    from .plots import plot_strip
    from ..video.quality import drift
    from ..video.spec import VideoSpec
    from ..video.make import render_frames
    steps = usual_steps(pipe=pipe) if steps is None else steps
    n = max(frames) + 1
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    rows, drifts = {}, {}
    for label, settings in CHAIN_ROWS.items():
        spec = VideoSpec(audio=str(track or PIANO_FILE), prompts=[CHAIN["prompt"]], method="img2img",
                         strength=CHAIN["strength"], fps=CHAIN["fps"], steps=steps, seed=seed,
                         model=model or DEFAULT_MODEL, mappings=[Mapping(CHAIN["feature"], CHAIN["op"])], **settings)
        slug = "-".join(f"{v:g}" if isinstance(v, float) else v for v in settings.values())
        done = render_frames(spec, Path(out_dir) / f"chain-strip-{slug}.mp4", pipe=pipe, limit=n, progress=progress)
        paths = [done / f"frame_{k:05d}.png" for k in range(n)]
        if not paths[-1].is_file():
            raise BendlabValueError(f"frames {tuple(frames)} of a chain of {len(list(done.glob('frame_*.png')))} "
                                    f"frames; "
                                    "accepted: frames the track has at this frame rate")
        d = drifts[label] = drift(paths)
        m0 = d.lab_mean[0, 0]
        rows[label] = [(f"frame {k}" if k == 0 else
                        f"frame {k}: L* {round(100 * (d.lab_mean[k, 0] - m0) / m0):+d}%, SSIM {d.ssim[k]:.2f}",
                        Image.open(paths[k])) for k in frames]
    fig = plot_strip(rows, f"img2img chain, \"{CHAIN['prompt']}\", strength {CHAIN['strength']:g}, {steps} steps, "
                     f"{CHAIN['fps']:g} fps, {CHAIN['op']} <- {CHAIN['feature']} (L* change and SSIM: to frame 0)")
    savefig(fig, "video-coherence", folder, {"steps": steps, "seed": seed, "model": model,
                                             "frames": list(frames), **{k: v for k, v in CHAIN.items()},
                                             "frame_drift": {label: d.summary(frames[1:]) for label, d in
                                                             drifts.items()}})
    return fig, drifts


def make_methods_figure(out_dir, *, steps: int | None = None, seed: int = PAPER_SEED, frames: int | None = None,
                        folder=None, model: str = "", motion_adapter: str | None = None, pipe=None, video_pipe=None,
                        progress: bool = False):
    """The same song, prompt and mapping (`METHODS_VIDEO`) by method A, method B with LAB coherence and the video
    method (`video.compare.compare_methods`, each in its own render folder under `out_dir`, resumed if there):
    figure "video-methods" (frames `METHODS_FRAMES` of each, in a row labelled with its flicker p95 and neighbour
    SSIM; below, each frame's change from the one before along the song, `ui.plots.plot_flicker`) and figure
    "video-seams" (the video method's frames against its windows, `ui.plots.plot_seams`), both through `savefig`.
    steps: None -> the model's usual count; frames: how many of the song's first frames (None: all of
    METHODS_VIDEO's seconds). Returns (the two Figures, {method label: `MethodRun`}).

    Notebook: notebooks/10_video_models.ipynb
    """
    import matplotlib.pyplot as plt
    from PIL import Image

    from ..mapping import Mapping
    from ..models.folder import DEFAULT_MODEL
    from ..models.model import usual_steps
    from ..video.compare import compare_methods
    from ..video.joint import plan_windows
    from ..video.quality import seams
    from ..video.spec import VideoSpec
    from .plots import plot_flicker, plot_seams, plot_strip
    v = METHODS_VIDEO
    steps = usual_steps(model or DEFAULT_MODEL) if steps is None else steps
    n = frames or int(round(v["seconds"] * v["fps"]))
    shown = [k for k in METHODS_FRAMES if k < n] or list(range(min(n, len(METHODS_FRAMES))))
    spec = VideoSpec(audio=str(PIANO_FILE), prompts=[v["prompt"]], fps=v["fps"], steps=steps, seed=seed,
                     model=model or DEFAULT_MODEL, mappings=[Mapping(v["feature"], v["op"], None, v["low"], v["high"])])
    runs = compare_methods(spec, out_dir, frames=n, motion_adapter=motion_adapter, window=METHODS_WINDOW[0],
                           overlap=METHODS_WINDOW[1], pipe=pipe, video_pipe=video_pipe, progress=progress)
    fig = plt.figure(figsize=(1.5 * len(shown) + 0.5, 1.8 * len(runs) + 2.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.8 * len(runs), 2.4])
    axes = top.subplots(len(runs), len(shown), squeeze=False)
    rows = {f"{r.label}\np95 {r.p95:.1f}, SSIM {r.ssim.mean():.2f}":
            [(f"frame {k} ({k / v['fps']:.1f} s)", Image.open(r.frames[k])) for k in shown] for r in runs.values()}
    plot_strip(rows, axes=axes)
    plot_flicker({r.label: r.diffs for r in runs.values()}, v["fps"], ax=bottom.subplots())
    fig.suptitle(f"\"{v['prompt']}\", {steps} steps, {v['fps']:g} fps, {v['op']} <- {v['feature']}: three ways to a "
                 "video", fontsize=9)
    settings = {"steps": steps, "seed": seed, "model": model, "frames": n, "shown": shown,
                **{k: val for k, val in v.items()},
                "flicker": {r.label: {"mean": round(r.mean, 2), "p95": round(r.p95, 2),
                                      "neighbour_ssim": round(float(r.ssim.mean()), 3),
                                      "seconds_per_frame": round(r.seconds / n, 3)} for r in runs.values()}}
    savefig(fig, "video-methods", folder, settings)
    video = next(r for r in runs.values() if "video" in r.label)
    windows = plan_windows(n, *METHODS_WINDOW)
    s = seams(video.frames, windows)
    ax = plot_seams(s, windows, v["fps"], title=f"the video method's seams (\"{v['prompt']}\", {steps} steps, windows "
                    f"of {METHODS_WINDOW[0]} overlapping by {METHODS_WINDOW[1]})")
    savefig(ax.figure, "video-seams", folder, {"steps": steps, "seed": seed, "model": model, "frames": n,
                                               "windows": windows, "across": round(s.across, 2),
                                               "within": round(s.inside, 2)})
    return (fig, ax.figure), runs


def readme_table() -> str:
    """The markdown table of figures/README.md, generated from the spec."""
    lines = ["| figure | notebook | settings | file |", "|---|---|---|---|"]
    for f in FIGURES.values():
        lines.append(f"| {f.title} | `notebooks/{f.notebook}` | {f.settings} | [`{f.name}.png`]({f.name}.png) |")
    return "\n".join(lines)


README_HEAD = """# Figures

Every figure of the paper, reproduced by the notebooks with the **shipped model** (`bendlab-tiny-sd`, 64x64
images) at full settings: DDIM, 50 steps, seed 46, guidance 7.5. `make figures` re-renders them all;
`manifest.json` records the spec hash and settings of each file, and a test checks every file below exists and
matches the current spec (`bendlab/ui/figures.py`). Set `MODEL = "CompVis/stable-diffusion-v1-4"` in a notebook's
parameters cell to reproduce the paper with real Stable Diffusion on a GPU.

Layers are the paper's (0 = initial noise, 50 = before decoding); "@40" means layer 40. The `music-*` figures are
the paper's figures for sound: spectrograms of the **shipped music model** (`bendlab-tiny-music`, 8 kHz, 2.048 s) at
50 steps, seed 46, guidance 7 (notebook 11 plays each one).

"""


def write_readme(folder=None) -> Path:
    """Regenerate figures/README.md from the spec: `python -m bendlab.ui.figures`."""
    p = Path(folder or REPO_FIGURES) / "README.md"
    p.write_text(README_HEAD + readme_table() + "\n")
    return p


if __name__ == "__main__":
    print(write_readme())
