"""The video method: a clip's frames denoised jointly by a video pipeline (AnimateDiff: an SD v1.x model with a
motion adapter, `models.ANIMATEDIFF`), each frame bent by its own moment of the music, a song in overlapping
windows whose seams do not show.

Windows. The adapter's motion modules see at most `models.max_frames` frames (its temporal position embeddings),
so a song is cut into windows of `spec.window` frames (default: the adapter's), neighbours sharing `spec.overlap`
frames (default window // 4), the last window aligned to the clip's end (`plan_windows`, a pure function of the
frame count and the two sizes). A clip no longer than a window is one window: the stock pipeline call of the first
slice, bit for bit.

Noise (`ClipNoise`, `--noise`). Each frame's initial latent depends on its index only, the same tensor in every
window that holds it, so two windows start their shared frames from the same noise. "shuffle" (the default):
FreeNoise's noise (Qiu et al. 2023; diffusers' `enable_free_noise` default, "shuffle_context"): the first window's
draws, each later block of frames a reordering of the block one window before, so every window starts from the
same draws and the model draws the same scene in each (measured on the shipped piano, 50 steps: flicker p95 37.5
against 50.8 with "random", seams 19.3 levels against 34.4; docs/video.md). "random": one independent draw per
frame, each window free to draw another scene. diffusers' `enable_free_noise` itself is not used: it denoises
the whole clip in one pipeline call, fusing the windows inside the motion modules at every step, so the song has
no unit of work to resume (a kill loses it all) and every frame's latent and activations are held at once; on the
shipped adapter its fusion was also worse than blended windows (p95 73.7 with its windows 4 frames apart).

Blending. Each window is one stock pipeline call with output_type="latent"; in an overlap the two windows'
final latents are cross-faded with linear weights (`blend_weights`: the incoming window's weight rises as
1/(L+1) .. L/(L+1) over an overlap of L frames, the outgoing one's falls, their sum is 1), then each finished
frame is decoded once by the VAE. Blending latents rather than pixels keeps one decode per frame, and what waits
between two windows (the blended overlap) is a small float32 tensor the render folder keeps exactly, so a resumed
render blends the same numbers as an unbroken one (`RenderFolder.write_overlap`).

Order and resume (`WindowRenderer.frames`). Windows are rendered in order. After window j, the frames no later
window holds are final: they are decoded together (one `decode_latents` call, as the stock pipeline decodes a
window) and written; the overlap with window j + 1 waits, accumulated in float32, saved in the render folder. A
kill mid-song loses at most the window in flight: the resumed render starts from the last saved overlap.
Windows are independent until they are blended (window j starts from its frames' noise), so with `--workers N`
worker processes (`video.processes`, on this machine's CPUs) or Ray actors (`video.cluster`, on GPU workers or a
cluster) compute the windows' latents in parallel and this process blends, decodes and writes them in order, as
here (`frames(..., latents=...)`).

Bends. The mappings' curves give one parameter per video frame, and a bend acts on the family's canonical view of
a window's latent, (F, C, h, w), one row per frame, so frame k's slice along the frame axis is bent by the value
of frame k (`bend.hooks.BendCallback`). What follows from it: a bend at the last layer (after the last step,
before the VAE decodes each frame on its own) changes exactly the frames whose parameter is not the identity; at
an earlier layer the motion modules (temporal attention across the window's frames) carry part of a frame's bend
to its neighbours in the steps left. The other targets are per frame too, as the UNet folds the frames into its
batch (row k: frame k; under guidance [negative x F, positive x F]): its blocks, a motion module's output, the
text (each frame's prompt), spatial attention (attn1, attn2 under attentions.K), temporal attention (a motion
module's attn1/attn2, bent per query frame: `bend.attention`); the VAE decoder's bends act when
the frames are decoded, each chunk with its frames' values, so a VAE bend changes exactly its frames. Inside a
motion module's other parts the batch is the pixels and the frames the sequence: refused
(`Family.frame_target_error`).

Prompts. Several prompts (with keyframes, or spread over the song) are interpolated frame by frame with the weights
method A uses (`spec.prompt_weights`): each frame's mix of the prompts' embeddings is written over the pipeline's
repeated prompt as the UNet is called (`_frame_prompts`); a window with one prompt all along is the stock call.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import torch

from ..bend.hooks import install_vae
from ..bend.render import encode_prompts, latent_shape, run_batch
from ..checks import BendlabValueError
from .spec import Plan, check_curves, frame_bends, prompt_weights

DECODE_CHUNK = 16  # frames the VAE decodes at a time: AnimateDiffPipeline's decode_chunk_size default


def _frame_prompts(pipe, mixed: torch.Tensor):
    """A forward pre-hook for the UNet writing each frame's prompt embedding (`mixed`, (F, tokens, dim)) over the
    positive rows of its encoder_hidden_states (the pipeline repeats one prompt per frame: [negative x F,
    positive x F] under classifier-free guidance). Registered before the bends' own hooks, so a text bend acts on
    the frames' prompts."""
    def hook(module, args, kwargs):
        h = kwargs["encoder_hidden_states"]
        half = h.shape[0] // 2 if pipe.do_classifier_free_guidance else 0
        kwargs["encoder_hidden_states"] = torch.cat([h[:half], mixed.to(h.device, h.dtype)])
        return args, kwargs
    return hook


