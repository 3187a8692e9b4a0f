"""One clip on a video transformer pipeline (Wan 2.x: `models.family.WAN`, LTX-Video: `models.family.LTX`), bent
per latent frame: the stock pipeline call with bends installed through `bend.hooks.bending`.

The clip's initial latent is seeded standard normal noise drawn on the CPU, one (C, h, w) draw per latent frame
(the same noise on CPU and GPU), handed to the pipeline in its own layout (Wan: (1, C, F', h, w); LTX: packed
tokens). A latent bend acts on the family's canonical view, (F', C, h, w), one row per latent frame, so a bend whose
parameter has F' values bends latent frame j by value j, as AnimateDiff's per-frame bends do
(`video.joint`); `video.latent_frames.per_latent_frame` makes those F' values from a curve over the F video frames.
A bend on a transformer block (Wan: "unet:blocks.K", LTX-Video: "unet:transformer_blocks.K") bends its tokens latent
frame by latent frame the same way (`bend.hooks._apply_frames`). Several prompts along the frames condition each
latent frame on its own mix of them (`video.frame_prompts`). The text, attention and VAE decoder targets are refused
in one line with the reason (`models.Family.check_targets`).

A song (the video method, `VideoSpec(method="video", model=<a Wan or LTX-Video folder>)`) is rendered by
`TransformerWindows`, `video.joint.WindowRenderer`'s order, overlaps and resume with three differences:
- Windows hold 1 + r k video frames (the pipeline's own clip length by default: Wan 81, LTX-Video 161) and start
  on latent frames (window - overlap a multiple of r); the song is padded to 1 + r k frames with its last
  parameter (the padding is rendered, never written). Latent frame j of the song's noise is the j-th draw of one
  seeded generator (`joint.ClipNoise`), the same in every window that holds it; a window starting at video frame
  s starts at the song's latent frame s / r (its first latent frame, which holds frame s alone, takes that
  draw). A song no longer than the window is one window: the stock pipeline call, bit for bit (`render_clip`).
- Each window's parameters are its own stretch of the curves, one per latent frame (`per_latent_frame`), and so
  are its prompt weights (`spec.prompt_weights`, `frame_prompts.latent_weights`).
- Windows are blended as **decoded frames**, not latents: a window's first latent frame holds one video frame
  and the rest r each, so two windows' latent frames never hold the same video frames as a shifted copy of each
  other (the song's latent frame s / r holds frames s - r + 1 .. s, a window's first latent frame frame s alone),
  and each window is decoded by the stock pipeline call (its VAE's temporal context is its own window's). In an
  overlap the frames (float, 0..1) are cross-faded with `joint.blend_weights`; what waits between two windows
  (saved in the render folder for resume) is those frames in float32.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from typing import Sequence

import numpy as np
import torch

from ..bend.bends import Bend, as_bends
from ..bend.fit import check_bends
from ..bend.hooks import bending
from ..checks import BendlabValueError, check_int
from ..models.family import VIDEO, VIDEO_TRANSFORMERS, Family, family_of
from .frame_prompts import encode_each, frame_prompts, latent_weights
from .joint import ClipNoise, WindowRenderer, blend_weights, plan_windows, shuffle_block
from .latent_frames import check_frames, per_latent_frame
from .spec import Plan, check_curves, prompt_weights


def _default(pipe, name: str):
    """The pipeline's own default for an argument of its call."""
    return inspect.signature(type(pipe).__call__).parameters[name].default


def check_family(pipe) -> Family:
    """The pipeline's family; a one-line error unless it is a video transformer (`VIDEO_TRANSFORMERS`)."""
    fam = family_of(pipe)
    if fam not in VIDEO_TRANSFORMERS:
        accepted = ", ".join(f"{f.txt2img} ({f.name})" for f in VIDEO_TRANSFORMERS)
        raise BendlabValueError(f"render_clip renders a video transformer pipeline and this is {type(pipe).__name__} "
                                f"({fam.name}); accepted: {accepted}; AnimateDiff renders with "
                                "video.joint.render_window")
    return fam


