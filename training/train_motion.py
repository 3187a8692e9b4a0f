"""Train bendlab's shipped motion adapter from scratch: `make motion` (about 70 minutes on this 2-core CPU).

An AnimateDiff `MotionAdapter` for the shipped 64 px image model (bendlab/weights/bendlab-tiny-sd), trained the way
AnimateDiff trains its motion modules: the image model (VAE, text encoder, 2D UNet) is loaded from its folder and
frozen, the adapter's temporal transformers are inserted after every UNet layer (`UNetMotionModel.from_unet2d`) with
their output projections zeroed, so training starts from the image model exactly, and only they learn. Stages, all
seeded, the training stopped by a wall-clock budget (the steps reached are recorded):

1. draw the captioned clips (training/motion.py: 16 frames of 64x64), encode every frame once with the frozen VAE
   (posterior mean and std cached) and every caption once with the frozen text encoder;
2. train the motion modules on epsilon prediction with the shipped scheduler's training schedule (1000 steps,
   scaled linear betas): one timestep and independent Gaussian noise per frame for each clip, plus the per-clip,
   per-channel offset noise the image model was trained with; 10% of captions empty (classifier-free guidance);
   AdamW, warm-up then cosine learning rate over the budget, EMA;
3. save the adapter (`MotionAdapter.save_pretrained`, float16 safetensors like the image model), render the card's
   sample strip through diffusers' `AnimateDiffPipeline` (the shipped folder + the adapter) and measure the checks:
   the orb's travel and how much neighbouring frames agree, against 16 independent images of the image model.

    python training/train_motion.py --threads 2 --out bendlab/weights/bendlab-tiny-motion   # the full run
    python training/train_motion.py --smoke --out /tmp/motion-smoke                        # about 20 seconds
    python training/train_motion.py --measure bendlab/weights/bendlab-tiny-motion          # the checks again
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import motion  # noqa: E402
from loop import log, n_params, train_with_ema  # noqa: E402

MODEL = Path(__file__).resolve().parent.parent / "bendlab" / "weights" / "bendlab-tiny-sd"
SAMPLE_PROMPTS = ["a floating orb", "a gorgeous landscape", "3D mesh geometry", "mice"]
ORB = "a floating orb"  # the prompt whose travel is measured
SAMPLE_SEED = 46  # the paper's seed
DEFAULT_STEPS, DEFAULT_GUIDANCE = 50, 7.5  # the paper's DDIM steps and guidance (bendlab.paper)


# ---------------------------------------------------------------------------------------------- components
def load_image_model(model: Path = MODEL):
    """The shipped StableDiffusionPipeline, float32 on the CPU, no safety checker."""
    from diffusers import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained(model, dtype=torch.float32, use_safetensors=True,
                                                   safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def make_adapter(unet_config, heads: int = 4, max_frames: int = 32):
    """A MotionAdapter fitting the UNet (its block_out_channels and layers per block, GroupNorm groups), one temporal
    transformer per UNet layer, position embeddings for `max_frames` frames; every temporal transformer's output
    projection zeroed, as AnimateDiff initialises them, so the UNetMotionModel starts as the image model."""
    from diffusers import MotionAdapter
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D
    adapter = MotionAdapter(block_out_channels=tuple(unet_config.block_out_channels),
                            motion_layers_per_block=unet_config.layers_per_block,
                            motion_num_attention_heads=heads, motion_norm_num_groups=unet_config.norm_num_groups,
                            motion_max_seq_length=max_frames)
    for m in adapter.modules():
        if isinstance(m, AnimateDiffTransformer3D):
            torch.nn.init.zeros_(m.proj_out.weight)
            torch.nn.init.zeros_(m.proj_out.bias)
    return adapter


def motion_modules(unet_or_adapter) -> list[torch.nn.Module]:
    """The motion modules of a UNetMotionModel or a MotionAdapter, in the same order."""
    blocks = [*unet_or_adapter.down_blocks, *unet_or_adapter.up_blocks]
    mods = [b.motion_modules for b in blocks]
    mid = unet_or_adapter.mid_block
    mods.append(mid.motion_modules if hasattr(mid, "motion_modules") else mid)
    return mods


@torch.no_grad()
def encode_clips(vae, clips: np.ndarray, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every frame, (n, 4, frames, 16, 16) each (AnimateDiff's layout), float16."""
    n, f = clips.shape[:2]
    flat = clips.reshape(n * f, *clips.shape[2:])
    means, stds = [], []
    for i in range(0, len(flat), batch):
        x = torch.from_numpy(flat[i:i + batch]).permute(0, 3, 1, 2).float() / 127.5 - 1
        d = vae.encode(x).latent_dist
        means.append(d.mean.half())
        stds.append(d.std.half())

    def layout(t):
        t = torch.cat(t)
        return t.reshape(n, f, *t.shape[1:]).permute(0, 2, 1, 3, 4).contiguous()

    return layout(means), layout(stds)


