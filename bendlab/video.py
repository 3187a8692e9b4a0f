"""Audio-reactive video: audio features -> operator parameters -> frames -> mp4 with the audio.

A frame's journey: `audio.audio_features` gives one value per frame (computed on the 1/fps window the frame is
shown for) -> each `Mapping` smooths and scales its feature into a bend parameter -> frames are rendered in
batches (method "txt2img": a sin/cos walk through initial noise, prompts interpolated in text-embedding space)
or one by one (method "img2img": each frame from the previous one) -> each PNG is written to the render folder
as soon as it is finished -> `mux` joins the PNGs and the audio into an H.264 + AAC mp4.

The render folder (`video.mp4` -> `video.frames/`, see `bendlab.frames`) holds the frames, a manifest of every
setting that changes pixels and a hash of each finished frame: running the same command again resumes with the
verified frames; changed settings refuse to mix frames unless `overwrite=True`. txt2img frames are rendered in
batches aligned to multiples of `batch` (frame i always in batch i // batch), so a resumed render computes every
frame exactly as an uninterrupted one would, and the mp4 is byte-identical (tested).

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from . import audio, models, operators
from .bend import Bend
from .engine import (bending, check_bends, check_settings, denoise, encode_prompts, img2img_layers, initial_noise,
                     latent_shape, load_image, model_shapes, render_batch, render_img2img)
from .paper import LAYER as PAPER_LAYER, fit_layer
from .frames import RenderFolder, check_output, file_sha256, frames_dir, temp_name

METHODS = ("txt2img", "img2img")
WALKS = ("sincos", "authors", "none")
SCALINGS = ("minmax", "percentile")
DEFAULT_PROMPT = "3D mesh geometry"
DEFAULT_UPSCALE = 4  # the shipped model's 64x64 frames shown 256x256
MAX_UPSCALE = 16


@dataclass
class Mapping:
    """One audio feature driving one bend's parameter, e.g. RMS -> rotate1 angle at layer 40 in 0..2*pi.

    feature: a feature name (audio.FEATURES, lfo:K, pca:K, midi_cc:N), optionally @harmonic, @percussive or
    @STEM.wav; low, high: the parameter range it is scaled into (low < high or reversed);
    scaling: "minmax", or "percentile" (normalised between the `clip` percentiles, outliers clipped);
    gate, threshold, ratio: dynamics on the normalised 0..1 value (see `audio.scale`); curve: exponent;
    attack, release: envelope follower time constants in seconds; median: odd running-median window (frames).
    layer: None -> the paper's 40 of 50 steps at the same relative depth of the video's steps (set by VideoSpec).
    """

    feature: str = "rms"
    op: str = "rotate1"
    layer: int | None = None
    low: float = 0.0
    high: float = 2 * math.pi
    where: str = "all"
    norm: str | None = None
    scaling: str = "minmax"
    curve: float = 1.0
    attack: float = 0.0
    release: float = 0.0
    median: int = 1
    gate: float = 0.0
    threshold: float = 1.0
    ratio: float = 1.0
    clip: list[float] = field(default_factory=lambda: [5.0, 95.0])

    def __post_init__(self):
        audio.check_feature(self.feature)
        operators.get(self.op)
        for name in ("low", "high", "curve", "attack", "release", "gate", "threshold", "ratio"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"{name} {v!r} is not a finite number")
        if self.low == self.high:
            raise ValueError(f"range {self.low:g}..{self.high:g} is empty; accepted: low != high")
        for v in (self.low, self.high):
            operators.check_param(self.op, round(v) if self.op in operators.INTEGER_OPERATORS else v)
        if self.op == "invert" and min(self.low, self.high) <= 0 <= max(self.low, self.high):
            raise ValueError(f"invert: range {self.low:g}..{self.high:g} passes through r = 0 (f(x) = 1/r - x); "
                             "accepted: a range on one side of 0")
        if self.scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {self.scaling!r}; accepted: {', '.join(SCALINGS)}")
        if self.curve <= 0:
            raise ValueError(f"curve {self.curve!r} is not > 0; accepted: an exponent > 0 (1 = linear)")
        if self.attack < 0 or self.release < 0:
            raise ValueError(f"attack {self.attack!r} / release {self.release!r} s: accepted: times >= 0 seconds")
        if not isinstance(self.median, int) or isinstance(self.median, bool) or self.median < 1 or self.median % 2 == 0:
            raise ValueError(f"median {self.median!r} is not an odd number of frames >= 1; accepted: 1, 3, 5, ...")
        if not 0 <= self.gate < 1 or not 0 < self.threshold <= 1 or self.ratio < 1:
            raise ValueError(f"gate {self.gate:g}, threshold {self.threshold:g}, ratio {self.ratio:g}: accepted: "
                             "0 <= gate < 1, 0 < threshold <= 1 (levels of the normalised feature), ratio >= 1")
        c = self.clip
        if not isinstance(c, (list, tuple)) or len(c) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in c) or not 0 <= c[0] < c[1] <= 100:
            raise ValueError(f"clip {c!r} is not two percentiles; accepted: [low, high] with 0 <= low < high <= 100")
        self.clip = [float(c[0]), float(c[1])]
        Bend(self.op, self.low, self.layer or 0, self.where, self.norm)  # validates layer, where, norm

    def params(self, feats: audio.Features) -> np.ndarray:
        """The parameter value for every frame."""
        x = audio.smooth(feats[self.feature], feats.fps, self.attack, self.release, self.median)
        p = audio.scale(x, self.low, self.high, self.scaling, self.clip, self.curve, self.gate, self.threshold,
                        self.ratio)
        return np.round(p) if self.op in operators.INTEGER_OPERATORS else p

    def bend(self, param) -> Bend:
        """This mapping's bend with the given parameter (a number, or one value per frame of a batch)."""
        return Bend(self.op, param, self.layer, self.where, self.norm)