def check_clip(pipe, bends: Sequence[Bend], n_frames: int, height: int, width: int, steps: int) -> Family:
    """One-line errors for a clip that cannot be rendered on this pipeline as asked (a pipeline of another family,
    a target it refuses or a module it lacks, frames that do not fill whole latent frames, a size the pipeline
    would round or refuse, a bend that does not fit: one parameter per video frame where one per latent frame is
    needed), before any model work. Returns the pipeline's family."""
    fam = check_family(pipe)
    fam.check_targets(bends)
    check_int("steps", steps, 1)
    r = fam.temporal_ratio_of(pipe)
    n = check_frames(n_frames, r)
    s = int(getattr(pipe, fam.spatial_ratio))
    side = math.lcm(s * fam.patch_side(pipe), fam.size_multiple)
    for name, v in (("height", height), ("width", width)):
        check_int(name, v, side)
        if v % side:
            raise BendlabValueError(f"{name} {v} is not a multiple of {side} ({fam.name}'s VAE, patches and pipeline); "
                                    f"accepted: {v // side * side or side} or {(v // side + 1) * side}")
    _, h, w = fam.latent_grid(pipe, n_frames, height, width)
    shape = (n, fam.denoiser_of(pipe).config.in_channels, h, w)
    for b in bends:
        p = b.param
        if isinstance(p, torch.Tensor) and p.ndim and p.shape[0] == n_frames != n:
            raise BendlabValueError(f"{b.op}: one value per video frame ({n_frames}) where one per latent frame ({n}) "
                                    f"is needed (the VAE compresses time {r}x); accepted: "
                                    "video.latent_frames.per_latent_frame(curve, r) or a number")
    check_bends(pipe, bends, steps, shape)  # each bend's layers, shape and module
    return fam


def clip_noise(pipe, seed: int, n_frames: int, height: int, width: int) -> torch.Tensor:
    """The clip's initial latent in the pipeline's layout: latent frame j is the j-th (C, h, w) standard normal draw
    of a CPU generator seeded with `seed`, on the pipeline's device, float32 (as the pipelines prepare theirs)."""
    fam = family_of(pipe)
    grid = fam.latent_grid(pipe, n_frames, height, width)
    channels = fam.denoiser_of(pipe).config.in_channels
    x = torch.randn((grid[0], channels, *grid[1:]), generator=torch.Generator().manual_seed(seed))
    like = torch.empty(fam.layout.shape(1, channels, grid), device="meta")
    return fam.layout.restore(x, like).contiguous().to(pipe.device)


@torch.no_grad()
def render_clip(pipe, bends=(), *, prompt: str | Sequence[str], n_frames: int, height: int, width: int,
                steps: int | None = None, guidance: float | None = None, seed: int = 0,
                negative_prompt: str | None = None, output_type: str = "np", weights=None):
    """One clip of n_frames frames (1 + r k: r the VAE's temporal compression) at height x width from `prompt`,
    with `bends` (latent and transformer block bends; a parameter is a number or one value per latent frame)
    installed on the stock pipeline call. Several prompts along the frames: `prompt` a list of P prompts and
    `weights` (F', P) each latent frame's weights (rows summing to 1; `frame_prompts.latent_weights` makes them from
    the video frames'), each latent frame conditioned on its own mix (`video.frame_prompts`); one prompt all along
    is the stock call. steps, guidance: None -> the pipeline's own defaults (Wan: 50 and 5.0; LTX: 50 and 3.0). The
    prompt's tokens: the tokenizer's length or the pipeline's default, the shorter. Returns the frames: an (F, H, W,
    3) float array in 0..1 (output_type="np") or F PIL images ("pil"); with output_type="latent" the final latent,
    undecoded, in the pipeline's layout (without the batch axis)."""
    bends = as_bends(bends)
    check_family(pipe)
    steps = _default(pipe, "num_inference_steps") if steps is None else steps
    guidance = _default(pipe, "guidance_scale") if guidance is None else guidance
    check_clip(pipe, bends, n_frames, height, width, steps)
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    weights = check_weights(weights, len(prompts), check_frames(n_frames, family_of(pipe).temporal_ratio_of(pipe)))
    return _call(pipe, bends, prompts, clip_noise(pipe, seed, n_frames, height, width), n_frames, height, width,
                 steps, guidance, seed, negative_prompt, output_type, weights)


def check_weights(weights, n_prompts: int, n_latent: int) -> np.ndarray:
    """(F', P) prompt weights per latent frame, checked: None with one prompt -> all on it; a one-line error for
    another shape, a negative weight or a row not summing to 1."""
    if weights is None and n_prompts == 1:
        return np.ones((n_latent, 1))
    w = np.asarray(weights if weights is not None else np.nan, dtype=float)
    if w.shape != (n_latent, n_prompts) or (w < 0).any() or not np.allclose(w.sum(1), 1):
        raise BendlabValueError(f"prompt weights of shape {w.shape} for {n_prompts} prompts and {n_latent} latent "
                                f"frames; accepted: ({n_latent}, {n_prompts}) weights >= 0, each row summing to 1 "
                                "(video.frame_prompts.latent_weights)")
    return w


