"""Audio-reactive video: audio features -> operator parameters -> frames -> mp4 with the audio.

A frame's journey: `audio.audio_features` gives one value per frame (computed on the 1/fps window the frame is
shown for) -> each `Mapping` smooths and scales its feature into a bend parameter -> frames are rendered in
batches (method "txt2img": a sin/cos walk through initial noise, prompts interpolated in text-embedding space)
or one by one (method "img2img": each frame from the previous one) -> each PNG is written to the render folder
as soon as it is finished -> `mux` joins the PNGs and the audio into an H.264 + AAC mp4.

The render folder (`video.mp4` -> `video.frames/`) holds a manifest of the settings: running the same command
again resumes and skips finished frames; changed settings refuse to mix frames unless `overwrite=True`.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from . import audio, operators
from .bend import Bend
from .engine import (check_settings, encode_prompts, img2img_layers, initial_noise, latent_shape, render_batch,
                     render_img2img)
from .models import load_pipeline, weights_fingerprint

METHODS = ("txt2img", "img2img")
WALKS = ("sincos", "authors")


@dataclass
class Mapping:
    """One audio feature driving one bend's parameter, e.g. RMS -> rotate1 angle at layer 40 in 0..2*pi.

    feature: one of audio.FEATURES; low, high: the parameter range it is scaled into (low < high or reversed);
    scaling: "minmax" or "percentile" over the track; curve: exponent after normalising;
    attack, release: envelope follower time constants in seconds; median: odd running-median window (frames).
    """

    feature: str = "rms"
    op: str = "rotate1"
    layer: int = 40
    low: float = 0.0
    high: float = 2 * math.pi
    where: str = "all"
    norm: str | None = None
    scaling: str = "minmax"
    curve: float = 1.0
    attack: float = 0.0
    release: float = 0.0
    median: int = 1

    def __post_init__(self):
        audio.check_feature(self.feature)
        operators.get(self.op)
        for name in ("low", "high"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"range {name} {v!r} is not a finite number")
        if self.low == self.high:
            raise ValueError(f"range {self.low:g}..{self.high:g} is empty; accepted: low != high")
        for v in (self.low, self.high):
            operators.check_param(self.op, v if self.op not in ("reflect", "erode", "dilate") else round(v))
        Bend(self.op, self.low, self.layer, self.where, self.norm)  # validates layer, where, norm

    def params(self, feats: audio.Features) -> np.ndarray:
        """The parameter value for every frame."""
        x = audio.smooth(feats[self.feature], feats.fps, self.attack, self.release, self.median)
        p = audio.scale(x, self.low, self.high, self.scaling, curve=self.curve)
        if self.op in ("reflect", "erode", "dilate"):
            p = np.round(p)
        if self.op == "invert" and (p == 0).any():
            raise ValueError("invert: the scaled range passes through r = 0; accepted: a range that excludes 0")
        return p


@dataclass
class VideoSpec:
    """Everything that determines the frames (saved as the render folder's manifest)."""

    audio: str
    prompts: list[str] = field(default_factory=lambda: ["3D mesh geometry"])
    keyframes: list[float] | None = None  # seconds, one per prompt; None: prompts spread from first to last frame
    mappings: list[Mapping] = field(default_factory=lambda: [Mapping()])
    method: str = "txt2img"
    walk: str = "sincos"  # txt2img initial noise: A sin + B cos, or "authors": seed noise + 0.3 (A sin + B cos)
    fps: float = 20.0
    steps: int = 50
    guidance: float = 7.5
    seed: int = 46
    strength: float = 0.5  # img2img
    img2img_prompt: str = ""  # img2img frames after the first: the paper uses an empty prompt
    init_image: str | None = None  # img2img: first frame; else the first frame is text-to-image
    model: str = "bendlab-tiny-sd"
    sr: int = 22050

    def __post_init__(self):
        self.mappings = [m if isinstance(m, Mapping) else Mapping(**m) for m in self.mappings]
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; accepted: {', '.join(METHODS)}")
        if self.walk not in WALKS:
            raise ValueError(f"unknown noise walk {self.walk!r}; accepted: {', '.join(WALKS)}")
        audio.check_fps(self.fps)
        check_settings(self.steps, self.guidance, self.seed, self.strength if self.method == "img2img" else None)
        if not self.prompts or not all(isinstance(p, str) for p in self.prompts):
            raise ValueError(f"prompts {self.prompts!r}: accepted: one or more strings")
        if self.keyframes is not None:
            k = list(self.keyframes)
            if len(k) != len(self.prompts):
                raise ValueError(f"{len(k)} keyframe times for {len(self.prompts)} prompts; accepted: one per prompt")
            if any(b <= a for a, b in zip(k, k[1:])) or k[0] < 0:
                raise ValueError(f"keyframe times {k} are not increasing from >= 0 s")
        n = img2img_layers(self.steps, self.strength) if self.method == "img2img" else self.steps
        for m in self.mappings:
            if m.layer > n:
                raise ValueError(f"layer {m.layer} is outside 0..{n} (the {self.method} frames run {n} steps)")
        if self.init_image is not None and not Path(self.init_image).is_file():
            raise FileNotFoundError(f"init image {self.init_image!r} does not exist")

    def manifest(self) -> dict:
        d = asdict(self)
        d["audio"] = str(Path(self.audio).resolve())
        d["audio_bytes"] = Path(self.audio).stat().st_size
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
    B cos(2 pi i / k) for frame i of k, A and B drawn from the seed (computed per batch: memory stays flat)."""
    g = torch.Generator().manual_seed(spec.seed)
    shape = latent_shape(pipe, 1)
    A, B = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    i = torch.as_tensor(range(n_frames) if frames is None else frames, dtype=torch.float64)
    ang = (2 * math.pi * i / n_frames).view(-1, 1, 1, 1)
    walk = A * torch.sin(ang).float() + B * torch.cos(ang).float()
    if spec.walk == "authors":
        walk = torch.randn(shape, generator=g) + 0.3 * walk
    return walk


# ------------------------------------------------------------------------------------------ render folder
def frames_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".frames")


def frame_path(folder: Path, i: int) -> Path:
    return folder / f"frame_{i:05d}.png"


def _save_atomic(img: Image.Image, path: Path) -> None:
    tmp = path.with_name(path.stem + ".part.png")
    img.save(tmp)
    os.replace(tmp, path)


def open_render_folder(folder: Path, record: dict, overwrite: bool) -> None:
    """Create the folder and record `record` in its manifest, or check the entries the manifest already holds
    match (resume). Entries are recorded as they become known (the settings first, the model weights once the
    model is loaded), so an entry the manifest lacks is adopted. A mismatch raises, or with overwrite deletes
    the frames rendered so far."""
    mpath = folder / "manifest.json"
    record = json.loads(json.dumps(record, default=str))  # compare as stored (tuples become lists)
    old = json.loads(mpath.read_text()) if mpath.is_file() else {}
    changed = sorted(k for k in record if k in old and old[k] != record[k])
    if changed:
        if not overwrite:
            raise ValueError(f"render folder {str(folder)!r} holds frames made with other settings "
                             f"({', '.join(changed)} changed); accepted: the same settings and model to resume, "
                             "or overwrite=True / --overwrite to start again")
        for f in folder.glob("frame_*.png"):
            f.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    mpath.write_text(json.dumps({**old, **record}, indent=1) + "\n")


def check_output(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix.lower() != ".mp4":
        raise ValueError(f"output {str(out)!r} is not an .mp4 file")
    if not out.parent.is_dir():
        raise ValueError(f"output folder {str(out.parent)!r} does not exist; create it first")
    if not os.access(out.parent, os.W_OK):
        raise ValueError(f"output folder {str(out.parent)!r} is not writable")
    return out


# ------------------------------------------------------------------------------------------ rendering
def plan(spec: VideoSpec) -> tuple[audio.Features, np.ndarray]:
    """Features and the (n_mappings, n_frames) parameter curves; cheap, no model work."""
    feats = audio.audio_features(spec.audio, spec.fps, spec.sr)
    return feats, np.stack([m.params(feats) for m in spec.mappings])


def render_frames(spec: VideoSpec, out: str | Path, *, pipe=None, batch: int = 4, overwrite: bool = False,
                  limit: int | None = None, progress: bool = True, on_frame=None) -> Path:
    """Render every frame not yet on disk into the render folder beside `out`; returns the folder.

    batch: frames per txt2img batch (per-frame parameters in one batch); limit: render only the first
    `limit` frames (a preview); on_frame(i): called after frame i is written (tests use it to interrupt).
    """
    from tqdm.auto import tqdm
    out = check_output(out)
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch {batch!r} is not an integer >= 1")
    feats, curves = plan(spec)
    n = feats.n_frames if limit is None else min(limit, feats.n_frames)
    if spec.keyframes is not None and spec.keyframes[-1] > feats.duration:
        raise ValueError(f"keyframe at {spec.keyframes[-1]:g} s is beyond the audio ({feats.duration:.2f} s)")
    folder = frames_dir(out)
    open_render_folder(folder, spec.manifest(), overwrite)
    pipe = pipe or load_pipeline(spec.model)
    open_render_folder(folder, {"weights": weights_fingerprint(pipe)}, overwrite)
    todo = [i for i in range(n) if not frame_path(folder, i).is_file()]
    bar = tqdm(total=n, initial=n - len(todo), unit="frame", disable=not progress, desc=out.name)

    def bends_for(idx) -> list[Bend]:
        return [Bend(m.op, torch.tensor(curves[j, idx], dtype=torch.float64), m.layer, m.where, m.norm)
                for j, m in enumerate(spec.mappings)]

    def done(i, img):
        _save_atomic(img, frame_path(folder, i))
        bar.update()
        if on_frame is not None:
            on_frame(i)

    if spec.method == "txt2img":
        weights = torch.tensor(prompt_weights(spec, feats.n_frames), dtype=torch.float32)
        pos, neg = encode_prompts(pipe, spec.prompts)
        for k in range(0, len(todo), batch):
            idx = todo[k:k + batch]
            emb = torch.einsum("fp,pld->fld", weights[idx].to(pos.device, pos.dtype), pos)
            noise = noise_walk(pipe, spec, feats.n_frames, idx).to(pipe.device, pipe.unet.dtype)
            imgs = render_batch(pipe, bends_for(idx), prompt_embeds=emb, negative_embeds=neg[:1].expand_as(emb),
                                latents=noise, steps=spec.steps, guidance=spec.guidance)
            for i, img in zip(idx, imgs):
                done(i, img)
    else:
        for i in todo:
            bends = bends_for([i])
            if i == 0 and spec.init_image is None:
                emb, neg = encode_prompts(pipe, spec.prompts[:1])
                img = render_batch(pipe, bends, prompt_embeds=emb, negative_embeds=neg,
                                   latents=initial_noise(pipe, spec.seed), steps=spec.steps, guidance=spec.guidance)[0]
            else:
                prev = Image.open(frame_path(folder, i - 1)) if i > 0 else Image.open(spec.init_image)
                img = render_img2img(pipe, prev, bends, prompt=spec.img2img_prompt, strength=spec.strength,
                                     seed=spec.seed + i, steps=spec.steps, guidance=spec.guidance)[0]
            done(i, img)
    bar.close()
    return folder


def mux(folder: Path, audio_path: str | Path, out: str | Path, fps: float, n_frames: int | None = None) -> Path:
    """Join frame_00000.png ... and the audio into an H.264 + AAC mp4 (written to a temporary name first)."""
    from moviepy import AudioFileClip, ImageSequenceClip
    frames = sorted(folder.glob("frame_[0-9]*[0-9].png"))
    if n_frames is not None:
        frames = frames[:n_frames]
    missing = [i for i, f in enumerate(frames) if f.name != frame_path(folder, i).name]
    if not frames or missing:
        raise ValueError(f"render folder {str(folder)!r} is missing frame {missing[0] if missing else 0}; "
                         "run the render again to finish it")
    out = Path(out)
    # with_duration: moviepy sums 1/fps per frame and drops the last one to float rounding otherwise
    clip = ImageSequenceClip([str(f) for f in frames], fps=fps).with_duration(len(frames) / fps)
    sound = AudioFileClip(str(audio_path))
    sound = sound.subclipped(0, min(sound.duration, clip.duration))
    tmp = out.with_name(out.stem + ".part.mp4")
    try:
        clip.with_audio(sound).write_videofile(str(tmp), fps=fps, codec="libx264", audio_codec="aac",
                                               audio_fps=44100, logger=None, pixel_format="yuv420p",
                                               temp_audiofile_path=str(out.parent))
    finally:
        sound.close()
        clip.close()
    os.replace(tmp, out)
    return out


def make_video(spec: VideoSpec, out: str | Path, *, pipe=None, batch: int = 4, overwrite: bool = False,
               preview: float | None = None, upscale: int = 4, progress: bool = True) -> Path:
    """Render (or resume) every frame and mux the mp4. preview: only the first `preview` seconds, written to
    `<out stem>-preview.mp4` (its frames are reused by the full render). upscale: nearest-neighbour factor
    for the small shipped model's 64x64 frames in the mp4 (1 keeps the model's size)."""
    out = check_output(out)
    limit = None if preview is None else max(1, int(round(preview * spec.fps)))
    folder = render_frames(spec, out, pipe=pipe, batch=batch, overwrite=overwrite, limit=limit, progress=progress)
    n = len(list(folder.glob("frame_[0-9]*[0-9].png"))) if limit is None else limit
    target = out if preview is None else out.with_name(out.stem + "-preview.mp4")
    if upscale > 1:
        folder = _upscaled(folder, upscale, n)
    return mux(folder, spec.audio, target, spec.fps, n)


def _upscaled(folder: Path, k: int, n: int) -> Path:
    """Nearest-neighbour copies of the frames, k times larger, in <folder>/x<k>/ (reused when present)."""
    up = folder / f"x{k}"
    up.mkdir(exist_ok=True)
    for i in range(n):
        dst = frame_path(up, i)
        if not dst.is_file():
            im = Image.open(frame_path(folder, i))
            _save_atomic(im.resize((im.width * k, im.height * k), Image.NEAREST), dst)
    return up


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