@dataclass
class VideoSpec:
    """Everything that determines the frames (its `identity()` is the render folder's manifest).

    batch: txt2img frames rendered together (frames are computed in batches aligned to multiples of it, so it
    changes pixels at the float-rounding level and is part of the identity; 8 is ~2.4x faster than 1 on a CPU).
    """

    audio: str
    prompts: list[str] = field(default_factory=lambda: [DEFAULT_PROMPT])
    keyframes: list[float] | None = None  # seconds, one per prompt; None: prompts spread from first to last frame
    mappings: list[Mapping] = field(default_factory=lambda: [Mapping()])
    method: str = "txt2img"
    walk: str = "sincos"  # txt2img noise: A sin + B cos; "authors": seed noise + 0.3 (A sin + B cos); "none": fixed
    fps: float = 20.0
    steps: int | None = None  # None: the model's usual count (models.usual_settings: 50 with DDIM, as the paper)
    guidance: float | None = None  # None: the model's usual guidance (7.5, the paper's; Turbo models 0)
    seed: int = 46
    strength: float = 0.5  # img2img
    img2img_prompt: str = ""  # img2img frames after the first: the paper uses an empty prompt
    init_image: str | None = None  # img2img: first frame; else the first frame is text-to-image
    model: str = models.DEFAULT_MODEL
    sr: int = audio.DEFAULT_SR
    batch: int = 8
    midi: str | None = None  # a .mid file for the midi_* features

    def __post_init__(self):
        if not isinstance(self.audio, (str, os.PathLike)):
            raise ValueError(f"audio {self.audio!r} is not a path to a {', '.join(audio.AUDIO_SUFFIXES)} file")
        self.audio = str(self.audio)
        if not isinstance(self.mappings, (list, tuple)) or not self.mappings:
            raise ValueError(f"mappings {self.mappings!r:.60}: accepted: a list of one or more Mapping or dicts")
        for m in self.mappings:
            if not isinstance(m, (Mapping, dict)):
                raise ValueError(f"mapping {m!r:.60} is not a Mapping or a dict of its fields")
        self.mappings = [m if isinstance(m, Mapping) else Mapping(**m) for m in self.mappings]
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; accepted: {', '.join(METHODS)}")
        if self.walk not in WALKS:
            raise ValueError(f"unknown noise walk {self.walk!r}; accepted: {', '.join(WALKS)}")
        audio.check_fps(self.fps)
        self.steps, self.guidance = models.usual_settings(self.steps, self.guidance, self.model)
        check_settings(self.steps, self.guidance, self.seed, self.strength if self.method == "img2img" else None)
        if isinstance(self.prompts, str) or not isinstance(self.prompts, (list, tuple)) or not self.prompts or \
                not all(isinstance(p, str) for p in self.prompts):
            raise ValueError(f"prompts {self.prompts!r:.60}: accepted: a list of one or more strings")
        if not isinstance(self.img2img_prompt, str):
            raise ValueError(f"img2img_prompt {self.img2img_prompt!r} is not a string")
        if self.keyframes is not None:
            if not isinstance(self.keyframes, (list, tuple)):
                raise ValueError(f"keyframes {self.keyframes!r:.40} are not a list of times in seconds")
            k = list(self.keyframes)
            if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in k):
                raise ValueError(f"keyframe times {k} are not all numbers of seconds")
            if len(k) != len(self.prompts):
                raise ValueError(f"{len(k)} keyframe times for {len(self.prompts)} prompts; accepted: one per prompt")
            if any(b <= a for a, b in zip(k, k[1:])) or k[0] < 0:
                raise ValueError(f"keyframe times {k} are not increasing from >= 0 s")
        n = self.n_layers
        self.mappings = [m if m.layer is not None else replace(m, layer=fit_layer(PAPER_LAYER, n))
                         for m in self.mappings]
        for m in self.mappings:
            if m.layer > n:
                raise ValueError(f"layer {m.layer} is outside 0..{n} (the {self.method} frames run {n} steps)")
        if not isinstance(self.sr, int) or isinstance(self.sr, bool) or not 8000 <= self.sr <= 192000:
            raise ValueError(f"sample rate {self.sr!r} is outside 8000..192000 Hz; accepted: e.g. 22050 or 44100")
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or not 1 <= self.batch <= 1024:
            raise ValueError(f"batch {self.batch!r} is not an integer in 1..1024; accepted: frames rendered together")
        if self.init_image is not None:
            load_image(self.init_image)  # exists and decodes, before any model work
        if self.midi is not None:
            from . import midi
            midi.read(self.midi)  # exists and parses
        for m in self.mappings:
            ref = audio.parse_feature(m.feature)
            if ref.name.startswith("midi") and self.midi is None:
                raise ValueError(f"feature {m.feature!r} needs a MIDI file; accepted: midi=... (--midi FILE)")
            if ref.source not in audio.SOURCES and not Path(ref.source).is_file():
                raise FileNotFoundError(f"stem {ref.source!r} of feature {m.feature!r} does not exist")

    @property
    def stems(self) -> list[str]:
        """The stem files the mappings read."""
        return sorted({r.source for r in (audio.parse_feature(m.feature) for m in self.mappings)
                       if r.source not in audio.SOURCES})

    @property
    def n_layers(self) -> int:
        """Layers of one frame: steps (txt2img) or the steps image-to-image actually runs."""
        return img2img_layers(self.steps, self.strength) if self.method == "img2img" else self.steps

    def identity(self) -> dict:
        """What the frames depend on, as recorded in the render folder: the settings, with the audio and init
        image by content hash rather than by path (a renamed song resumes; a same-size other song does not)."""
        d = asdict(self)
        d["audio"] = {"sha256": file_sha256(self.audio)}
        d["init_image"] = self.init_image and {"sha256": file_sha256(self.init_image)}
        d["midi"] = self.midi and {"sha256": file_sha256(self.midi)}
        d["stems"] = {s: file_sha256(s) for s in self.stems}
        if self.method == "img2img":
            del d["batch"]  # frames are rendered one by one
        return d