# ------------------------------------------------------------------------------------------------- training
def per_frame(embeds: torch.Tensor, frames: int) -> torch.Tensor:
    """A clip's text embedding for each of its frames: UNetMotionModel takes (batch x frames, tokens, width), as
    AnimateDiffPipeline repeats them."""
    return embeds.repeat_interleave(frames, dim=0)


def train(unet, mean, std, captions, embeds, index, scale, minutes, batch, rng, *, lr, offset, max_steps=None,
          cfg_drop=0.1, ema_decay=0.995):
    """Train the motion modules of `unet` (a UNetMotionModel, its 2D weights frozen) on the cached latents; returns
    the EMA copies of the motion modules (a list, `motion_modules` order), the final loss and the steps reached."""
    from diffusers import DDPMScheduler
    noise_sched = DDPMScheduler.from_config(json.loads((MODEL / "scheduler" / "scheduler_config.json").read_text()))
    unet.freeze_unet2d_params()
    mods = motion_modules(unet)
    params = [p for m in mods for p in m.parameters()]
    assert all(p.requires_grad for p in params) and sum(p.requires_grad for p in unet.parameters()) == len(params)
    cap_idx = [[index[c] for c in caps] for caps in captions]
    gen = np.random.default_rng(int(torch.randint(2**31, (1,), generator=rng)))
    T = noise_sched.config.num_train_timesteps
    log(f"motion modules: {sum(p.numel() for p in params) / 1e6:.3f}M trainable of {n_params(unet):.2f}M; "
        f"batches of {batch} clips x {mean.shape[2]} frames, {minutes:g} min budget")

    def batch_loss():
        b = torch.randint(len(mean), (batch,), generator=rng)
        m, s = mean[b].float(), std[b].float()
        z = (m + s * torch.randn(m.shape, generator=rng)) * scale
        rows = [index[""] if gen.random() < cfg_drop else cap_idx[i][gen.integers(len(cap_idx[i]))]
                for i in b.tolist()]
        noise = torch.randn(z.shape, generator=rng)
        if offset:  # per clip and channel, the same in every frame: as the image model was trained
            noise = noise + offset * torch.randn(batch, z.shape[1], 1, 1, 1, generator=rng)
        t = torch.randint(0, T, (batch,), generator=rng)
        zt = noise_sched.add_noise(z, noise, t)
        # float32: bfloat16 autocast (train.py's choice for the 2D UNet) made a step 10x slower here (6 s against
        # 1 s for 2 clips on one thread of this CPU, which has no bf16 instructions)
        pred = unet(zt, t, encoder_hidden_states=per_frame(embeds[rows], zt.shape[2])).sample
        return F.mse_loss(pred, noise)

    unet.train()
    return train_with_ema(mods, batch_loss, lr=lr, minutes=minutes, max_steps=max_steps, ema_decay=ema_decay)


@torch.no_grad()
def image_loss(unet, mean, std, embeds, rows, scale, seed: int = 0, offset: float = 0.1) -> float:
    """The epsilon loss of `unet` on fixed clips, noises and timesteps (seeded): the same number for a
    UNetMotionModel at its zero-initialised start and for the trained one tells what the motion modules bought."""
    from diffusers import DDPMScheduler
    noise_sched = DDPMScheduler.from_config(json.loads((MODEL / "scheduler" / "scheduler_config.json").read_text()))
    g = torch.Generator().manual_seed(seed)
    z = (mean.float() + std.float() * torch.randn(mean.shape, generator=g)) * scale
    noise = torch.randn(z.shape, generator=g) + offset * torch.randn(len(z), z.shape[1], 1, 1, 1, generator=g)
    t = torch.randint(0, 1000, (len(z),), generator=g)
    losses = []
    for i in range(len(z)):
        zt = noise_sched.add_noise(z[i:i + 1], noise[i:i + 1], t[i:i + 1])
        pred = unet(zt, t[i:i + 1], encoder_hidden_states=per_frame(embeds[rows[i]][None], zt.shape[2])).sample
        losses.append(F.mse_loss(pred, noise[i:i + 1]).item())
    return float(np.mean(losses))


