"""The frames of a video, computed on one pipeline (the fourth stop of a frame's way: audio -> mapping -> bend ->
video.renderer -> video.folder -> mp4): the noise walk, the shared prefix of fixed-noise frames, the img2img
chain, and `LocalSource` (the video method's windows: `video.joint` on AnimateDiff, `video.clip` on Wan and
LTX-Video, `video.clip.video_renderer` choosing by the pipeline's family), the frame source `video.render_frames`
uses in this process (`video.cluster.RaySource` is the other: the same `FrameRenderer` on Ray workers).

A frame source is a small object the orchestration is handed:

    source.check(spec)                         # cheap checks before any work (device, workers)
    source.begin()                             # what may start before the audio is analysed (Ray's runtime)
    model = source.model(spec)                 # the models.Model the spec is resolved and checked against
    identity = source.start(plan)              # loads the model(s); returns what the manifest records of them
    for i, image in source.frames(batches, folder): ...   # PIL images or PNG bytes, in any order
    source.close()
    vae = source.vae()                         # only for `--interpolate-method latent` (`tween`)

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

from .. import models
from ..bend.bends import Bend
from .coherence import match_colors
from ..bend.fit import check_pipe
from ..checks import BendlabValueError
from ..bend.render import (encode_prompts, initial_noise, latent_shape, load_image, render_batch, render_img2img,
                           run_batch, shared_prefix)
from .clip import check_plan, video_renderer  # AnimateDiff's WindowRenderer, or a video transformer's windows
from .joint import WindowRenderer
from .spec import Plan, VideoSpec, check_curves, frame_bends, prompt_weights


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


def device_entry(pipe) -> str:
    """The device, dtype and (on a CPU) torch threads: each changes pixels at the rounding level."""
    dtype = models.family_of(pipe).denoiser_of(pipe).dtype
    d = f"{pipe.device.type} {str(dtype).removeprefix('torch.')}"
    return d + (f", {torch.get_num_threads()} threads" if pipe.device.type == "cpu" else "")


def aligned_batches(todo: list[int], batch: int, n_frames: int) -> list[list[int]]:
    """The aligned batches (frames k*batch .. k*batch+batch-1) that hold any frame of `todo`."""
    return [list(range(k * batch, min(k * batch + batch, n_frames))) for k in sorted({i // batch for i in todo})]


class FrameRenderer:
    """Renders any set of a txt2img video's frames on one pipeline: what `LocalSource` runs in this process and
    what each Ray worker holds (`bendlab.cluster`). A frame depends only on its index (its noise, prompt
    weights and parameters) and on its aligned batch, never on which process renders it.

    Shared prefix (walk "none", `share=True`): frames that start from the same noise with the same prompt share
    every denoising step before the earliest layer any mapping bends. That latent is computed once per prompt
    (kept for the renderer's life) and frames run from there as one batch, as `render_grid` does for sweeps;
    frames between two keyframes (interpolated prompts) and bends at layer 0 run in full. Shared frames equal
    the full computation within float rounding (tests/conftest.py states the bound).

    Per-frame prompts and layers (`Plan.weights`, `Plan.layers`: a recorded live session): the frames of a batch
    are grouped by (prompt, layers) and each group is one `render_batch`; the shared prefix stops at the earliest
    layer of any frame.
    """

    def __init__(self, plan: Plan, pipe, share: bool = True):
        check_curves(plan, pipe)  # prepare: every bend a frame can carry, against this pipeline, once; then run
        self.spec, self.curves, self.n_frames, self.pipe = plan.spec, plan.curves, plan.n_frames, pipe
        self.vectors, self.layers = plan.vectors, plan.layers
        weights = prompt_weights(self.spec, self.n_frames) if plan.weights is None else plan.weights
        self.weights = torch.tensor(weights, dtype=torch.float32)
        self.embeds = encode_prompts(pipe, self.spec.prompts)
        stochastic = models.is_stochastic(pipe.scheduler)
        self.start = self.shared_layer(self.spec, self.layers) if share and not stochastic else 0
        self._prefix: dict[int, torch.Tensor] = {}

    @staticmethod
    def shared_layer(spec: VideoSpec, layers: np.ndarray | None = None) -> int:
        """The layer up to which frames can share their steps: the earliest bent layer (of any frame, with
        per-frame `layers`) with walk "none", else 0 (`spec` resolved: every mapping has its layer)."""
        if spec.method != "txt2img" or spec.walk != "none":
            return 0
        return int(layers.min()) if layers is not None else min(m.layer for m in spec.mappings)

    def bends(self, idx, layers: tuple[int, ...] | None = None) -> list[Bend]:
        return frame_bends(self.spec, self.curves, idx, self.vectors, layers)

    def _full(self, idx, output_type, layers=None):
        noise = noise_walk(self.pipe, self.spec, self.n_frames, idx).to(self.pipe.device, self.pipe.unet.dtype)
        words = [self.spec.prompts[int(self.weights[i].argmax())] for i in idx]  # token:WORD finds its tokens
        return run_batch(self.pipe, self.bends(idx, layers), self.embeds.mix(self.weights[idx]), noise,
                         steps=self.spec.steps, guidance=self.spec.guidance, prompts=words, output_type=output_type,
                         seed=self.spec.seed + idx[0])  # per aligned batch: the same whoever renders it

    def prefix(self, p: int) -> torch.Tensor:
        """The latent of prompt p at layer `start` (before any bend), computed once."""
        if p not in self._prefix:
            pipe, L = self.pipe, self.start
            noise = noise_walk(pipe, self.spec, self.n_frames, [0]).to(pipe.device, pipe.unet.dtype)
            self._prefix[p] = shared_prefix(pipe, self.embeds.row(p), noise, [L], steps=self.spec.steps,
                                            guidance=self.spec.guidance)[L]
        return self._prefix[p]

    def _shared(self, idx, p: int, output_type, layers=None):
        B = len(idx)
        return run_batch(self.pipe, self.bends(idx, layers), self.embeds.row(p).expand(B),
                         self.prefix(p).expand(B, -1, -1, -1).clone(), steps=self.spec.steps,
                         guidance=self.spec.guidance, start=self.start, prompts=[self.spec.prompts[p]] * B,
                         output_type=output_type)

    @torch.no_grad()
    def render(self, idx, output_type: str = "pil") -> list:
        """The frames `idx` (a list of indices), in order."""
        idx = list(idx)
        # (prompt index, or None: interpolated or no shared prefix; layers per mapping, or None) -> positions in idx
        groups: dict[tuple, list[int]] = {}
        for k, i in enumerate(idx):
            w = self.weights[i]
            p = int(w.argmax()) if self.start and w.max() == 1 else None
            groups.setdefault((p, None if self.layers is None else tuple(self.layers[:, i].tolist())), []).append(k)
        out: list = [None] * len(idx)
        for (p, layers), ks in groups.items():
            sub = [idx[k] for k in ks]
            imgs = self._full(sub, output_type, layers) if p is None else self._shared(sub, p, output_type, layers)
            for k, img in zip(ks, imgs):
                out[k] = img
        return out


def img2img_seed(spec: VideoSpec, previous: Image.Image, i: int, before: Image.Image | None = None) -> Image.Image:
    """What seeds frame i: the previous frame, warped on by `spec.flow` of the motion from the frame `before` it
    (frame i - 2; `video.motion.carry`) when flow is on and there is one, then with `spec.img2img_noise` of fresh
    Gaussian noise (seeded by i)."""
    if spec.flow and before is not None:
        from .motion import carry
        previous = carry(before, previous, spec.flow)
    if not spec.img2img_noise:
        return previous
    g = torch.Generator().manual_seed(spec.seed + i)
    a = torch.from_numpy(np.asarray(previous.convert("RGB"), dtype=np.float32) / 255.0)
    a = (a + spec.img2img_noise * torch.randn(a.shape, generator=g)).clamp(0, 1)
    return Image.fromarray((a.numpy() * 255).round().astype(np.uint8))


def img2img_chain(plan: Plan, pipe, todo: list[int], frame_path):
    """Yield (i, image) for the img2img frames `todo`, each from the previous frame on disk (`frame_path(k)`:
    frame k's file; frame i - 1 is written before frame i is computed), with flow on warped by the motion from
    frame i - 2 (also read from disk, so a resumed chain seeds each frame exactly as an unbroken one), its colours
    matched to frame 0's as `spec.color_coherence` says (`video.coherence.match_colors`)."""
    spec, curves = plan.spec, plan.curves
    for i in todo:
        bends = frame_bends(spec, curves, [i], plan.vectors)
        if i == 0 and spec.init_image is not None:  # the paper: the first frame is the init image itself
            yield i, load_image(spec.init_image, pipe)
        elif i == 0:
            yield i, render_batch(pipe, bends, embeds=encode_prompts(pipe, spec.prompts[:1]), seed=spec.seed,
                                  prompts=spec.prompts[:1],
                                  latents=initial_noise(pipe, spec.seed), steps=spec.steps, guidance=spec.guidance)[0]
        else:
            before = load_image(frame_path(i - 2), pipe) if spec.flow and i >= 2 else None
            prev = img2img_seed(spec, load_image(frame_path(i - 1), pipe), i, before)
            img = render_img2img(pipe, prev, bends, prompt=spec.img2img_prompt, strength=spec.strength,
                                 seed=spec.seed + i, steps=spec.steps, guidance=spec.guidance)[0]
            if spec.color_coherence != "none":
                img = match_colors(img, Image.open(frame_path(0)), spec.color_coherence)
            yield i, img


class LocalSource:
    """Frames rendered in this process, on `pipe` (a loaded pipeline) or on the spec's model loaded on `device`
    once every input has been checked."""

    def __init__(self, pipe=None, device: str | None = None):
        check_pipe(pipe, video=True)
        self.pipe, self.device = pipe, device
        self.plan: Plan | None = None
        self.renderer: FrameRenderer | WindowRenderer | None = None

    def check(self, spec: VideoSpec) -> None:
        if self.pipe is None:
            self.device = models.check_device(self.device)
            return
        fam = models.family_of(self.pipe)
        if (fam in models.VIDEO_FAMILIES) != (spec.method == "video"):
            accepted = ("a video pipeline (AnimateDiff: models.load_pipeline(model, motion_adapter=PATH))"
                        if spec.method == "video" else "an image pipeline (models.load_pipeline(model))")
            raise BendlabValueError(f"pipe {type(self.pipe).__name__} ({fam.name}) for method {spec.method!r}; "
                                    f"accepted: {accepted}, or pipe=None to load the spec's model")

    def begin(self) -> None:
        """Nothing starts before the plan in this process."""

    def model(self, spec: VideoSpec) -> models.Model:
        """What the spec is resolved and checked against before any weights load."""
        return models.Model.of(spec.model, self.pipe) if self.pipe is not None else spec.model_of()

    def start(self, plan: Plan) -> dict:
        if self.pipe is None:
            self.pipe = plan.spec.model_of().load(self.device)
            check_plan(plan, self.pipe)  # known before for a folder; a hub id's shapes only now
        self.plan = plan
        return {"weights": models.weights_fingerprint(self.pipe), "device": device_entry(self.pipe)}

    def frames(self, todo: list[int], folder):
        if self.plan.spec.method == "img2img":
            yield from img2img_chain(self.plan, self.pipe, todo, folder.frame_path)
            return
        if self.plan.spec.method == "video":  # windows in order, from the last overlap the folder saved
            self.renderer = self.renderer or video_renderer(self.plan, self.pipe)
            yield from self.renderer.frames(todo, folder)
            return
        self.renderer = self.renderer or FrameRenderer(self.plan, self.pipe)
        for idx in aligned_batches(todo, self.plan.spec.batch, self.plan.n_frames):
            yield from zip(idx, self.renderer.render(idx))

    def vae(self):
        """The pipeline's VAE (what `tween` decodes the in-between frames with)."""
        return self.pipe.vae

    def close(self) -> None:
        self.renderer = None