# ------------------------------------------------------------------------------------------ keyframes
def parse_keyframe(s: str) -> tuple[float, str]:
    """'0:30 a gorgeous landscape' or '12.5 a floating orb' -> (seconds, prompt)."""
    m = re.fullmatch(r"\s*(?:(\d+):)?(\d+(?:\.\d*)?)\s+(.+)", s)
    if not m:
        raise ValueError(f"keyframe {s!r} is not 'M:SS prompt' or 'SECONDS prompt'")
    return int(m.group(1) or 0) * 60 + float(m.group(2)), m.group(3).strip()


def prompt_weights(spec: VideoSpec, n_frames: int) -> np.ndarray:
    """(n_frames, n_prompts) linear interpolation weights of the prompts for every frame."""
    P = len(spec.prompts)
    w = np.zeros((n_frames, P))
    if P == 1:
        w[:, 0] = 1
        return w
    t = np.arange(n_frames) / spec.fps
    keys = np.asarray(spec.keyframes if spec.keyframes is not None
                      else np.linspace(0, (n_frames - 1) / spec.fps, P))
    for i, ti in enumerate(t):
        j = int(np.clip(np.searchsorted(keys, ti, side="right") - 1, 0, P - 2))
        u = float(np.clip((ti - keys[j]) / (keys[j + 1] - keys[j]), 0, 1))
        w[i, j], w[i, j + 1] = 1 - u, u
    return w