def _call(pipe, bends, prompts, latents, n_frames, height, width, steps, guidance, seed, negative_prompt=None,
          output_type="np", weights=None):
    """The stock pipeline call from `latents` (checked), the bends installed; its first item's frames. weights (F',
    P): each latent frame's weights of the P prompts; where every latent frame is on the same one prompt (or
    weights is None: the first) it is the stock call with that prompt, else each latent frame is conditioned on its
    own mix (`video.frame_prompts`). The prompt's tokens: the tokenizer's length or the pipeline's default, the
    shorter."""
    tokens = min(pipe.tokenizer.model_max_length, _default(pipe, "max_sequence_length"))
    w = np.ones((1, 1)) if weights is None else weights
    first = int(w[0].argmax())
    with contextlib.ExitStack() as stack:
        if np.array_equal(w, np.eye(w.shape[1])[[first] * len(w)]):  # one prompt all along the clip
            text = {"prompt": prompts[first]}
        else:
            embeds, masks = encode_each(pipe, prompts, tokens)
            text = stack.enter_context(frame_prompts(pipe, embeds, masks, w, first, tokens, negative_prompt))
        cb = stack.enter_context(bending(pipe, bends, prompts=[prompts[first]]))
        out = pipe(**text, negative_prompt=negative_prompt, num_frames=n_frames, height=height, width=width,
                   num_inference_steps=steps, guidance_scale=guidance, latents=latents,
                   generator=torch.Generator().manual_seed(seed), output_type=output_type, callback_on_step_end=cb,
                   max_sequence_length=tokens)
    return out.frames[0]


