"""Train bendlab's shipped music model from scratch: `make music-model` (about 50 minutes on this 2-core CPU).

A small model of Stable Audio's architecture (diffusers' `StableAudioPipeline`): `AutoencoderOobleck` VAE,
`StableAudioDiTModel`, `StableAudioProjectionModel`, a small `T5EncoderModel` over a word-level T5 tokenizer,
`CosineDPMSolverMultistepScheduler` as Stable Audio Open uses it. Stages, all seeded, the two training phases
stopped by wall-clock budgets (the steps reached are recorded):

1. synthesise the captioned clips (training/music.py, bendlab.audio.synth): 8 kHz mono, 2.048 s;
2. train the VAE on random 0.256 s crops: multi-resolution STFT loss + L1 on the waveform + a small KL;
3. fold a scale into the VAE so its latents have unit variance (the pipeline decodes latents as they are), then
   encode every clip once (posterior mean and std cached);
4. train the DiT jointly with the T5 encoder and the projection model on the cached latents, with exactly the
   scheduler's preconditioning (v-prediction, sigma_data 1, sigma in its sampling range [sigma_min, sigma_max]),
   10% of the captions dropped to the pipeline's unconditional input (zeros), EMA;
5. save a StableAudioPipeline folder in float16 safetensors, render the model card's samples.

    python training/train_music.py --threads 2 --out bendlab/weights/bendlab-tiny-music   # the full run
    python training/train_music.py --smoke --out /tmp/music-smoke                          # 2-3 minutes
    python training/train_music.py --measure bendlab/weights/bendlab-tiny-music            # the prompt checks
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import music  # noqa: E402
from loop import cosine_lr, log, n_params, train_with_ema  # noqa: E402

LATENT = 16  # latent channels: 4 groups of 4 for bendlab's channel operators
RATIOS = [4, 4, 8]  # Oobleck downsampling: hop 128 (music.HOP)
# Stable Audio Open's sampler
SCHEDULER = dict(sigma_min=0.3, sigma_max=500, sigma_data=1.0, sigma_schedule="exponential", solver_order=2,
                 prediction_type="v_prediction", num_train_timesteps=1000, rho=7.0, solver_type="midpoint",
                 lower_order_final=True, euler_at_final=False, final_sigmas_type="zero")
MAX_SECONDS_CONDITIONING = 3  # the projection model's max_value (s): above the clip length, an integer as SA's
SAMPLE_PROMPTS = ["a high bell", "a low bass drone", "a fast drum loop", "a sustained pad", "a piano note in A",
                  "a slow piano phrase in C major", "a fast drum loop with a bass line in E minor",
                  "a piano chord in G major"]
SCALE_CLIPS = 64  # clips the latent scale is measured on
DEFAULT_STEPS, DEFAULT_GUIDANCE = 50, 7.0  # what the card's samples and checks use unless told


# ---------------------------------------------------------------------------------------------- components
def make_vae(decoder_channels: int = 24):
    from diffusers import AutoencoderOobleck
    return AutoencoderOobleck(encoder_hidden_size=2 * LATENT, downsampling_ratios=RATIOS, channel_multiples=[1, 2, 4],
                              decoder_channels=decoder_channels, decoder_input_channels=LATENT, audio_channels=1,
                              sampling_rate=music.SR)


def make_text_encoder(vocab: int, dim: int):
    from transformers import T5Config, T5EncoderModel
    return T5EncoderModel(T5Config(vocab_size=vocab, d_model=dim, d_kv=dim // 4, d_ff=2 * dim, num_layers=3,
                                   num_heads=4, dropout_rate=0.0, decoder_start_token_id=0, pad_token_id=0,
                                   eos_token_id=1))


def make_projection(dim: int):
    from diffusers import StableAudioProjectionModel
    return StableAudioProjectionModel(text_encoder_dim=dim, conditioning_dim=dim, min_value=0,
                                      max_value=MAX_SECONDS_CONDITIONING)


def make_dit(dim: int, width: int, layers: int, heads: int = 4):
    from diffusers import StableAudioDiTModel
    return StableAudioDiTModel(sample_size=music.FRAMES, in_channels=LATENT, num_layers=layers,
                               attention_head_dim=width // heads, num_attention_heads=heads,
                               num_key_value_attention_heads=heads // 2, out_channels=LATENT,
                               cross_attention_dim=dim, time_proj_dim=64, global_states_input_dim=2 * dim,
                               cross_attention_input_dim=dim)


def make_scheduler():
    from diffusers import CosineDPMSolverMultistepScheduler
    return CosineDPMSolverMultistepScheduler(**SCHEDULER)


# ------------------------------------------------------------------------------------------------------- VAE
STFT_SIZES = (32, 64, 128, 256, 512, 1024)  # samples: 4 ms to 128 ms at 8 kHz
LOG_EPS = 1e-3  # magnitude floor of the log-magnitude term (per sample of window): about 80 dB below a full tone


def mrstft(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT loss (Yamamoto et al. 2020, as auraloss/DAC): spectral convergence + L1 of log
    magnitudes, averaged over STFT_SIZES (hop = size / 4, Hann window). x, y: (B, T)."""
    total = 0.0
    for n in STFT_SIZES:
        w = torch.hann_window(n, device=x.device)
        X = torch.stft(x, n, n // 4, window=w, return_complex=True).abs()
        Y = torch.stft(y, n, n // 4, window=w, return_complex=True).abs()
        sc = torch.linalg.vector_norm(X - Y) / (torch.linalg.vector_norm(Y) + 1e-7)
        eps = LOG_EPS * n
        total = total + sc + (torch.log(X + eps) - torch.log(Y + eps)).abs().mean()
    return total / len(STFT_SIZES)


def train_vae(audio: np.ndarray, minutes: float, batch: int, crop: int, rng: torch.Generator, kl_weight: float,
              lr: float, max_steps: int | None = None):
    """Reconstruction training on random crops until `minutes` of wall clock have passed; returns the VAE and
    its final losses (EMAs of the batch values)."""
    vae = make_vae()
    with torch.no_grad():
        vae.encoder.conv2.bias[LATENT:] = -5.0  # posterior std starts at softplus(-5) = 0.007, not 0.69
        for m in vae.modules():  # residual branches start near zero: each residual unit starts as the identity
            if type(m).__name__ == "OobleckResidualUnit":
                m.conv2.weight_g.mul_(1e-3)
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, betas=(0.8, 0.99), weight_decay=0.0)
    log(f"VAE: {n_params(vae):.2f}M parameters, batches of {batch} crops of {crop} samples, {minutes:g} min budget")
    data = torch.from_numpy(audio)
    ema = {}
    t0, step, budget = time.time(), 0, minutes * 60
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1 or (max_steps is not None and step >= max_steps):
            break
        for g in opt.param_groups:
            g["lr"] = cosine_lr(lr, step, frac, warmup=50)
        i = torch.randint(len(data), (batch,), generator=rng)
        s = torch.randint(data.shape[1] - crop + 1, (batch,), generator=rng)
        x = torch.stack([data[a, b:b + crop] for a, b in zip(i.tolist(), s.tolist())])[:, None]
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=rng)
        rec = vae.decode(z).sample
        stft = mrstft(rec[:, 0], x[:, 0])
        l1 = F.l1_loss(rec, x)
        kl = post.kl()
        loss = stft + l1 + kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        for k, v in (("stft", stft), ("l1", l1), ("kl", kl)):
            ema[k] = v.item() if k not in ema else 0.98 * ema[k] + 0.02 * v.item()
        if step % 50 == 0:
            el = time.time() - t0
            log(f"VAE step {step:5d}  mrstft {ema['stft']:.3f}  l1 {ema['l1']:.4f}  kl {ema['kl']:.2f}  "
                f"{el / (step + 1):.2f} s/step  {el / 60:.1f}/{minutes:g} min")
        step += 1
    log(f"VAE done: {step} steps in {(time.time() - t0) / 60:.1f} min")
    return vae.eval(), {k: round(v, 4) for k, v in ema.items()}, step