def noise_walk(pipe, spec: VideoSpec, n_frames: int, frames=None) -> torch.Tensor:
    """(len(frames), 4, h, w) initial latents of the given frames (default all): A sin(2 pi i / k) +
    B cos(2 pi i / k) for frame i of k, A and B drawn from the seed (computed per batch: memory stays flat).
    Walk "none": every frame starts from the seed's noise, the same as `render(..., seed=spec.seed)`."""
    g = torch.Generator().manual_seed(spec.seed)
    shape = latent_shape(pipe, 1)
    i = torch.as_tensor(range(n_frames) if frames is None else frames, dtype=torch.float64)
    if spec.walk == "none":
        return torch.randn(shape, generator=g).expand(len(i), -1, -1, -1).clone()
    A, B = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    ang = (2 * math.pi * i / n_frames).view(-1, 1, 1, 1)
    walk = A * torch.sin(ang).float() + B * torch.cos(ang).float()
    if spec.walk == "authors":
        walk = torch.randn(shape, generator=g) + 0.3 * walk
    return walk


# ------------------------------------------------------------------------------------------ rendering
def plan(spec: VideoSpec) -> tuple[audio.Features, np.ndarray]:
    """Features and the (n_mappings, n_frames) parameter curves; cheap, no model work."""
    feats = audio.audio_features(spec.audio, spec.fps, spec.sr, spec.midi)
    if spec.keyframes is not None and spec.keyframes[-1] > feats.duration:
        raise ValueError(f"keyframe at {spec.keyframes[-1]:g} s is beyond the audio ({feats.duration:.2f} s)")
    return feats, np.stack([m.params(feats) for m in spec.mappings])


def check_curves(spec: VideoSpec, curves: np.ndarray, shapes) -> None:
    """The mappings' bends at both ends of their curves against a model's shapes (row/column/channel indices,
    kernel sizes): `shapes` is a loaded pipeline or a `models.Skeleton` read from the model's configs."""
    shape = latent_shape(shapes, 1)
    for j, m in enumerate(spec.mappings):
        check_bends(shapes, [m.bend(float(curves[j].min())), m.bend(float(curves[j].max()))], spec.n_layers, shape)


def check_spec(spec: VideoSpec, *, pipe=None) -> tuple[audio.Features, np.ndarray]:
    """Every check that needs no weights: the audio and the curves (`plan`), and the bends against the model's
    shapes read from its configs (a hub id's are checked once it is loaded). Returns `plan(spec)`."""
    feats, curves = plan(spec)
    shapes = model_shapes(pipe, spec.model)
    if shapes is not None:
        check_curves(spec, curves, shapes)
    return feats, curves


def device_entry(pipe) -> str:
    """The device, dtype and (on a CPU) torch threads: each changes pixels at the rounding level."""
    d = f"{pipe.device.type} {str(pipe.unet.dtype).removeprefix('torch.')}"
    return d + (f", {torch.get_num_threads()} threads" if pipe.device.type == "cpu" else "")


def frame_bends(spec: VideoSpec, curves: np.ndarray, idx) -> list[Bend]:
    """The mappings' bends for the frames `idx`, with one parameter value per frame."""
    return [m.bend(torch.tensor(curves[j, idx], dtype=torch.float64)) for j, m in enumerate(spec.mappings)]


