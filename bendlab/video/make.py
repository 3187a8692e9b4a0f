"""Audio-reactive video: the orchestration of a frame's way, top to bottom.

    audio (`audio.audio_features`: one value per frame, on the 1/fps window the frame is shown for; a spec with
       music generates it first into the render folder, its own bend driven by the first mapping's curve:
       `video.soundtrack`)
    -> mapping (`mapping.Mapping`: each feature smoothed and scaled into a bend parameter)
    -> plan (`video.spec.plan`: the spec resolved against the model, the parameter curves)
    -> frames (`renderer`: a frame source renders the missing frames: `LocalSource` here,
       `video.processes.ProcessSource` on worker processes, `video.cluster.RaySource` on Ray workers, all running
       `video.renderer.FrameRenderer`; the video method's windows on AnimateDiff, `video.joint`, or on a Wan /
       LTX-Video folder, `video.clip.TransformerWindows`: on workers too, which send back a window's latents or
       decoded frames, blended and written here in order)
    -> render folder (`video.folder.RenderFolder`: each PNG written as soon as it is finished, verified, resumable)
    -> mp4 (`video.mux.mux`: the PNGs and the audio into H.264 + AAC).

The render folder (`video.mp4` -> `video.frames/`) holds the frames, a manifest of every setting that changes
pixels and a hash of each finished frame: running the same command again resumes with the verified frames;
changed settings refuse to mix frames unless `overwrite=True`. txt2img frames are rendered in batches aligned to
multiples of `batch` (frame i always in batch i // batch), so a resumed render computes every frame exactly as
an uninterrupted one would, and the mp4 is byte-identical (tested).

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math
from pathlib import Path

from ..bend.fit import check_token_words
from ..checks import BendlabValueError, check_choice, check_int, is_number
from ..files import check_output
from .folder import RenderFolder, frames_dir
from .clip import check_plan, windows_of
from ..mapping import Mapping
from .mux import (DEFAULT_INTERPOLATION, DEFAULT_UPSCALE, INTERPOLATIONS, check_interpolate, check_upscale, mux,
                  video_info)
from .quality import drift, flicker, mp4_frames, seams
from .renderer import FrameRenderer, LocalSource, noise_walk
from .soundtrack import prepare
from .tween import latent_tweens
from .spec import METHODS, WALKS, Plan, VideoSpec, parse_keyframe, plan, prompt_weights

__all__ = ["Mapping", "VideoSpec", "Plan", "plan", "check_spec", "render_frames", "make_video", "mux", "video_info",
           "FrameRenderer", "noise_walk", "parse_keyframe", "prompt_weights", "METHODS", "WALKS"]


def check_spec(spec: VideoSpec, source=None, audio_path=None) -> Plan:
    """Every check that needs no weights: the spec resolved against the model's configs, the audio and the curves
    (`plan`), and the bends against the model's shapes (a hub id's are checked once it is loaded). audio_path: the
    file the features are read from instead of the spec's audio (a spec with music: its generated WAV; before it
    exists, `video.soundtrack.prepare` checks the spec)."""
    source = source or LocalSource()
    model = source.model(spec)
    p = plan(spec, model, audio_path)
    if model.shapes is not None:
        check_plan(p, model.shapes)
    check_token_words(model, [m.bend(m._example(m.low), m.layer or 0) for m in spec.mappings
                              if m.where.startswith("token")], spec.prompts)
    return p


def _render_into(folder: RenderFolder, source, n_frames: int, n: int, progress: bool, on_frame) -> None:
    """Write every frame in 0..n-1 the folder lacks, as the source yields them (txt2img: the whole aligned
    batch of each missing frame)."""
    from tqdm.auto import tqdm
    todo = folder.missing(n)
    bar = tqdm(total=n, initial=n - len(todo), unit="frame", disable=not progress,
               desc=folder.path.name.removesuffix(".frames"))
    for i, img in source.frames(todo, folder):
        if folder.is_done(i):
            continue
        folder.write(i, img)
        if i < n:
            bar.update()
        if on_frame is not None:
            on_frame(i)
    bar.close()


def _run(spec: VideoSpec, out, *, source, overwrite, limit, progress, on_frame, finish=None):
    """Check everything, lock the render folder, make or reuse a spec's music (`video.soundtrack`), check or record
    the manifest, start the frame source (the model loads here, or once in each Ray worker), render the frames
    still missing, then `finish(folder, n)` (the mux) while the folder is still locked."""
    if not isinstance(spec, VideoSpec):
        raise BendlabValueError(f"spec {spec!r:.60} is not a VideoSpec")
    out = check_output(out)
    source = source if source is not None else LocalSource()
    source.check(spec)
    if limit is not None:
        check_int("limit", limit, 1, accepted="a number of frames >= 1")
    source.begin()  # workers may start loading while the audio is analysed: closed on any failure below
    closed = False
    try:
        track = prepare(spec, source.model(spec)) if spec.music is not None else None
        p = check_spec(spec, source) if track is None else None
        with RenderFolder(frames_dir(out)) as folder:
            if track is not None:  # the music first: the frames are planned on it
                p = check_spec(spec, source, track.write(folder, overwrite, progress, _music_device(source)))
            n = p.n_frames if limit is None else min(limit, p.n_frames)
            if progress:
                from tqdm.auto import tqdm
                tqdm.write(f"{p.audio}: {p.feats.duration:.2f} s -> {p.n_frames} frames at {spec.fps:g} fps"
                           f"{f' (rendering the first {n})' if n < p.n_frames else ''}; frames in {folder.path}/")
            folder.open(p.spec.identity(p.audio), overwrite)
            folder.open(source.start(p), overwrite)
            _render_into(folder, source, p.n_frames, n, progress, on_frame)
            closed = True
            source.close()  # before the mux: workers stop while the mp4 is encoded
            return finish(folder, n, p) if finish else folder.path
    finally:
        if not closed:
            source.close()


def _music_device(source) -> str | None:
    """Where a spec's music renders: the local source's device (its pipeline's), else this machine's default."""
    if isinstance(source, LocalSource):
        return str(source.pipe.device) if source.pipe is not None else source.device
    return None


def render_frames(spec: VideoSpec, out: str | Path, *, pipe=None, device: str | None = None, source=None,
                  overwrite: bool = False, limit: int | None = None, progress: bool = True,
                  on_frame=None) -> Path:
    """Render every frame not yet verified in the render folder beside `out`; returns the folder.

    pipe: a loaded pipeline, or None to load spec.model on `device` once every input has been checked;
    source: where frames are rendered instead (e.g. `video.cluster.RaySource(workers=2)`); default: this process;
    limit: render at least the first `limit` frames (a preview; txt2img completes their last batch);
    on_frame(i): called after frame i is written (tests use it to interrupt).
    """
    return _run(spec, out, source=_source(source, pipe, device), overwrite=overwrite, limit=limit,
                progress=progress, on_frame=on_frame)


def _source(source, pipe, device):
    if source is not None and (pipe is not None or device is not None):
        raise BendlabValueError("source given with pipe or device; accepted: one of them (a source holds its own "
                                "device)")
    return source if source is not None else LocalSource(pipe, device)


def make_video(spec: VideoSpec, out: str | Path, *, pipe=None, device: str | None = None, source=None,
               overwrite: bool = False, preview: float | None = None, upscale: int = DEFAULT_UPSCALE,
               interpolate: float | None = None, interpolate_method: str = DEFAULT_INTERPOLATION, progress: bool = True,
               on_frame=None) -> Path:
    """Render (or resume) every frame and mux the mp4; returns its path.

    preview: only the first `preview` seconds, written to `<out stem>-preview.mp4` (its frames are reused by the
    full render). upscale: nearest-neighbour factor 1..16 applied while encoding (the shipped model's 64x64
    frames are small; 1 keeps the model's size). interpolate: write the mp4 at this higher frame rate (frames per
    second), the frames in between made as `interpolate_method` says: "minterpolate" (ffmpeg's motion-compensated
    interpolation while encoding, `video.mux.mux`) or "latent" (the model's VAE decodes blends of the rendered
    frames' latents, `tween`; written to the render folder, resumable). pipe, device, source: as
    `render_frames`.
    Every input is checked before the model loads.

    Notebook: notebooks/07_audio_reactive_video.ipynb
    """
    check_upscale(upscale)
    check_interpolate(interpolate, spec.fps)
    check_choice("interpolate_method", interpolate_method, INTERPOLATIONS)
    if interpolate_method != DEFAULT_INTERPOLATION and not interpolate:
        raise BendlabValueError(f"interpolate_method {interpolate_method!r} without interpolate: no frame would be "
                                "made in between; accepted: interpolate=FPS (--interpolate FPS) with it, or leave "
                                "it out")
    if preview is not None and not (is_number(preview) and math.isfinite(preview) and preview > 0):
        raise BendlabValueError(f"preview {preview!r} is not a number of seconds > 0")
    out = check_output(out)
    limit = None if preview is None else max(1, int(round(preview * spec.fps)))
    target = out if preview is None else out.with_name(out.stem + "-preview.mp4")

    def finish(folder: RenderFolder, n: int, p: Plan) -> Path:
        frames = folder.frames(n)
        if interpolate and interpolate_method == "latent":
            shown = latent_tweens(frames, [folder.sha(i) for i in range(n)], spec.fps, interpolate, source.vae(),
                                  folder.path / f"tweens-{interpolate:g}fps", progress)
            mp4 = mux(shown, p.audio, target, interpolate, upscale)
        else:
            mp4 = mux(frames, p.audio, target, spec.fps, upscale, interpolate)
        if progress:  # what the finished video is like, in two lines
            from tqdm.auto import tqdm
            m = p.spec.mappings[0]
            tqdm.write(flicker(frames, p.curves[0, :n], m.low, m.high))
            if interpolate:  # what the mp4 shows at its own rate (its frames decoded)
                tqdm.write(flicker(mp4_frames(mp4), label=f" at {interpolate:g} fps ({interpolate_method})"))
            if spec.method == "img2img":
                tqdm.write(drift(frames).summary())
            if spec.method == "video":
                tqdm.write(seams(frames, windows_of(p, source.model(spec).shapes)).summary())
        return mp4

    source = _source(source, pipe, device)
    return _run(spec, out, source=source, overwrite=overwrite, limit=limit, progress=progress, on_frame=on_frame,
                finish=finish)
