"""Train bendlab's shipped teaching model from scratch: `make model` (about an hour on this 2-core CPU).

Stages, all seeded: draw the procedural scenes (training/scenes.py), train the AutoencoderKL (64x64x3 ->
4x16x16), measure its latent scale, train the UNet2DConditionModel jointly with a small CLIPTextModel on the
cached latents (epsilon prediction, 10% empty captions for classifier-free guidance, EMA), then save a
StableDiffusionPipeline folder in float16 safetensors and render the model card's sample grid.

    python training/train.py --out bendlab/weights/bendlab-tiny-sd          # the full run
    python training/train.py --smoke --out /tmp/smoke                       # a few steps, for the tests
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

sys.path.insert(0, str(Path(__file__).parent))
import scenes  # noqa: E402
import tokenizer as clip_bpe  # noqa: E402

# DDIM exactly as SD v1.4 ships it
SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
                 prediction_type="epsilon", steps_offset=1, set_alpha_to_one=False, clip_sample=False)

# the paper's prompts: every one of them must render recognisably
PAPER_PROMPTS = ["a floating orb", "a gorgeous landscape", "3D mesh geometry", "mice", "a photo of a crane",
                 "bass", "cricket", "a match"]


def make_vae() -> AutoencoderKL:
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=64,
                         down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                         block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8)


def make_unet(cross_dim: int) -> UNet2DConditionModel:
    """3 levels (16x16, 8x8, 4x4), text cross-attention at 4x4 and in the mid block: the layout that keeps one
    50-step image with guidance under 1 s on one CPU thread (per-call cost is mostly per-module overhead at this
    size; attention at 8x8 too cost 25% more time, see the model card).

    addition_embed_type="text" (a UNet2DConditionModel option SD v1.x leaves off; DeepFloyd IF uses it) adds an
    attention-pooled summary of the prompt to the timestep embedding, so every ResNet block, the 16x16 ones
    included, sees the prompt. It costs ~2% of a UNet call and needs no extra pipeline input (it is computed from
    encoder_hidden_states). On its own it did not untie the background from the seed; offset noise did (see
    train_unet and the model card)."""
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64, 128),
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_dim, attention_head_dim=2, norm_num_groups=32,
        addition_embed_type="text", addition_embed_type_num_heads=4)


def make_text_encoder(hidden: int) -> CLIPTextModel:
    cfg = CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=4 * hidden, num_hidden_layers=3,
                         num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406,
                         eos_token_id=49407, pad_token_id=49407)
    return CLIPTextModel(cfg)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def train_vae(imgs: torch.Tensor, steps: int, batch: int, rng: torch.Generator) -> tuple[AutoencoderKL, float]:
    """Reconstruction (MSE + L1) with a small KL term; returns the VAE and its final reconstruction MSE."""
    vae = make_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    log(f"VAE: {sum(p.numel() for p in vae.parameters()) / 1e6:.2f}M parameters, {steps} steps of {batch}")
    ema_mse = None
    t0 = time.time()
    for step in range(steps):
        x = imgs[torch.randint(len(imgs), (batch,), generator=rng)]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            post = vae.encode(x).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=rng)
            rec = vae.decode(z).sample
        rec = rec.float()
        mse = F.mse_loss(rec, x)
        kl = post.kl().mean() / (4 * 16 * 16)
        loss = mse + 0.5 * F.l1_loss(rec, x) + 1e-3 * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ema_mse = mse.item() if ema_mse is None else 0.98 * ema_mse + 0.02 * mse.item()
        if step % 100 == 0 or step == steps - 1:
            el = time.time() - t0
            log(f"VAE step {step:5d}/{steps}  mse {ema_mse:.4f}  kl {kl.item():.3f}  "
                f"{el / (step + 1):.2f} s/step  eta {el / (step + 1) * (steps - step - 1) / 60:.1f} min")
    return vae.eval(), ema_mse


@torch.no_grad()
def encode_all(vae: AutoencoderKL, imgs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    means, stds = [], []
    for i in range(0, len(imgs), 256):
        d = vae.encode(imgs[i:i + 256]).latent_dist
        means.append(d.mean)
        stds.append(d.std)
    return torch.cat(means), torch.cat(stds)


def train_unet(mean, std, captions, tok, steps, batch, rng, scale, hidden, lr=5e-4, offset=0.1):
    """Joint UNet + text-encoder training on cached VAE posteriors; returns EMA copies and the final loss.
    offset: std of the per-image, per-channel constant added to the training noise ("offset noise", Guttenberg
    2023). SD v1.4's schedule leaves 0.068 of the image in x_T, and a 16x16 latent's channel means of pure noise
    vary by only 1/16: without the offset the model learns to read the background colour from the noise's means,
    so at sampling time the seed, not the prompt, picks it. Sampling is unchanged (plain Gaussian noise)."""
    unet, text = make_unet(hidden), make_text_encoder(hidden)
    # the 49,408-row token table stays at its seeded random init: only ~200 of its rows are ever used, and a dense
    # AdamW + EMA update of all 4.7M entries cost a third of each step; the transformer layers learn on top of it
    text.get_input_embeddings().requires_grad_(False)
    params = [p for p in (*unet.parameters(), *text.parameters()) if p.requires_grad]
    log(f"UNet: {sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M, text encoder: "
        f"{sum(p.numel() for p in text.parameters()) / 1e6:.2f}M parameters; {steps} steps of {batch}")
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2, foreach=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.03)
    noise_sched = DDIMScheduler(**SCHEDULER)
    ema_unet, ema_text = copy.deepcopy(unet).eval(), copy.deepcopy(text).eval()
    for m in (ema_unet, ema_text):
        m.requires_grad_(False)
    trained = {id(p) for p in params}
    ema_params = [pe for e, m in ((ema_unet, unet), (ema_text, text))
                  for pe, pm in zip(e.parameters(), m.parameters()) if id(pm) in trained]
    # tokenise every candidate caption once
    flat = sorted({c for caps in captions for c in caps} | {""})
    ids = tok(flat, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
    index = {c: i for i, c in enumerate(flat)}
    cap_idx = [[index[c] for c in caps] for caps in captions]
    gen = np.random.default_rng(int(torch.randint(2**31, (1,), generator=rng)))
    ema_loss, t0 = None, time.time()
    for step in range(steps):
        b = torch.randint(len(mean), (batch,), generator=rng)
        z = (mean[b] + std[b] * torch.randn(mean[b].shape, generator=rng)) * scale
        rows = [index[""] if gen.random() < 0.1 else cap_idx[i][gen.integers(len(cap_idx[i]))] for i in b.tolist()]
        noise = torch.randn(z.shape, generator=rng)
        if offset:
            noise = noise + offset * torch.randn(batch, z.shape[1], 1, 1, generator=rng)
        t = torch.randint(0, 1000, (batch,), generator=rng)
        zt = noise_sched.add_noise(z, noise, t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            enc = text(ids[rows])[0]
            pred = unet(zt, t, encoder_hidden_states=enc).sample
        loss = F.mse_loss(pred.float(), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - decay)
        ema_loss = loss.item() if ema_loss is None else 0.99 * ema_loss + 0.01 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            el = time.time() - t0
            log(f"UNet step {step:5d}/{steps}  loss {ema_loss:.4f}  {el / (step + 1):.2f} s/step  "
                f"eta {el / (step + 1) * (steps - step - 1) / 60:.1f} min")
    return ema_unet, ema_text, ema_loss


def sample_grid(pipe: StableDiffusionPipeline, path: Path, steps: int = 50) -> None:
    """The model card's grid: each paper prompt at seeds 46, 47, 48, 49 (rows), 50 DDIM steps, guidance 7.5."""
    from PIL import Image, ImageDraw
    cols = []
    for p in PAPER_PROMPTS:
        ims = [pipe(p, num_inference_steps=steps, guidance_scale=7.5,
                    generator=torch.Generator().manual_seed(s)).images[0] for s in (46, 47, 48, 49)]
        cols.append(ims)
    W = 128
    grid = Image.new("RGB", (W * len(cols), 16 + W * 4), "white")
    d = ImageDraw.Draw(grid)
    for j, (p, ims) in enumerate(zip(PAPER_PROMPTS, cols)):
        d.text((j * W + 3, 2), p[:21], fill="black")
        for i, im in enumerate(ims):
            grid.paste(im.resize((W, W), Image.NEAREST), (j * W, 16 + i * W))
    grid.save(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="model folder to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenes", type=int, default=16000, help="number of procedural scenes drawn")
    ap.add_argument("--vae-steps", type=int, default=1400)
    ap.add_argument("--unet-steps", type=int, default=9000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2,
                    help="torch threads (2 = both cores here; on a busy machine 1 is faster, see the model card)")
    ap.add_argument("--hidden", type=int, default=96, help="text encoder width = UNet cross-attention width")
    ap.add_argument("--lr", type=float, default=5e-4, help="peak learning rate of the UNet one-cycle schedule")
    ap.add_argument("--offset-noise", type=float, default=0.1, help="std of the per-channel noise offset (0: off)")
    ap.add_argument("--smoke", action="store_true", help="a few steps on a few scenes (tests)")
    ap.add_argument("--bpe", type=Path, help="bpe_simple_vocab_16e6.txt.gz already on disk (else pip download)")
    ap.add_argument("--tokenizer", type=Path, help="reuse this converted CLIPTokenizer folder (e.g. the shipped one)")
    a = ap.parse_args(argv)
    if a.smoke:
        a.scenes, a.vae_steps, a.unet_steps, a.batch = 64, 3, 3, 4
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = torch.Generator().manual_seed(a.seed)
    t_start = time.time()

    log(f"drawing {a.scenes} scenes")
    arr, captions, kinds = scenes.make_dataset(a.scenes, seed=a.seed)
    imgs = torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 127.5 - 1
    tok_dir = a.out / "tokenizer"
    if a.tokenizer:
        tok = CLIPTokenizer.from_pretrained(a.tokenizer)
        tok.save_pretrained(tok_dir)
    else:
        tok = clip_bpe.build(tok_dir, a.bpe.read_bytes() if a.bpe else None)

    vae, vae_mse = train_vae(imgs, a.vae_steps, 16 if not a.smoke else a.batch, rng)
    mean, std = encode_all(vae, imgs)
    scale = float(1.0 / mean.std())
    vae.register_to_config(scaling_factor=scale)
    log(f"latent std {mean.std():.3f} -> scaling_factor {scale:.4f}")

    unet, text, loss = train_unet(mean, std, captions, tok, a.unet_steps, a.batch, rng, scale, a.hidden,
                                  lr=a.lr, offset=a.offset_noise)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text, tokenizer=CLIPTokenizer.from_pretrained(tok_dir),
                                   unet=unet, scheduler=DDIMScheduler(**SCHEDULER), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    minutes = (time.time() - t_start) / 60
    pipe.to(torch.float16).save_pretrained(a.out, safe_serialization=True)
    # float16 on disk (half the size), but no dtype in the config: transformers would otherwise load the text
    # encoder as float16 beside a float32 UNet in a plain `StableDiffusionPipeline.from_pretrained(folder)`
    te_config = a.out / "text_encoder" / "config.json"
    te_config.write_text(json.dumps({**json.loads(te_config.read_text()), "dtype": "float32"}, indent=2) + "\n")
    stats = {"train_minutes": round(minutes, 1), "vae_recon_mse": round(vae_mse, 4), "unet_final_loss": round(loss, 4),
             "scaling_factor": round(scale, 4), "scenes": a.scenes, "vae_steps": a.vae_steps,
             "unet_steps": a.unet_steps, "batch": a.batch, "offset_noise": a.offset_noise, "seed": a.seed,
             "torch_threads": torch.get_num_threads()}
    (a.out / "training_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    log(f"saved {a.out}: {stats}")
    from bendlab.models.targets import write_table  # what `bendlab targets` prints, without building the modules
    log(f"wrote {write_table(a.out)}")
    if not a.smoke:
        pipe = StableDiffusionPipeline.from_pretrained(a.out, dtype=torch.float32)
        pipe.set_progress_bar_config(disable=True)
        sample_grid(pipe, a.out / "samples.png")
        log(f"wrote {a.out / 'samples.png'}")


if __name__ == "__main__":
    main()