# ----------------------------------------------------------------------------------------- samples, checks
def load_animatediff(adapter_dir: Path, model: Path = MODEL):
    """diffusers' AnimateDiffPipeline from the shipped folder and the adapter folder, float32, DDIM (as
    bendlab.models.load_pipeline builds it)."""
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter
    adapter = MotionAdapter.from_pretrained(adapter_dir, dtype=torch.float32, use_safetensors=True)
    pipe = AnimateDiffPipeline.from_pretrained(model, motion_adapter=adapter, dtype=torch.float32,
                                               use_safetensors=True)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def video(pipe, prompt: str, seed: int, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
          frames: int = motion.FRAMES) -> np.ndarray:
    """One AnimateDiff clip: uint8 (frames, 64, 64, 3)."""
    out = pipe(prompt, num_frames=frames, num_inference_steps=steps, guidance_scale=guidance,
               generator=torch.Generator().manual_seed(seed), output_type="np").frames[0]
    return (np.asarray(out) * 255).round().clip(0, 255).astype(np.uint8)


def independent(pipe, prompt: str, seed: int, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
                frames: int = motion.FRAMES) -> np.ndarray:
    """`frames` independent images of the image model (the paper's method A without a bend: a new noise per frame),
    all drawn from one generator seeded `seed`: uint8 (frames, 64, 64, 3)."""
    out = pipe(prompt, num_images_per_prompt=frames, num_inference_steps=steps, guidance_scale=guidance,
               generator=torch.Generator().manual_seed(seed), output_type="np").images
    return (np.asarray(out) * 255).round().clip(0, 255).astype(np.uint8)