# ------------------------------------------------------------------------------------------ a song in windows
def padded(n_frames: int, r: int) -> int:
    """The frames a song of n_frames is rendered as on a VAE that compresses time r-fold: the fewest 1 + r k that
    hold them (the frames after n_frames are rendered with the last parameter and never written)."""
    return n_frames if n_frames <= 1 else r * -(-(n_frames - 1) // r) + 1


def song_windows(n_frames: int, window: int, overlap: int, r: int = 1) -> list[tuple[int, int]]:
    """The windows (start, end) of a song of n_frames on the video method: `joint.plan_windows` of the song padded
    to 1 + r k frames (`padded`; r = 1: AnimateDiff, no padding). With window and window - overlap as the video
    method checks them (1 + r k, a multiple of r), every window holds 1 + r k frames and starts on a latent frame."""
    return plan_windows(padded(n_frames, r), window, overlap)


def check_song(plan: Plan, pipe) -> None:
    """One-line errors for a song's bends on a video transformer (or its meta-device skeleton,
    `models.Model.shapes`): every mapping at both ends of its curve, checked as a window of the song's first window
    frames at the spec's size (`check_clip`: the family's targets, latent frames, size, the bends' shapes)."""
    spec, fam = plan.spec, check_family(pipe)
    r = fam.temporal_ratio_of(pipe)
    bends = []
    for j, m in enumerate(spec.mappings):
        if j in plan.vectors:  # a matrix: only its layer and where depend on the model
            bends.append(m.bend(plan.vectors[j][0].tolist()))
            continue
        bends += [m.bend(float(v)) for v in (plan.curves[j].min(), plan.curves[j].max())]
    first = song_windows(plan.n_frames, spec.window, spec.overlap, r)[0]
    check_clip(pipe, bends, first[1] - first[0], spec.height, spec.width, spec.n_layers)


def song_noise(spec, shape: tuple[int, int, int], r: int) -> ClipNoise:
    """A song's initial noise per latent frame: noise "random", latent frame j the j-th draw of one seeded generator;
    "shuffle", FreeNoise's shuffled noise over latent frames (`joint.ClipNoise`): a window of 1 + (window - 1) / r
    latent frames, windows (window - overlap) / r latent frames apart, so every window starting on a block holds
    the first window's draws in its own order. The first window is the same either way."""
    if spec.noise != "shuffle":
        return ClipNoise(spec.seed, shape)
    n = check_frames(spec.window, r)
    return ClipNoise(spec.seed, shape, n, shuffle_block(n, n - (spec.window - spec.overlap) // r))


class TransformerWindows(WindowRenderer):
    """Renders a plan's frames on a video transformer (Wan, LTX-Video) window by window (the module docstring):
    prepared once (the bends checked, the windows and their weights, the padded curves), then run in order by
    `WindowRenderer.frames` (resume from the render folder's saved overlaps included). What it blends is a
    window's decoded frames, (1, 3, F, H, W) float32 in 0..1."""

    def __init__(self, plan: Plan, pipe):
        spec = plan.spec
        self.fam = check_family(pipe)
        check_song(plan, pipe)
        self.plan, self.pipe, self.n = plan, pipe, plan.n_frames
        self.r = self.fam.temporal_ratio_of(pipe)
        self.windows = song_windows(plan.n_frames, spec.window, spec.overlap, self.r)
        self.weights = [torch.tensor(w, dtype=torch.float32).view(1, 1, -1, 1, 1) for w in blend_weights(self.windows)]
        pad = self.windows[-1][1] - plan.n_frames
        self.curves = np.pad(plan.curves, ((0, 0), (0, pad)), mode="edge")
        self.vectors = {j: np.pad(v, ((0, pad), (0, 0)), mode="edge") for j, v in plan.vectors.items()}
        weights = prompt_weights(spec, plan.n_frames) if plan.weights is None else plan.weights
        self.prompt_weights = np.pad(weights, ((0, pad), (0, 0)), mode="edge")  # (frames, prompts)
        _, h, w = self.fam.latent_grid(pipe, 1, spec.height, spec.width)
        self.channels = self.fam.denoiser_of(pipe).config.in_channels
        self.noise = song_noise(spec, (self.channels, h, w), self.r)
        self.shape = (3, spec.height, spec.width)  # what an overlap holds per frame: RGB in 0..1

    def bends(self, s: int, e: int) -> list[Bend]:
        """The mappings' bends for the window of frames s..e-1: one parameter per latent frame, the mean of the
        curve over the frames it holds (`per_latent_frame`)."""
        out = []
        for j, m in enumerate(self.plan.spec.mappings):
            if j in self.vectors:  # (F, K) -> (F', K)
                values = per_latent_frame(self.vectors[j][s:e].T, self.r).T
            else:
                values = per_latent_frame(self.curves[j, s:e], self.r)
            out.append(m.bend(torch.tensor(values, dtype=torch.float64)))
        return out

    def noise_of(self, s: int, e: int) -> torch.Tensor:
        """The initial latent of the window of frames s..e-1 in the pipeline's layout: the song's latent frames
        s / r .. s / r + F' - 1."""
        n = check_frames(e - s, self.r)
        x = VIDEO.canonical(self.noise.frames(s // self.r, s // self.r + n))  # (F', C, h, w)
        grid = self.fam.latent_grid(self.pipe, e - s, *self.shape[1:])
        like = torch.empty(self.fam.layout.shape(1, self.channels, grid), device="meta")
        return self.fam.layout.restore(x, like).contiguous().to(self.pipe.device)

    @torch.no_grad()
    def latents(self, j: int) -> torch.Tensor:
        """(1, 3, F, H, W) window j's frames, float32 in 0..1 on the CPU: the stock pipeline call (output_type
        "pt", decoded by its VAE) from the song's noise of its latent frames, with its bends and its latent frames'
        prompt weights (one prompt all along: the stock call with it)."""
        spec = self.plan.spec
        s, e = self.windows[j]
        frames = _call(self.pipe, self.bends(s, e), spec.prompts, self.noise_of(s, e), e - s, spec.height,
                       spec.width, spec.steps, spec.guidance, spec.seed + s, output_type="pt",
                       weights=latent_weights(self.prompt_weights[s:e], self.r))
        return frames.float().cpu().permute(1, 0, 2, 3).unsqueeze(0)

    def decode(self, latents: torch.Tensor, output_type: str = "pil", frames: range | None = None):
        """Blended frames (1, 3, F, H, W) in 0..1 as the pipeline's own output_type "pil" (or "np") makes them (the
        frames were decoded window by window: `frames`, their indices, bend nothing more here)."""
        from diffusers.image_processor import VaeImageProcessor
        x = VaeImageProcessor.pt_to_numpy(latents[0].permute(1, 0, 2, 3))
        return x if output_type == "np" else VaeImageProcessor.numpy_to_pil(x)

    def frames(self, todo, folder=None, output_type: str = "pil", latents=None):
        """`WindowRenderer.frames` without the padding (frames from n_frames on); latents(j): window j's decoded
        frames, default `self.latents` (`video.processes`, `video.cluster`: computed on workers)."""
        for i, frame in super().frames(todo, folder, output_type, latents):
            if i < self.n:
                yield i, frame


def check_plan(plan: Plan, shapes) -> None:
    """A plan's bends against a pipeline (or its `models.Model.shapes`): `check_song` on a video transformer, else
    `video.spec.check_curves`."""
    if family_of(shapes) in VIDEO_TRANSFORMERS:
        check_song(plan, shapes)
    else:
        check_curves(plan, shapes)


def windows_of(plan: Plan, shapes) -> list[tuple[int, int]]:
    """The windows a plan of the video method is rendered in on a pipeline (or its `models.Model.shapes`):
    AnimateDiff's `plan_windows`, a video transformer's `song_windows`."""
    fam = family_of(shapes)
    r = fam.temporal_ratio_of(shapes) if fam in VIDEO_TRANSFORMERS else 1
    return song_windows(plan.n_frames, plan.spec.window, plan.spec.overlap, r)


def video_renderer(plan: Plan, pipe) -> WindowRenderer:
    """The video method's renderer for a loaded pipeline: `TransformerWindows` on Wan or LTX-Video, else
    AnimateDiff's `WindowRenderer`."""
    return (TransformerWindows if family_of(pipe) in VIDEO_TRANSFORMERS else WindowRenderer)(plan, pipe)