def plan_windows(n_frames: int, window: int, overlap: int) -> list[tuple[int, int]]:
    """The windows (start, end) of a clip of `n_frames`: starts 0, window - overlap, 2 (window - overlap), ...
    while a window ends before the clip does, then one window aligned to the clip's end (so every overlap is at
    least `overlap` frames; the last one may be longer). A clip of at most `window` frames is one window."""
    if n_frames <= window:
        return [(0, n_frames)]
    starts = list(range(0, n_frames - window, window - overlap)) + [n_frames - window]
    return [(s, s + window) for s in starts]


def blend_weights(windows: list[tuple[int, int]]) -> list[np.ndarray]:
    """Each window's weight on each of its frames, summing to 1 over the windows that hold a frame: 1 where only
    one window does, and across an overlap of L frames between two windows a linear cross-fade, the incoming
    window at (t + 1) / (L + 1) on the overlap's frame t, the outgoing one at the rest. (A frame in three
    windows, where the last window is pulled back to the clip's end, gets the ramps normalised to sum 1.)"""
    n = windows[-1][1]
    raw = []
    for j, (s, e) in enumerate(windows):
        k = np.arange(s, e, dtype=np.float64)
        into = windows[j - 1][1] - s if j else 0  # frames shared with the window before
        out = e - windows[j + 1][0] if j + 1 < len(windows) else 0  # ... with the window after
        raw.append(np.minimum.reduce([np.ones(e - s), (k - s + 1) / (into + 1), (e - k) / (out + 1)]))
    total = np.zeros(n)
    for (s, e), w in zip(windows, raw):
        total[s:e] += w
    return [w / total[s:e] for (s, e), w in zip(windows, raw)]


class ClipNoise:
    """The initial noise of a whole clip, frame by frame, drawn on the CPU from generators seeded with `seed` (the
    same noise on CPU and GPU), whichever window asks for it.

    window None ("random" noise): frame k's (C, h, w) latent is the k-th draw of one generator. Windows ask in
    order, so the generator only moves forward, keeping the frames the last window asked for (the next one starts
    among them); asking for an earlier frame draws again from the start.

    window W (FreeNoise's "shuffle_context" noise, Qiu et al. 2023, as diffusers' `enable_free_noise` makes it):
    frames 0..W-1 take the first W draws; every later block of `block` frames takes the draws of the block W frames
    before it, in an order drawn by a second generator (`torch.randperm`). So a window of W frames starting at a
    multiple of `block` holds each of the W draws exactly once, in its own order: every window starts from the
    same draws and the model draws the same scene, where independent draws let each window draw another one. W
    must be a multiple of block (`shuffle_block`)."""

    def __init__(self, seed: int, shape: tuple[int, int, int], window: int | None = None, block: int | None = None):
        self.seed, self.shape, self.window = seed, tuple(shape), window
        if window is not None:
            self.block = block or window
            if window % self.block:
                raise BendlabValueError(f"noise block {self.block} does not divide the window ({window} frames); "
                                        "accepted: a divisor of the window (`shuffle_block`)")
            g = torch.Generator().manual_seed(seed)
            self.draws = [torch.randn(self.shape, generator=g) for _ in range(window)]
            self.index = list(range(window))  # frame k starts from draws[index[k]]
            self.order = torch.Generator().manual_seed(seed)
        self._restart()

    def _restart(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)
        self.drawn, self.kept = 0, {}

    def draw_of(self, k: int) -> int:
        """Which of the first `window` draws frame k starts from (shuffled noise only)."""
        W, b = self.window, self.block
        while len(self.index) <= k:
            i = len(self.index)  # a block's first frame: i = W + m b
            self.index += [self.index[i - W + int(j)] for j in torch.randperm(b, generator=self.order)]
        return self.index[k]

    def frames(self, start: int, end: int) -> torch.Tensor:
        """(1, C, end - start, h, w) the noise of frames start..end-1."""
        if self.window is not None:
            return torch.stack([self.draws[self.draw_of(k)] for k in range(start, end)], dim=1).unsqueeze(0)
        if start < min(self.kept, default=self.drawn):
            self._restart()
        for k in range(self.drawn, end):
            x = torch.randn(self.shape, generator=self.generator)
            if k >= start:
                self.kept[k] = x
        self.drawn = max(self.drawn, end)
        self.kept = {k: x for k, x in self.kept.items() if k >= start}
        return torch.stack([self.kept[k] for k in range(start, end)], dim=1).unsqueeze(0)