class FrameRenderer:
    """Renders any set of a txt2img video's frames on one pipeline: what `render_frames` runs in this process
    and what each Ray worker holds (`bendlab.cluster`). A frame depends only on its index (its noise, prompt
    weights and parameters) and on its aligned batch, never on which process renders it.

    Shared prefix (walk "none", `share=True`): frames that start from the same noise with the same prompt share
    every denoising step before the earliest layer any mapping bends. That latent is computed once per prompt
    (kept for the renderer's life) and frames run from there as one batch, as `render_grid` does for sweeps;
    frames between two keyframes (interpolated prompts) and bends at layer 0 run in full. Shared frames equal
    the full computation within float rounding (tested to 1e-5).
    """

    def __init__(self, spec: VideoSpec, curves: np.ndarray, n_frames: int, pipe, share: bool = True):
        self.spec, self.curves, self.n_frames, self.pipe = spec, curves, n_frames, pipe
        self.weights = torch.tensor(prompt_weights(spec, n_frames), dtype=torch.float32)
        self.embeds = encode_prompts(pipe, spec.prompts)
        self.start = self.shared_layer(spec) if share and not models.is_stochastic(pipe.scheduler) else 0
        self._prefix: dict[int, torch.Tensor] = {}

    @staticmethod
    def shared_layer(spec: VideoSpec) -> int:
        """The layer up to which frames can share their steps: the earliest bent layer with walk "none", else 0."""
        return min(m.layer for m in spec.mappings) if spec.method == "txt2img" and spec.walk == "none" else 0

    def bends(self, idx) -> list[Bend]:
        return frame_bends(self.spec, self.curves, idx)

    def _full(self, idx, output_type):
        noise = noise_walk(self.pipe, self.spec, self.n_frames, idx).to(self.pipe.device, self.pipe.unet.dtype)
        return render_batch(self.pipe, self.bends(idx), embeds=self.embeds.mix(self.weights[idx]), latents=noise,
                            steps=self.spec.steps, guidance=self.spec.guidance, output_type=output_type,
                            seed=self.spec.seed + idx[0])  # per aligned batch: the same whoever renders it

    def prefix(self, p: int) -> torch.Tensor:
        """The latent of prompt p at layer `start` (before any bend), computed once."""
        if p not in self._prefix:
            pipe, L = self.pipe, self.start
            noise = noise_walk(pipe, self.spec, self.n_frames, [0]).to(pipe.device, pipe.unet.dtype)
            with bending(pipe, [], capture=[L], stop=L) as cb:
                denoise(pipe, self.embeds.row(p), noise, steps=self.spec.steps, guidance=self.spec.guidance,
                        callback=cb)
            self._prefix[p] = cb.captured[L]
        return self._prefix[p]

    def _shared(self, idx, p: int, output_type):
        B = len(idx)
        return render_batch(self.pipe, self.bends(idx), embeds=self.embeds.row(p).expand(B),
                            latents=self.prefix(p).expand(B, -1, -1, -1).clone(), steps=self.spec.steps,
                            guidance=self.spec.guidance, start=self.start, output_type=output_type)

    @torch.no_grad()
    def render(self, idx, output_type: str = "pil") -> list:
        """The frames `idx` (a list of indices), in order."""
        idx = list(idx)
        if not self.start:
            return list(self._full(idx, output_type))
        groups: dict[int | None, list[int]] = {}  # prompt index (None: interpolated) -> positions in idx
        for k, i in enumerate(idx):
            w = self.weights[i]
            groups.setdefault(int(w.argmax()) if w.max() == 1 else None, []).append(k)
        out: list = [None] * len(idx)
        for p, ks in groups.items():
            sub = [idx[k] for k in ks]
            imgs = self._full(sub, output_type) if p is None else self._shared(sub, p, output_type)
            for k, img in zip(ks, imgs):
                out[k] = img
        return out


