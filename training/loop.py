"""What the motion adapter's and the music model's training scripts share (train_motion.py, train_music.py): the
log line, parameter counts, the learning-rate schedule over a wall-clock budget, and the step loop that trains a
list of modules with AdamW and keeps their EMA copies. The caller draws its batches and scores them; the random
numbers are drawn in its order, so a seed gives the same run whichever script calls."""

from __future__ import annotations

import copy
import math
import time
from typing import Callable

import torch


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def n_params(*mods) -> float:
    """The modules' parameters, in millions."""
    return sum(p.numel() for m in mods for p in m.parameters()) / 1e6


def cosine_lr(peak: float, step: int, frac: float, warmup: int = 100) -> float:
    """Linear warm-up over `warmup` steps, then cosine from peak to peak/10 over the wall-clock budget (frac 0..1)."""
    return peak * min(1.0, (step + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(frac, 1.0))))


def train_with_ema(mods: list[torch.nn.Module], batch_loss: Callable[[], torch.Tensor], *, lr: float, minutes: float,
                   max_steps: int | None = None, ema_decay: float = 0.995, name: str = ""):
    """Train every parameter of `mods` until `minutes` of wall clock have passed (or `max_steps` steps): AdamW
    (betas 0.9, 0.99, weight decay 1e-2) at `cosine_lr` over the budget, one `batch_loss()` a step (it draws and
    scores a batch), the gradient norm clipped to 1, an EMA copy of each module moved toward it with a decay that
    warms up as (1 + step) / (10 + step) to `ema_decay`. The loss is smoothed (0.99) and logged every 50 steps,
    prefixed by `name`. Returns the EMA copies (in `mods` order), the smoothed loss and the steps taken."""
    params = [p for m in mods for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.99), weight_decay=1e-2, foreach=True)
    emas = [copy.deepcopy(m).eval().requires_grad_(False) for m in mods]
    ema_params = [p for m in emas for p in m.parameters()]
    ema_loss, t0, step, budget = None, time.time(), 0, minutes * 60
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1 or (max_steps is not None and step >= max_steps):
            break
        for g in opt.param_groups:
            g["lr"] = cosine_lr(lr, step, frac)
        loss = batch_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, params, 1 - decay)
        ema_loss = loss.item() if ema_loss is None else 0.99 * ema_loss + 0.01 * loss.item()
        if step % 50 == 0:
            el = time.time() - t0
            log(f"{name}step {step:5d}  loss {ema_loss:.4f}  lr {opt.param_groups[0]['lr']:.2e}  "
                f"{el / (step + 1):.2f} s/step  {el / 60:.1f}/{minutes:g} min")
        step += 1
    log(f"{name}done: {step} steps in {(time.time() - t0) / 60:.1f} min, loss {ema_loss:.4f}")
    return emas, ema_loss, step