def blob_centroids(frames: np.ndarray, top: float = 0.06) -> np.ndarray:
    """Where the orb is in each frame, (frames, 2) as (x, y) pixels: the centroid of the `top` fraction of pixels
    scoring highest, weighted by the score. The score is a pixel's colour distance from its row's background (the
    median colour of the 4 pixels at each end of the row: the scenes' backgrounds are vertical gradients), times
    (0.3 + its saturation) so a coloured orb outweighs a white moon, with a 3x3 grey opening that removes stars and
    thin lines."""
    from scipy.ndimage import grey_opening
    x = frames.astype(np.float32)
    edges = np.concatenate([x[:, :, :4], x[:, :, -4:]], axis=2)
    bg = np.median(edges, axis=2, keepdims=True)
    mx, mn = x.max(-1), x.min(-1)
    sat = (mx - mn) / np.maximum(mx, 1.0)
    score = np.linalg.norm(x - bg, axis=-1) * (0.3 + sat)  # (frames, H, W)
    out = []
    ys, xs = np.mgrid[:score.shape[1], :score.shape[2]]
    for sc in score:
        sc = grey_opening(sc, size=(3, 3))
        thr = np.quantile(sc, 1 - top)
        w = np.where(sc >= thr, sc, 0.0) + 1e-9
        out.append(((w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()))
    return np.array(out)


def travel(frames: np.ndarray) -> dict:
    """The orb's path in pixels (`blob_centroids`): "net" from the first frame to the last, "max" the farthest it
    gets from the first, "fit" the length of the least-squares straight line through the 16 positions over the clip,
    and "jitter" the RMS distance of the positions from that line (smooth motion: small; a new image every frame:
    as large as the travel)."""
    c = blob_centroids(frames)
    d = np.linalg.norm(c - c[0], axis=1)
    t = np.arange(len(c), dtype=np.float64)
    A = np.stack([t, np.ones_like(t)], 1)
    coef, *_ = np.linalg.lstsq(A, c, rcond=None)
    resid = c - A @ coef
    return {"net": float(d[-1]), "max": float(d.max()), "fit": float(np.linalg.norm(coef[0]) * (len(c) - 1)),
            "jitter": float(np.sqrt((resid ** 2).sum(1).mean()))}


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 RGB images on their luma (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01,
    K2 0.03, levels 0-255)."""
    from scipy.ndimage import gaussian_filter
    w = np.array([0.299, 0.587, 0.114], np.float64)
    x, y = a.astype(np.float64) @ w, b.astype(np.float64) @ w
    f = lambda v: gaussian_filter(v, 1.5, truncate=3.5)  # noqa: E731
    mx, my = f(x), f(y)
    sxx, syy, sxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (sxx + syy + c2))).mean())


def neighbours(frames: np.ndarray) -> dict:
    """How much consecutive frames agree: mean absolute difference (0-255 levels) and mean SSIM over the pairs."""
    pairs = list(zip(frames[:-1], frames[1:]))
    return {"mad": float(np.mean([np.abs(a.astype(np.float32) - b).mean() for a, b in pairs])),
            "ssim": float(np.mean([ssim(a, b) for a, b in pairs]))}


def measure(adapter_dir: Path, seeds, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE,
            prompts=SAMPLE_PROMPTS) -> dict:
    """The card's checks: the orb's travel in AnimateDiff clips of ORB at every seed, and neighbour agreement of
    AnimateDiff clips against 16 independent images of the image model, for ORB at every seed and for the other
    prompts at the first half of the seeds (a 50-step clip with guidance takes about 25 s here)."""
    ad, sd = load_animatediff(adapter_dir), load_image_model()
    rows = []
    t0 = time.time()
    for p in prompts:
        these = seeds if p == ORB else seeds[:max(1, len(seeds) // 2)]
        for s in these:
            v, ind = video(ad, p, s, steps, guidance), independent(sd, p, s, steps, guidance)
            r = {"prompt": p, "seed": s, "animatediff": neighbours(v), "independent": neighbours(ind)}
            if p == ORB:
                r["travel_px"] = travel(v)
                r["independent_travel_px"] = travel(ind)
            rows.append(r)
        log(f"measured {p!r} at {len(these)} seeds ({time.time() - t0:.0f} s)")

    def agg(key, sub, ps=prompts):
        vals = [r[key][sub] for r in rows if r["prompt"] in ps]
        return {"median": round(float(np.median(vals)), 3), "min": round(float(np.min(vals)), 3),
                "max": round(float(np.max(vals)), 3)}

    summary = {f"orb_{m}_px{sfx}": agg(key, m, [ORB]) for key, sfx in (("travel_px", ""),
                                                                        ("independent_travel_px", "_independent"))
               for m in ("net", "max", "fit", "jitter")}
    for p in prompts:
        summary[p] = {f"{k}_{m}": agg(k, m, [p]) for k in ("animatediff", "independent") for m in ("mad", "ssim")}
        pr = [r for r in rows if r["prompt"] == p]
        summary[p]["seeds"] = len(pr)
        summary[p]["seeds_where_animatediff_agrees_more"] = sum(
            r["animatediff"]["mad"] < r["independent"]["mad"] and r["animatediff"]["ssim"] > r["independent"]["ssim"]
            for r in pr)
    for r in rows:
        for k in ("animatediff", "independent", "travel_px", "independent_travel_px"):
            if k in r:
                r[k] = {m: round(v, 3) for m, v in r[k].items()}
    return {"steps": steps, "guidance": guidance, "frames": motion.FRAMES, "seeds": list(seeds),
            "command": None, "summary": summary, "per_seed": rows}


def data_reference(clips: np.ndarray, kinds: list[str], n: int = 32) -> dict:
    """The same measurements on the training clips themselves (the first `n` of each kind): what real motion of
    these kinds reads as; for orbs the measured travel against the drawn one is the check of `travel`."""
    out = {}
    for k in motion.KINDS:
        sel = [i for i, kk in enumerate(kinds) if kk == k][:n]
        nb = [neighbours(clips[i]) for i in sel]
        out[k] = {"clips": len(sel), "mad": round(float(np.mean([x["mad"] for x in nb])), 3),
                  "ssim": round(float(np.mean([x["ssim"] for x in nb])), 3)}
        if k == "orb":
            tr = [travel(clips[i]) for i in sel]
            for m in ("net", "fit", "jitter"):
                out[k][f"travel_{m}_px_median"] = round(float(np.median([x[m] for x in tr])), 2)
            out[k]["travel_fit_px_min"] = round(float(np.min([x["fit"] for x in tr])), 2)
    return out


def sample_strip(adapter_dir: Path, path: Path, seed: int = SAMPLE_SEED, steps: int = DEFAULT_STEPS,
                 guidance: float = DEFAULT_GUIDANCE) -> None:
    """The card's figure: one row of 16 AnimateDiff frames per prompt of SAMPLE_PROMPTS at `seed`, and a last row of
    16 independent images of "a floating orb" (the image model alone, for comparison), each frame at 2x."""
    from PIL import Image, ImageDraw
    ad, sd = load_animatediff(adapter_dir), load_image_model()
    rows = [(f'"{p}"  AnimateDiff, frames 0-15', video(ad, p, seed, steps, guidance)) for p in SAMPLE_PROMPTS]
    rows.append((f'"{ORB}"  16 independent images of the image model (no adapter)',
                 independent(sd, ORB, seed, steps, guidance)))
    W, H = 128, 14
    strip = Image.new("RGB", (W * motion.FRAMES, len(rows) * (W + H)), "white")
    d = ImageDraw.Draw(strip)
    for i, (label, frames) in enumerate(rows):
        d.text((3, i * (W + H) + 1), f"{label}   (seed {seed}, {steps} DDIM steps, guidance {guidance:g})",
               fill="black")
        for j, f in enumerate(frames):
            strip.paste(Image.fromarray(f).resize((W, W), Image.NEAREST), (j * W, i * (W + H) + H))
    strip.save(path)


# ---------------------------------------------------------------------------------------------------- main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="adapter folder to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--clips", type=int, default=1200, help="captioned clips drawn (and encoded)")
    ap.add_argument("--minutes", type=float, default=55.0, help="wall-clock budget of the training loop")
    ap.add_argument("--batch", type=int, default=2, help="clips per step (each of 16 frames)")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    ap.add_argument("--heads", type=int, default=4, help="attention heads of the temporal transformers")
    ap.add_argument("--max-frames", type=int, default=32, help="motion_max_seq_length: the longest window")
    ap.add_argument("--init", type=Path, help="start from this trained MotionAdapter folder instead of zero")
    ap.add_argument("--offset-noise", type=float, default=0.1, help="std of the per-clip, per-channel noise offset")
    ap.add_argument("--smoke", action="store_true", help="a few steps end to end into --out (tests)")
    ap.add_argument("--measure", type=Path, help="measure the checks of this saved adapter and stop")
    ap.add_argument("--seeds", type=int, default=8, help="seeds of the checks")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="sampling steps of the samples and checks")
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="guidance of the samples and checks")
    ap.add_argument("--checks-out", type=Path, help="with --measure: write here instead of <adapter>/checks.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    command = "python training/train_motion.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.measure:
        res = measure(a.measure, list(range(a.seeds)), a.steps, a.guidance)
        res["command"] = command
        path = a.checks_out or a.measure / "checks.json"
        path.write_text(json.dumps(res, indent=1) + "\n")
        log(f"wrote {path}")
        return
    if a.out is None:
        ap.error("--out is required (or --measure)")
    max_steps = None
    if a.smoke:
        a.clips, max_steps = 8, 3
    torch.manual_seed(a.seed)
    rng = torch.Generator().manual_seed(a.seed)
    t_start = time.time()
    from diffusers import UNetMotionModel

    pipe = load_image_model()
    for m in (pipe.vae, pipe.text_encoder, pipe.unet):
        m.requires_grad_(False).eval()
    shipped_dtype = str(next(iter(__import__("safetensors.torch", fromlist=["load_file"]).load_file(
        MODEL / "unet" / "diffusion_pytorch_model.safetensors").values())).dtype)
    log(f"drawing {a.clips} clips of {motion.FRAMES} frames")
    clips, captions, kinds = motion.make_dataset(a.clips, seed=a.seed)
    t_data = time.time() - t_start
    mean, std = encode_clips(pipe.vae, clips)
    scale = pipe.vae.config.scaling_factor
    flat = sorted({c for caps in captions for c in caps} | {""})
    with torch.no_grad():
        ids = pipe.tokenizer(flat, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                             truncation=True, return_tensors="pt").input_ids
        embeds = pipe.text_encoder(ids)[0]
    index = {c: i for i, c in enumerate(flat)}
    log(f"data {t_data:.0f} s, encoded {clips.shape[0] * clips.shape[1]} frames and {len(flat)} captions "
        f"in {time.time() - t_start - t_data:.0f} s; latents {tuple(mean.shape)} float16 "
        f"({2 * mean.numel() * 2 / 2**20:.0f} MiB with the stds)")

    adapter = make_adapter(pipe.unet.config, a.heads, a.max_frames)
    if a.init:  # go on from a trained adapter (its motion modules), not from zero
        from diffusers import MotionAdapter
        adapter.load_state_dict(MotionAdapter.from_pretrained(a.init, dtype=torch.float32,
                                                              use_safetensors=True).state_dict())
        log(f"motion modules from {a.init}")
    unet = UNetMotionModel.from_unet2d(pipe.unet, adapter)
    # UNetMotionModel builds an addition embedding only for SDXL's "text_time": the shipped UNet's "text" one
    # (an attention-pooled prompt added to the timestep embedding) is left out of the UNet AnimateDiffPipeline runs.
    # The motion modules are trained in that UNet, the one they will run in
    dropped = [f"add_embedding ({pipe.unet.config.addition_embed_type})"] if (
        hasattr(pipe.unet, "add_embedding") and getattr(pipe.unet, "add_embedding", None) is not None
        and getattr(unet, "add_embedding", None) is None) else []
    if dropped:
        log(f"note: UNetMotionModel leaves out the image UNet's {dropped[0]}: trained without it, as it runs")
    held = [i for i in range(0, len(mean), max(1, len(mean) // 16))][:16]
    held_rows = [index[captions[i][0]] for i in held]
    loss0 = image_loss(unet, mean[held], std[held], embeds, held_rows, scale, offset=a.offset_noise)
    log(f"fixed-batch loss at the start (motion modules zero): {loss0:.4f}")
    emas, loss, steps = train(unet, mean, std, captions, embeds, index, scale, a.minutes, a.batch, rng,
                              lr=a.lr, offset=a.offset_noise, max_steps=max_steps)
    for src, dst in zip(emas, motion_modules(adapter)):
        dst.load_state_dict(src.state_dict())
    for src, dst in zip(emas, motion_modules(unet)):
        dst.load_state_dict(src.state_dict())
    unet.eval()
    loss1 = image_loss(unet, mean[held], std[held], embeds, held_rows, scale, offset=a.offset_noise)
    log(f"fixed-batch loss after training (EMA): {loss1:.4f}")
    minutes = (time.time() - t_start) / 60
    a.out.mkdir(parents=True, exist_ok=True)
    save_dtype = torch.float16 if shipped_dtype == "torch.float16" else torch.float32
    adapter.to(save_dtype).save_pretrained(a.out, safe_serialization=True)
    size = sum(f.stat().st_size for f in a.out.glob("*.safetensors"))
    counts = {k: kinds.count(k) for k in motion.KINDS}
    stats = {"train_minutes": round(minutes, 1), "seed": a.seed, "init": str(a.init) if a.init else None,
             "torch_threads": torch.get_num_threads(),
             "clips": a.clips, "frames": motion.FRAMES, "clips_per_kind": counts, "captions": len(flat) - 1,
             "data_seconds": round(t_data, 1), "budget_minutes": a.minutes, "steps": steps, "batch_clips": a.batch,
             "lr": a.lr, "offset_noise": a.offset_noise, "cfg_drop": 0.1, "ema_decay": 0.995,
             "final_loss_ema": round(loss, 4), "fixed_batch_loss_start": round(loss0, 4),
             "fixed_batch_loss_end": round(loss1, 4), "heads": a.heads, "max_frames": a.max_frames,
             "adapter_parameters": sum(p.numel() for p in adapter.parameters()), "weights_dtype": str(save_dtype),
             "weights_bytes": size, "image_model": "bendlab-tiny-sd", "dropped_unet_options": dropped,
             "data_reference": data_reference(clips, kinds)}
    (a.out / "training_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    log(f"saved {a.out}: {stats}")
    if a.smoke:
        return
    sample_strip(a.out, a.out / "samples.png", steps=a.steps, guidance=a.guidance)
    log(f"wrote {a.out / 'samples.png'} ({(time.time() - t_start) / 60:.1f} min)")
    res = measure(a.out, list(range(a.seeds)), a.steps, a.guidance)
    res["command"] = command
    (a.out / "checks.json").write_text(json.dumps(res, indent=1) + "\n")
    log(f"wrote {a.out / 'checks.json'}: {json.dumps(res['summary'])} ({(time.time() - t_start) / 60:.1f} min total)")


if __name__ == "__main__":
    main()