@torch.no_grad()
def encode_all(vae, audio: np.ndarray, batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior means and stds, (n, LATENT, FRAMES) each."""
    means, stds = [], []
    for i in range(0, len(audio), batch):
        d = vae.encode(torch.from_numpy(audio[i:i + batch])[:, None]).latent_dist
        means.append(d.mean)
        stds.append(d.std)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def fold_latent_scale(vae, c: float) -> None:
    """Make the VAE's latent 1/c times its trained one, exactly for the posterior mean and the decoder: the
    encoder's last conv (its mean rows) is divided by c, the decoder's first conv multiplied by c (both weight-
    normed: only their g changes). The posterior std passes through softplus, so its rows get a bias of -ln c:
    exact for small stds (softplus(x) ~ e^x), which they are after training (see the training log)."""
    conv = vae.encoder.conv2
    conv.weight_g[:LATENT] /= c
    conv.bias[:LATENT] /= c
    conv.bias[LATENT:] -= math.log(c)
    vae.decoder.conv1.weight_g *= c


# ------------------------------------------------------------------------------------------------------- DiT
def conditioning(text, projection, ids, mask, seconds_end, drop):
    """Exactly what StableAudioPipeline feeds the DiT: T5 states of the padded prompt (padding zeroed by the
    attention mask) through the projection, followed by the seconds-start and seconds-end embeddings
    (cross-attention states); the two seconds embeddings side by side (the global state). `drop` (B,) bool:
    those rows' cross-attention states are all zeros, the pipeline's unconditional input for guidance."""
    states = text(ids, attention_mask=mask)[0]
    out = projection(text_hidden_states=states, start_seconds=torch.zeros(len(ids)), end_seconds=seconds_end)
    txt = out.text_hidden_states * mask[..., None].to(states.dtype)
    cross = torch.cat([txt, out.seconds_start_hidden_states, out.seconds_end_hidden_states], dim=1)
    cross = torch.where(drop[:, None, None], torch.zeros_like(cross), cross)
    glob = torch.cat([out.seconds_start_hidden_states, out.seconds_end_hidden_states], dim=2)
    return cross, glob


def train_dit(mean, std, ds: music.Dataset, tok, minutes, batch, rng, *, dim, width, layers, lr,
              max_steps=None, cfg_drop=0.1, ema_decay=0.995):
    """Joint DiT + T5 + projection training on cached VAE posteriors with the scheduler's own preconditioning:
    sigma = tan(pi/2 u) with u uniform between the sampler's ends (atan(sigma_min), atan(sigma_max)) x 2/pi,
    the DiT sees c_in x (z + sigma n) = (z + sigma n) / sqrt(sigma^2 + 1) at timestep atan(sigma) x 2/pi and
    predicts v = (n - sigma z) / sqrt(sigma^2 + 1), which the scheduler's precondition_outputs turns back into z
    (c_skip x + c_out v). Returns the EMA copies and the final loss."""
    from diffusers.models.embeddings import get_1d_rotary_pos_embed
    sched = make_scheduler()
    text, projection = make_text_encoder(len(tok), dim), make_projection(dim)
    dit = make_dit(dim, width, layers)
    mods = [dit, text, projection]
    log(f"DiT {n_params(dit):.2f}M, T5 {n_params(text):.2f}M, projection {n_params(projection):.2f}M parameters; "
        f"batches of {batch}, {minutes:g} min budget")
    # tokenise every candidate caption once
    flat = sorted({c for caps in ds.captions for c in caps})
    enc = tok(flat, padding="max_length", max_length=music.MAX_TOKENS, truncation=True, return_tensors="pt")
    index = {c: i for i, c in enumerate(flat)}
    cap_idx = [[index[c] for c in caps] for caps in ds.captions]
    ends = torch.tensor(ds.seconds_end, dtype=torch.float32)
    rotary = get_1d_rotary_pos_embed(dit.config.attention_head_dim // 2, music.FRAMES + 1, use_real=True,
                                     repeat_interleave_real=False)
    u_lo, u_hi = (float(sched.precondition_noise(s)) for s in (SCHEDULER["sigma_min"], SCHEDULER["sigma_max"]))
    gen = np.random.default_rng(int(torch.randint(2**31, (1,), generator=rng)))

    def batch_loss():
        b = torch.randint(len(mean), (batch,), generator=rng)
        z = mean[b] + std[b] * torch.randn(mean[b].shape, generator=rng)
        rows = [cap_idx[i][gen.integers(len(cap_idx[i]))] for i in b.tolist()]
        drop = torch.from_numpy(gen.random(batch) < cfg_drop)
        u = u_lo + (u_hi - u_lo) * torch.rand(batch, generator=rng)
        sigma = torch.tan(u * math.pi / 2)[:, None, None]
        noise = torch.randn(z.shape, generator=rng)
        x_in = (z + sigma * noise) / torch.sqrt(sigma ** 2 + 1)  # precondition_inputs
        target = (noise - sigma * z) / torch.sqrt(sigma ** 2 + 1)  # v
        cross, glob = conditioning(text, projection, enc.input_ids[rows], enc.attention_mask[rows], ends[b], drop)
        pred = dit(x_in, u, encoder_hidden_states=cross, global_hidden_states=glob, rotary_embedding=rotary).sample
        return F.mse_loss(pred, target)

    for m in mods:
        m.train()
    emas, ema_loss, step = train_with_ema(mods, batch_loss, lr=lr, minutes=minutes, max_steps=max_steps,
                                          ema_decay=ema_decay, name="DiT ")
    return (*emas, ema_loss, step)


# ------------------------------------------------------------------------------------------ saving, samples
def save_pipeline(pipe, out: Path) -> None:
    """float16 safetensors on disk (half the size); the text encoder's config says float32 so a plain
    from_pretrained loads every component as float32 on the CPU."""
    pipe.to(torch.float16).save_pretrained(out, safe_serialization=True)
    pipe.to(torch.float32)
    cfg = out / "text_encoder" / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "dtype": "float32"}, indent=2) + "\n")


def load_pipeline(folder: Path):
    from diffusers import StableAudioPipeline
    pipe = StableAudioPipeline.from_pretrained(folder, use_safetensors=True, torch_dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompt: str, seed: int, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE):
    """One clip (float32 mono at the model's rate) for `prompt` at `seed`."""
    out = pipe(prompt, num_inference_steps=steps, guidance_scale=guidance,
               generator=torch.Generator().manual_seed(seed)).audios
    return out[0, 0].float().numpy()


def write_samples(pipe, out: Path, seed: int = 0, steps: int = DEFAULT_STEPS,
                  guidance: float = DEFAULT_GUIDANCE) -> None:
    """The card's figure (one log-spectrogram per prompt of SAMPLE_PROMPTS at `seed`) and the clips as WAVs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import soundfile as sf
    (out / "samples").mkdir(exist_ok=True)
    sr = pipe.vae.config.sampling_rate
    fig, axes = plt.subplots(2, 4, figsize=(14, 5.5), constrained_layout=True)
    for ax, p in zip(axes.flat, SAMPLE_PROMPTS):
        y = generate(pipe, p, seed, steps, guidance)
        sf.write(out / "samples" / (p.replace(" ", "_") + ".wav"), y, sr, subtype="PCM_16")
        ax.specgram(y + 1e-7, NFFT=256, Fs=sr, noverlap=192, cmap="magma", vmin=-120)
        ax.set_title(f'"{p}"', fontsize=9)
        ax.set_xlabel("s")
        ax.set_ylabel("Hz")
    fig.suptitle(f"bendlab-tiny-music, seed {seed}, {steps} steps, guidance {guidance:g}", fontsize=10)
    fig.savefig(out / "samples.png", dpi=80)
    plt.close(fig)


def measure(pipe, seeds, steps: int = DEFAULT_STEPS, guidance: float = DEFAULT_GUIDANCE) -> dict:
    """Every check of music.PROMPT_CHECKS at every seed: the measured values and whether it passed."""
    cache: dict = {}

    def clip(p, s):
        if (p, s) not in cache:
            cache[p, s] = generate(pipe, p, s, steps, guidance)
        return cache[p, s]

    res = {}
    for c in music.PROMPT_CHECKS:
        rows = []
        for s in seeds:
            if c.feature == "pitch_class":
                y = clip(c.prompt, s)
                err = music.pitch_class_error(y, c.key, fmin=c.fmin)
                m = music.median_pitch(y, fmin=c.fmin)
                rows.append({"seed": s, "median_midi": None if math.isnan(m) else round(m, 2),
                             "semitones_off": None if math.isnan(err) else round(err, 2), "pass": c.passes(err)})
            else:
                f = music.FEATURES[c.feature]
                a, b = f(clip(c.prompt, s)), f(clip(c.other, s))
                rows.append({"seed": s, "prompt": round(a, 2), "other": round(b, 2), "pass": c.passes(a, b)})
        res[c.name] = {"prompt": c.prompt, "other": c.other, "feature": c.feature, "ratio": c.ratio,
                       "floor": c.floor, "key": c.key, "fmin": c.fmin, "passed": sum(r["pass"] for r in rows),
                       "of": len(rows), "per_seed": rows}
        log(f"check {c.name!r}: {res[c.name]['passed']}/{len(rows)}")
    return {"steps": steps, "guidance": guidance, "checks": res}


# ---------------------------------------------------------------------------------------------------- main
def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="model folder to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--clips", type=int, default=1000, help="captioned clips synthesised (and encoded)")
    ap.add_argument("--vae-minutes", type=float, default=16.0, help="wall-clock budget of the VAE phase")
    ap.add_argument("--dit-minutes", type=float, default=24.0, help="wall-clock budget of the DiT phase")
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--vae-crop", type=int, default=2048, help="samples per VAE training crop")
    ap.add_argument("--vae-lr", type=float, default=2e-3)
    ap.add_argument("--kl", type=float, default=1e-4, help="KL weight of the VAE loss")
    ap.add_argument("--batch", type=int, default=16, help="DiT batch")
    ap.add_argument("--lr", type=float, default=1e-3, help="DiT peak learning rate")
    ap.add_argument("--dim", type=int, default=128, help="T5 width = conditioning width")
    ap.add_argument("--width", type=int, default=128, help="DiT width (4 heads)")
    ap.add_argument("--layers", type=int, default=6, help="DiT blocks")
    ap.add_argument("--smoke", action="store_true", help="a 2-3 minute run end to end (tests of the pipeline)")
    ap.add_argument("--measure", type=Path, help="measure the prompt checks of this saved model and stop")
    ap.add_argument("--seeds", type=int, default=8, help="seeds per check with --measure")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="sampling steps for samples and checks")
    ap.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="guidance for samples and checks")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.measure:
        pipe = load_pipeline(a.measure)
        res = measure(pipe, list(range(a.seeds)), a.steps, a.guidance)
        (a.measure / "checks.json").write_text(json.dumps(res, indent=1) + "\n")
        log(f"wrote {a.measure / 'checks.json'}")
        return
    if a.out is None:
        ap.error("--out is required (or --measure)")
    if a.smoke:
        a.clips, a.vae_minutes, a.dit_minutes = 64, 0.5, 0.75
    torch.manual_seed(a.seed)
    rng = torch.Generator().manual_seed(a.seed)
    t_start = time.time()
    from bendlab.music.model import word_tokenizer
    from diffusers import StableAudioPipeline

    log(f"synthesising {a.clips} clips of {music.SECONDS} s at {music.SR} Hz")
    ds = music.make_dataset(a.clips, seed=a.seed)
    t_data = time.time() - t_start
    log(f"data: {t_data:.0f} s")
    vae, vae_losses, vae_steps = train_vae(ds.audio, a.vae_minutes, a.vae_batch, a.vae_crop, rng, a.kl, a.vae_lr)

    t0 = time.time()
    m0, s0 = encode_all(vae, ds.audio[:SCALE_CLIPS])
    c = float(torch.sqrt(m0.var() + (s0 ** 2).mean()))  # std of the posterior samples
    log(f"latent of {SCALE_CLIPS} clips: mean std {m0.std():.3f}, posterior std median {s0.median():.4f} "
        f"-> scale 1/{c:.4f}")
    fold_latent_scale(vae, c)
    mean, std = encode_all(vae, ds.audio)
    sample_std = float(torch.sqrt(mean.var() + (std ** 2).mean()))
    log(f"folded and encoded {len(mean)} clips in {(time.time() - t0) / 60:.1f} min: sample std {sample_std:.3f}, "
        f"mean error {(mean[:SCALE_CLIPS] - m0 / c).abs().max():.2e}, "
        f"std rel. error {((std[:SCALE_CLIPS] - s0 / c).abs() / (s0 / c)).median():.2e} (median)")
    with torch.no_grad():  # reconstruction of whole clips through the folded VAE, by the same loss
        x = torch.from_numpy(ds.audio[:32])[:, None]
        rec = vae.decode(mean[:32]).sample
        rec_stft, rec_l1 = float(mrstft(rec[:, 0], x[:, 0])), float(F.l1_loss(rec, x))
    log(f"VAE on whole clips (posterior mean): mrstft {rec_stft:.3f}, l1 {rec_l1:.4f}")

    tok = word_tokenizer(music.VOCABULARY, music.MAX_TOKENS)
    dit, text, projection, dit_loss, dit_steps = train_dit(
        mean, std, ds, tok, a.dit_minutes, a.batch, rng, dim=a.dim, width=a.width, layers=a.layers, lr=a.lr)
    pipe = StableAudioPipeline(vae=vae, text_encoder=text, projection_model=projection, tokenizer=tok,
                               transformer=dit, scheduler=make_scheduler())
    minutes = (time.time() - t_start) / 60
    save_pipeline(pipe, a.out)
    stats = {"train_minutes": round(minutes, 1), "seed": a.seed, "torch_threads": torch.get_num_threads(),
             "clips": a.clips, "data_seconds": round(t_data, 1), "sample_rate": music.SR,
             "latent_sample_std": round(sample_std, 3),
             "clip_seconds": music.SECONDS, "latent_channels": LATENT, "hop": music.HOP, "latent_frames": music.FRAMES,
             "vae_minutes": a.vae_minutes, "vae_steps": vae_steps, "vae_batch": a.vae_batch, "vae_crop": a.vae_crop,
             "vae_final_losses": vae_losses, "vae_clip_mrstft": round(rec_stft, 4), "vae_clip_l1": round(rec_l1, 5),
             "latent_scale": round(1 / c, 4), "kl_weight": a.kl,
             "dit_minutes": a.dit_minutes, "dit_steps": dit_steps, "dit_batch": a.batch, "dit_lr": a.lr,
             "dit_final_loss": round(dit_loss, 4), "dim": a.dim, "width": a.width, "layers": a.layers}
    (a.out / "training_stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    log(f"saved {a.out}: {stats}")
    pipe = load_pipeline(a.out)
    write_samples(pipe, a.out, steps=a.steps if not a.smoke else 10, guidance=a.guidance)
    log(f"wrote {a.out / 'samples.png'} and {a.out / 'samples'}/ in {(time.time() - t_start) / 60:.1f} min total")


if __name__ == "__main__":
    main()