def aligned_batches(todo: list[int], batch: int, n_frames: int) -> list[list[int]]:
    """The aligned batches (frames k*batch .. k*batch+batch-1) that hold any frame of `todo`."""
    return [list(range(k * batch, min(k * batch + batch, n_frames))) for k in sorted({i // batch for i in todo})]


def _img2img_chain(folder: RenderFolder, spec: VideoSpec, curves, pipe, todo: list[int]):
    """Yield (i, image) for the img2img frames `todo`, each from the previous frame on disk (lazily: frame i-1
    is written before frame i is computed)."""
    for i in todo:
        bends = frame_bends(spec, curves, [i])
        if i == 0 and spec.init_image is not None:  # the paper: the first frame is the init image itself
            yield i, load_image(spec.init_image, pipe)
        elif i == 0:
            yield i, render_batch(pipe, bends, embeds=encode_prompts(pipe, spec.prompts[:1]), seed=spec.seed,
                                  latents=initial_noise(pipe, spec.seed), steps=spec.steps, guidance=spec.guidance)[0]
        else:
            prev = folder.frame_path(i - 1)
            yield i, render_img2img(pipe, prev, bends, prompt=spec.img2img_prompt, strength=spec.strength,
                                    seed=spec.seed + i, steps=spec.steps, guidance=spec.guidance)[0]


def _render_into(folder: RenderFolder, spec: VideoSpec, feats, curves, n: int, progress: bool, on_frame, *,
                 pipe=None, pool=None):
    """Render every frame in 0..n-1 the folder lacks (txt2img: the whole aligned batch of each), in this process
    on `pipe` or on the Ray workers of `pool`."""
    from tqdm.auto import tqdm
    todo = folder.missing(n)
    bar = tqdm(total=n, initial=n - len(todo), unit="frame", disable=not progress,
               desc=folder.path.name.removesuffix(".frames"))
    if spec.method == "img2img":
        frames = _img2img_chain(folder, spec, curves, pipe, todo)
    elif pool is not None:
        frames = pool.render(aligned_batches(todo, spec.batch, feats.n_frames))
    else:
        renderer = FrameRenderer(spec, curves, feats.n_frames, pipe)
        frames = ((i, img) for idx in aligned_batches(todo, spec.batch, feats.n_frames)
                  for i, img in zip(idx, renderer.render(idx)))
    for i, img in frames:
        if folder.is_done(i):
            continue
        folder.write(i, img)
        if i < n:
            bar.update()
        if on_frame is not None:
            on_frame(i)
    bar.close()


def _run(spec: VideoSpec, out, *, pipe, device, overwrite, limit, progress, on_frame, workers=None,
         ray_address=None, worker_threads=None, finish=None):
    """Check everything, lock the render folder, check or record the manifest, load the model (here, or once in
    each Ray worker), render the frames still missing, then `finish(folder, n)` (the mux) while the folder is
    still locked."""
    from . import cluster
    if not isinstance(spec, VideoSpec):
        raise ValueError(f"spec {spec!r:.60} is not a VideoSpec")
    out = check_output(out)
    ray = workers is not None or ray_address is not None
    cluster.check_workers(workers, ray_address, spec.method, device if ray else None)
    device = models.check_device(device) if pipe is None and not ray else device
    models.check_threads(worker_threads)
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit {limit!r} is not a number of frames >= 1")
    feats, curves = check_spec(spec, pipe=pipe)
    n = feats.n_frames if limit is None else min(limit, feats.n_frames)
    if progress:
        from tqdm.auto import tqdm
        tqdm.write(f"{spec.audio}: {feats.duration:.2f} s -> {feats.n_frames} frames at {spec.fps:g} fps"
                   f"{f' (rendering the first {n})' if n < feats.n_frames else ''}; frames in {frames_dir(out)}/")
    with RenderFolder(frames_dir(out)) as folder:
        folder.open(spec.identity(), overwrite)
        if ray:
            pool = cluster.Pool(spec, curves, feats.n_frames, workers=workers, address=ray_address,
                                threads=worker_threads, device=device)
            try:
                folder.open(pool.identity, overwrite)
                _render_into(folder, spec, feats, curves, n, progress, on_frame, pool=pool)
            finally:
                pool.close()
        else:
            if pipe is None:
                pipe = models.load_pipeline(spec.model, device)
                check_curves(spec, curves, pipe)  # known before for a folder; a hub id's shapes only now
            folder.open({"weights": models.weights_fingerprint(pipe), "device": device_entry(pipe)}, overwrite)
            _render_into(folder, spec, feats, curves, n, progress, on_frame, pipe=pipe)
        return finish(folder, n) if finish else folder.path


def render_frames(spec: VideoSpec, out: str | Path, *, pipe=None, device: str | None = None,
                  overwrite: bool = False, limit: int | None = None, progress: bool = True, on_frame=None,
                  workers: int | None = None, ray_address: str | None = None,
                  worker_threads: int | None = None) -> Path:
    """Render every frame not yet verified in the render folder beside `out`; returns the folder.

    pipe: a loaded pipeline, or None to load spec.model on `device` once every input has been checked;
    limit: render at least the first `limit` frames (a preview; txt2img completes their last batch);
    on_frame(i): called after frame i is written (tests use it to interrupt);
    workers / ray_address: render on N local Ray workers, or on the Ray cluster at that address ("auto": the
    running one), each with `worker_threads` torch threads (default: the CPUs split among local workers); see
    `bendlab.cluster`.
    """
    return _run(spec, out, pipe=pipe, device=device, overwrite=overwrite, limit=limit, progress=progress,
                on_frame=on_frame, workers=workers, ray_address=ray_address, worker_threads=worker_threads)


def check_upscale(upscale) -> int:
    if not isinstance(upscale, int) or isinstance(upscale, bool) or not 1 <= upscale <= MAX_UPSCALE:
        raise ValueError(f"upscale {upscale!r} is not an integer in 1..{MAX_UPSCALE}; accepted: 1 (the model's size) "
                         f"to {MAX_UPSCALE}")
    return upscale


def mux(frames: list[Path], audio_path: str | Path, out: str | Path, fps: float, upscale: int = 1) -> Path:
    """Join the frames (in order) and the audio into an H.264 + AAC mp4, each frame shown 1/fps s, upscaled
    `upscale` times by ffmpeg's nearest-neighbour scale filter while encoding. Written to a per-process
    temporary name and renamed: no partial mp4 ever stands under `out`."""
    from moviepy import AudioFileClip, ImageSequenceClip
    if not frames:
        raise ValueError("no frames to mux")
    out = Path(out)
    # with_duration: moviepy sums 1/fps per frame and drops the last one to float rounding otherwise
    clip = ImageSequenceClip([str(f) for f in frames], fps=fps).with_duration(len(frames) / fps)
    sound = AudioFileClip(str(audio_path))
    sound = sound.subclipped(0, min(sound.duration, clip.duration))
    tmp = temp_name(out)
    params = ["-vf", f"scale=iw*{upscale}:ih*{upscale}:flags=neighbor"] if upscale > 1 else None
    try:
        clip.with_audio(sound).write_videofile(str(tmp), fps=fps, codec="libx264", audio_codec="aac",
                                               audio_fps=44100, logger=None, pixel_format="yuv420p",
                                               ffmpeg_params=params, temp_audiofile_path=str(out.parent))
        os.replace(tmp, out)
    finally:
        sound.close()
        clip.close()
        tmp.unlink(missing_ok=True)
    return out


def make_video(spec: VideoSpec, out: str | Path, *, pipe=None, device: str | None = None, overwrite: bool = False,
               preview: float | None = None, upscale: int = DEFAULT_UPSCALE, progress: bool = True,
               on_frame=None, workers: int | None = None, ray_address: str | None = None,
               worker_threads: int | None = None) -> Path:
    """Render (or resume) every frame and mux the mp4; returns its path.

    preview: only the first `preview` seconds, written to `<out stem>-preview.mp4` (its frames are reused by the
    full render). upscale: nearest-neighbour factor 1..16 applied while encoding (the shipped model's 64x64
    frames are small; 1 keeps the model's size). workers, ray_address, worker_threads: as `render_frames`.
    Every input is checked before the model loads.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    check_upscale(upscale)
    if preview is not None and (not isinstance(preview, (int, float)) or isinstance(preview, bool)
                                or not math.isfinite(preview) or preview <= 0):
        raise ValueError(f"preview {preview!r} is not a number of seconds > 0")
    out = check_output(out)
    limit = None if preview is None else max(1, int(round(preview * spec.fps)))
    target = out if preview is None else out.with_name(out.stem + "-preview.mp4")

    def finish(folder: RenderFolder, n: int) -> Path:
        return mux(folder.frames(n), spec.audio, target, spec.fps, upscale)

    return _run(spec, out, pipe=pipe, device=device, overwrite=overwrite, limit=limit, progress=progress,
                on_frame=on_frame, workers=workers, ray_address=ray_address, worker_threads=worker_threads,
                finish=finish)


def video_info(path: str | Path) -> dict:
    """Streams and durations of an mp4, read by ffprobe-free means (imageio-ffmpeg's ffmpeg -i)."""
    import subprocess
    import imageio_ffmpeg
    r = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                       text=True)
    text = r.stderr
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    info = {"video": "Video: h264" in text, "audio": "Audio: aac" in text,
            "duration": int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None}
    nf = imageio_ffmpeg.count_frames_and_secs(str(path))
    info["frames"], info["video_duration"] = nf
    return info