def shuffle_block(window: int, overlap: int) -> int:
    """The block the shuffled noise is reordered in: the largest that divides both the window and the step between
    windows (window - overlap), so every window but a last one aligned to the song's end starts on a block (FreeNoise
    shuffles blocks of 4 with windows 16 frames apart 4; here windows 16 apart 12: blocks of 4)."""
    return math.gcd(window, window - overlap)


def window_noise(pipe, seed: int, n_frames: int) -> torch.Tensor:
    """(1, C, n_frames, h, w) the initial latent of a clip's first n_frames frames (`ClipNoise`), on the
    pipeline's device and dtype: what one window of the whole clip starts from."""
    return ClipNoise(seed, latent_shape(pipe, 1)[1:]).frames(0, n_frames).to(pipe.device, pipe.unet.dtype)


class WindowRenderer:
    """Renders a plan's frames on a video pipeline window by window: prepared once (the bends checked against the
    pipeline, the prompt encoded, the windows and their weights), then run in order (`frames`)."""

    def __init__(self, plan: Plan, pipe):
        check_curves(plan, pipe)
        spec = plan.spec
        self.plan, self.pipe = plan, pipe
        self.windows = plan_windows(plan.n_frames, spec.window, spec.overlap)
        self.weights = [torch.tensor(w, dtype=torch.float32).view(1, 1, -1, 1, 1) for w in blend_weights(self.windows)]
        self.prompt_weights = prompt_weights(spec, plan.n_frames) if plan.weights is None else plan.weights
        self.embeds = encode_prompts(pipe, spec.prompts)
        self.shape = latent_shape(pipe, 1)[1:]
        self.noise = (ClipNoise(spec.seed, self.shape, spec.window, shuffle_block(spec.window, spec.overlap))
                      if spec.noise == "shuffle" else ClipNoise(spec.seed, self.shape))

    def final(self, j: int) -> range:
        """The frames that are final once window j is done (no later window holds them)."""
        end = self.windows[j + 1][0] if j + 1 < len(self.windows) else self.windows[j][1]
        return range(self.windows[j][0], end)

    @torch.no_grad()
    def latents(self, j: int) -> torch.Tensor:
        """(1, C, F, h, w) window j's final latents: the stock pipeline call from the clip's noise of its frames,
        with the mappings' bends (one parameter per frame), output_type="latent"."""
        spec, p, pipe = self.plan.spec, self.plan, self.pipe
        s, e = self.windows[j]
        noise = self.noise.frames(s, e).to(pipe.device, pipe.unet.dtype)
        bends = frame_bends(spec, p.curves, list(range(s, e)), p.vectors)
        w = self.prompt_weights[s:e]
        first = int(w[0].argmax())
        with contextlib.ExitStack() as stack:
            if np.array_equal(w, np.eye(w.shape[1])[[first] * len(w)]):  # one prompt all along the window
                prompts = [spec.prompts[first]]
            else:  # interpolated: each frame's own mix, written over the pipeline's repeated first prompt
                prompts = [spec.prompts[int(k)] for k in w.argmax(1)]  # the prompt a frame's token:WORD is found in
                mixed = self.embeds.mix(torch.from_numpy(w)).pos
                stack.callback(pipe.unet.register_forward_pre_hook(_frame_prompts(pipe, mixed),
                                                                   with_kwargs=True).remove)
            return run_batch(pipe, bends, self.embeds.row(first), noise, steps=spec.steps, guidance=spec.guidance,
                             prompts=prompts, output_type="latent", seed=spec.seed + s)[None]

    def blend(self, j: int, latents: torch.Tensor, waiting: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Window j's latents added with their weights to what the windows before left for its first frames
        (`waiting`, float32, or None for the first window): (the latents of its `final` frames, the float32
        overlap left for window j + 1)."""
        acc = self.weights[j] * latents.float().cpu()
        if waiting is not None:
            acc[:, :, : waiting.shape[2]] = waiting + acc[:, :, : waiting.shape[2]]
        n = len(self.final(j))
        return acc[:, :, :n], acc[:, :, n:].clone()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, output_type: str = "pil", frames: range | None = None):
        """The frames of (1, C, F, h, w) latents, decoded as the stock AnimateDiff pipeline decodes a window (chunks
        of DECODE_CHUNK frames), the mappings' VAE bends installed with the parameters of `frames` (the clip's
        frame indices of these latents; default 0..F-1), each chunk with its frames' values."""
        pipe, p = self.pipe, self.plan
        frames = range(latents.shape[2]) if frames is None else frames
        latents = latents.to(pipe.device, pipe.unet.dtype)
        chunks = []
        for c in range(0, latents.shape[2], DECODE_CHUNK):
            idx = list(frames[c: c + DECODE_CHUNK])
            vae = [b for b in frame_bends(p.spec, p.curves, idx, p.vectors) if b.kind == "vae"]
            with contextlib.ExitStack() as stack:
                if vae:
                    install_vae(stack, pipe, vae, None)
                chunks.append(pipe.decode_latents(latents[:, :, c: c + len(idx)], DECODE_CHUNK))
        video = torch.cat(chunks, dim=2)
        return pipe.video_processor.postprocess_video(video=video, output_type=output_type)[0]

    # ------------------------------------------------------------------------------------------ in order
    def _saved_overlap(self, folder, j: int) -> torch.Tensor | None:
        """The overlap window j left, as the render folder keeps it (verified), or None."""
        data = folder.overlap(j) if folder is not None else None
        if data is None:
            return None
        try:
            a = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError:
            return None
        s, e = self.windows[j + 1][0], self.windows[j][1]
        return torch.from_numpy(a) if a.shape == (1, *self.shape[:1], e - s, *self.shape[1:]) else None

    def schedule(self, todo, folder=None) -> tuple[torch.Tensor | None, list[tuple[int, torch.Tensor | None]]]:
        """How `frames` goes through the windows for the frames `todo`: (the overlap it starts from, or None;
        [(window j, its saved overlap where window j is skipped, else None: rendered)]), from the first window with
        a frame of `todo` among its final ones to the last. With a render folder, start from the last overlap it
        saved before the first such window (what a killed render left; else from an earlier window, or the
        first), and skip a window with nothing to write whose overlap is saved. Reads the folder only: the windows
        to render are known before the first is (`video.processes` hands them to workers)."""
        todo = set(todo)
        need = [j for j in range(len(self.windows)) if todo.intersection(self.final(j))]
        if not need:
            return None, []
        wanted = set(need)
        j0, waiting = need[0], None
        while j0 > 0:
            waiting = self._saved_overlap(folder, j0 - 1)
            if waiting is not None:
                break
            j0 -= 1
        return waiting, [(j, None if j in wanted else self._saved_overlap(folder, j)) for j in range(j0, need[-1] + 1)]

    def frames(self, todo, folder=None, output_type: str = "pil", latents=None):
        """Yield (i, frame) for the frames final after each window, in order, going through the windows as
        `schedule` says, and with a render folder save each window's overlap once its final frames were yielded.
        latents(j): window j's latents, default `self.latents` (`video.processes`: computed on workers)."""
        waiting, steps = self.schedule(todo, folder)
        latents = latents or self.latents
        for j, saved in steps:
            if saved is not None:  # nothing to write from window j, and what it leaves is kept: skip it
                waiting = saved
                continue
            done, waiting = self.blend(j, latents(j), waiting)
            yield from zip(self.final(j), self.decode(done, output_type, self.final(j)))
            if folder is not None and j + 1 < len(self.windows):
                folder.write_overlap(j, npy_bytes(waiting))


def npy_bytes(x: torch.Tensor) -> bytes:
    """A CPU tensor as .npy bytes, its values exactly (what the render folder keeps of an overlap, what a worker
    process sends of a window's latents)."""
    buf = io.BytesIO()
    np.save(buf, x.numpy(), allow_pickle=False)
    return buf.getvalue()


def npy_tensor(data: bytes) -> torch.Tensor:
    """The tensor of `npy_bytes`."""
    return torch.from_numpy(np.load(io.BytesIO(data), allow_pickle=False))


def render_clip(plan: Plan, pipe, output_type: str = "pil") -> list:
    """Every frame of the plan on a video pipeline, window by window (one window: the stock pipeline call with
    the mappings' bends installed, each with one parameter per frame). Returns the frames in order (PIL
    images, or an (F, H, W, 3) array with output_type="np")."""
    frames = [f for _, f in WindowRenderer(plan, pipe).frames(range(plan.n_frames), None, output_type)]
    return np.stack(frames) if output_type == "np" else frames
