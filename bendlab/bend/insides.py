"""What a model computes inside, to choose where to bend: a module's feature maps at a step, the latent at every
step, and what each prompt token's cross-attention looks at; each with bends applied, so the same view before and
after a bend shows what the bend changed and from where on.

- `feature_maps`: the output of a UNet module ("unet:PATH") during the UNet evaluation of one step, or of a VAE
  decoder block ("vae:PATH") when the final latent is decoded: (C, h, w), the shape `bendlab targets` lists;
- `latent_steps`: the latent before every layer 0..N (`bend.hooks.BendCallback`'s capture): (N + 1, 4, h, w);
- `cross_attention`: the attention probabilities of the cross-attention modules under a UNet path at one step,
  per prompt token: {token: (h, w)}, summing to 1 over the tokens at every position (a softmax).

Every capture is installed for one call and removed after it (forward hooks; an attention processor set through
diffusers' `set_attn_processor` and the previous processors restored, the same objects), on top of `bend.hooks.bending`
(the bends are installed exactly as a render installs them). Under classifier-free guidance the views show the
prompt's half of the batch (not the negative prompt's). Every input is checked, in one line, before any model work.

Notebook: notebooks/09_bending_targets.ipynb
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import numpy as np
import torch

from .. import models
from .bends import Bend, as_bends
from ..checks import BendlabValueError, check_int, check_str
from .hooks import BendCallback, bending
from .fit import check_bends, check_pipe, check_settings
from .render import denoise, encode_prompts, initial_noise, latent_shape
from ..paper import SEED

FEATURE_KINDS = ("unet", "vae")  # the targets whose output is a feature map


# ------------------------------------------------------------------------------------------ checks and runs
def _prepared(pipe, model, prompt: str, bends, seed: int, steps, guidance, check: Callable | None = None):
    """(pipe, bends, steps, guidance) after every check: the settings, the bends against the model's shapes (its
    configs, before its weights load), and `check(shapes, steps)` for the view's own inputs; then the model loads."""
    check_str("prompt", prompt)
    check_pipe(pipe)
    m = models.Model.of(model, pipe)
    steps, guidance = m.usual(steps, guidance)
    check_settings(steps, guidance, seed)
    bends = as_bends(bends)
    shapes = m.shapes
    if shapes is None:  # a hub id: its shapes are known only once it loads
        shapes = m.load()
    check_bends(shapes, bends, steps, latent_shape(shapes, 1))
    if check is not None:
        check(shapes, steps)
    return m.load(), bends, steps, guidance


@torch.no_grad()
def _run(pipe, prompt: str, bends, seed: int, steps: int, guidance: float, install=None, capture=(), stop=None,
         output_type: str = "latent") -> BendCallback:
    """One render of `prompt` with `bends` as `bend.render.render` runs it, with `install(pipe, cb)` (a context manager:
    the view's hooks, added after the bends' own, so they see the bent outputs) around the pipeline call."""
    embeds = encode_prompts(pipe, [prompt])
    with bending(pipe, bends, capture=capture, stop=stop, prompts=[prompt]) as cb:
        with install(pipe, cb) if install is not None else contextlib.nullcontext():
            denoise(pipe, embeds, initial_noise(pipe, seed), steps=steps, guidance=guidance, callback=cb,
                    output_type=output_type, seed=seed)
    return cb


def _prompt_half(x: torch.Tensor) -> torch.Tensor:
    """The prompt's item of a batch of one: the last (classifier-free guidance runs [negative, prompt])."""
    return x[-1]


def check_step(name: str, layer, steps: int) -> int:
    """A UNet evaluation's step 0..steps-1 (what a layer means for modules, the text and attention)."""
    return check_int(name, layer, 0, steps - 1, accepted=f"the UNet evaluation of a step, 0..{steps - 1} for "
                                                         f"{steps} steps")


def check_feature_target(target, layer, steps: int, shapes=None) -> Bend:
    """A one-line error unless `target` names a module whose output is a feature map ("unet:PATH", "vae:PATH" of
    the decoder) and `layer` a step it runs at (UNet: 0..steps-1; VAE: None or steps, the decode); with `shapes`
    (a pipeline or `models.Skeleton`) the module must exist there. Returns the target as a probe `Bend`."""
    if not isinstance(target, str) or target.partition(":")[0] not in FEATURE_KINDS:
        raise BendlabValueError(f"target {target!r} has no feature maps; accepted: unet:<module path> (e.g. "
                                "unet:mid_block) or vae:<module path> (e.g. vae:decoder.up_blocks.1), `bendlab "
                                "targets` lists them; the latent: latent_steps; the attention: cross_attention")
    kind = target.partition(":")[0]
    if kind == "vae":
        if layer not in (None, steps):
            raise BendlabValueError(f"layer {layer!r} of {target}: the VAE decoder runs once, when the final latent is "
                                    f"decoded; accepted: None or {steps} (the final layer)")
        probe = Bend("add", 0.0, target=target)
    else:
        probe = Bend("add", 0.0, check_step("layer", layer, steps), target=target)
    if shapes is not None:
        check_bends(shapes, [probe], steps, latent_shape(shapes, 1))
    return probe


# ------------------------------------------------------------------------------------------ feature maps
def feature_maps(pipe, prompt: str, target: str, layer: int | None = None, bends=(), seed: int = SEED,
                 steps: int | None = None, guidance: float | None = None, model=None) -> np.ndarray:
    """The output of a module while `prompt` renders with `bends`: (C, h, w), float32, the shape `bendlab targets`
    lists for it.

    target: "unet:PATH" (e.g. "unet:mid_block"): during the UNet evaluation of step `layer` (0..N-1; a bend of
            that module at that step is included), the prompt's half of the guidance batch;
            "vae:PATH" (e.g. "vae:decoder.up_blocks.1"): when the VAE decodes the final latent (`layer` None or N)
    pipe:   a loaded pipeline, or None to load `model` (the shipped one by default) after every check
    steps, guidance: None -> the model's usual ones. The capture is a forward hook removed after the call; a UNet
    view stops the render after that step.

    Notebook: notebooks/09_bending_targets.ipynb
    """
    probe = [None]

    def check(shapes, steps):
        probe[0] = check_feature_target(target, layer, steps, shapes)
    pipe, bends, steps, guidance = _prepared(pipe, model, prompt, bends, seed, steps, guidance, check)
    b, seen = probe[0], []

    @contextlib.contextmanager
    def install(pipe, cb):
        def hook(module, inputs, output):  # what a bend of this target would bend (`bend.hooks.bending`'s hooks)
            if b.kind == "unet" and cb.step not in b.layers:
                return
            out = output[0] if isinstance(output, tuple) else output
            seen.append(_prompt_half(out).detach().float().cpu().numpy())
        handle = (pipe.unet if b.kind == "unet" else pipe.vae).get_submodule(b.path).register_forward_hook(hook)
        try:
            yield
        finally:
            handle.remove()

    unet = b.kind == "unet"
    _run(pipe, prompt, bends, seed, steps, guidance, install, stop=b.layer + 1 if unet else None,
         output_type="latent" if unet else "np")
    return seen[-1]


# ------------------------------------------------------------------------------------------ the latent's steps
def latent_steps(pipe, prompt: str, bends=(), seed: int = SEED, steps: int | None = None,
                 guidance: float | None = None, model=None) -> np.ndarray:
    """The latent before every layer 0..N while `prompt` renders with `bends` (each layer's latent bends
    included): (N + 1, 4, h, w), float32. [0] is the initial noise (bent, if a bend acts at layer 0), [N] the
    final latent the VAE decodes. Captured by `bend.hooks.BendCallback`.

    Notebook: notebooks/09_bending_targets.ipynb
    """
    pipe, bends, steps, guidance = _prepared(pipe, model, prompt, bends, seed, steps, guidance)
    cb = _run(pipe, prompt, bends, seed, steps, guidance, capture=range(steps + 1))
    return np.stack([cb.captured[L][0].float().cpu().numpy() for L in range(steps + 1)])


# ------------------------------------------------------------------------------------------ cross-attention
def attention_probs(attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None) -> torch.Tensor:
    """softmax(Q K^T / sqrt(d)) of one call of a diffusers `Attention` module, as diffusers' `AttnProcessor`
    computes it (`attention.attention_call`): (B, heads, queries, keys)."""
    from .attention import attention_call
    probs = attention_call(attn, hidden_states, encoder_hidden_states, attention_mask, temb).probs
    return probs.view(-1, attn.heads, *probs.shape[1:])


class AttentionCapture:
    """An attention processor that records a module's attention probabilities (`attention_probs`) on the calls
    `when()` approves and leaves its output alone: the processor it replaces computes it, so the render is the
    same with or without the capture. Where that processor is an attention bend's (`bend.attention.AttnBendProcessor`),
    the probabilities recorded are the bent ones, as that processor bends them (`bent_probs`)."""

    def __init__(self, inner, when: Callable[[], bool]):
        self.inner, self.when = inner, when
        self.probs: list[torch.Tensor] = []

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if self.when():
            probs = attention_probs(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
            hw = tuple(hidden_states.shape[-2:]) if hidden_states.ndim == 4 else None
            self.probs.append(bent_probs(self.inner, probs, hw))
        return self.inner(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)


def bent_probs(processor, probs: torch.Tensor, hw: tuple[int, int] | None = None) -> torch.Tensor:
    """Attention probabilities (B, heads, Q, K) as a module's `processor` uses them: bent by the bends of an
    `bend.attention.AttnBendProcessor` active at its step (its own `bend_probs`), unchanged for any other processor."""
    from .attention import AttnBendProcessor
    if not isinstance(processor, AttnBendProcessor):
        return probs
    active = [(b, m) for b, m in processor.bends if processor.cb.step in b.layers]
    if not active:
        return probs
    B, heads, Q, K = probs.shape
    bent = processor.bend_probs(probs.reshape(B * heads, Q, K), heads, active, hw or processor._map_shape(Q))
    return probs if bent is None else bent.view(B, heads, Q, K)


@contextlib.contextmanager
def capturing_attention(unet, paths: Sequence[str], when: Callable[[], bool]):
    """Replace the processors of the attention modules at `paths` of `unet` by `AttentionCapture`s, through
    diffusers' `set_attn_processor` (every other module keeps its processor); yields {path: capture}; the
    previous processors, the same objects, are set back when the block ends."""
    before = dict(unet.attn_processors)
    caps = {p: AttentionCapture(before[f"{p}.processor"], when) for p in paths}
    unet.set_attn_processor({k: caps[k[:-len(".processor")]] if k[:-len(".processor")] in caps else v
                             for k, v in before.items()})
    try:
        yield caps
    finally:
        unet.set_attn_processor(dict(before))  # set_attn_processor consumes the dict it is given


def cross_attention_modules(unet, path: str = "") -> list[str]:
    """The paths of the cross-attention modules (`Attention` with is_cross_attention: the `attn2` of each
    transformer block) at or under `path` of `unet` ("" : all of them), in the order data flows."""
    from diffusers.models.attention_processor import Attention
    root = unet.get_submodule(path) if path else unet
    prefix = f"{path}." if path else ""
    return [(prefix + n).rstrip(".") for n, m in root.named_modules()
            if isinstance(m, Attention) and m.is_cross_attention]


def check_attention_module(unet, module) -> str:
    """The UNet path of `module` ("PATH" or "unet:PATH"; "" the whole UNet) if cross-attention modules are at or
    under it; a one-line error naming the UNet blocks that hold some otherwise."""
    holders = sorted({".".join(p.split(".")[:2]) if p.startswith(("down_blocks", "up_blocks")) else p.split(".")[0]
                      for p in cross_attention_modules(unet)})
    accepted = (f"accepted: a UNet module holding cross-attention ({', '.join(holders)}) or one attn2 module, e.g. "
                f"{cross_attention_modules(unet)[0] if holders else '(none in this model)'}")
    if not isinstance(module, str) or module != module.strip():
        raise BendlabValueError(f"module {module!r} is not a UNet module path; {accepted}, or '' for all of them")
    path = module.removeprefix("unet:")
    try:
        unet.get_submodule(path)
    except AttributeError:
        raise BendlabValueError(f"UNet has no module {path!r}; {accepted}") from None
    if not cross_attention_modules(unet, path):
        raise BendlabValueError(f"UNet module {path!r} holds no cross-attention; {accepted}")
    return path


def token_labels(tokenizer, prompt: str) -> list[tuple[str, list[int]]]:
    """(label, positions) of the prompt embedding's tokens: "<start>", each token of the prompt (its text; a
    repeated one gets its position, e.g. "a@4"), and "<end>" (the end token and the padding after it), which
    together cover every position once."""
    check_str("prompt", prompt)
    n = tokenizer.model_max_length
    ids = tokenizer(prompt, truncation=True, max_length=n).input_ids
    words = [t.replace("</w>", "") for t in tokenizer.convert_ids_to_tokens(ids[1:-1])]
    out = [("<start>", [0])]
    for i, word in enumerate(words, 1):
        out.append((word if words.count(word) == 1 else f"{word}@{i}", [i]))
    return out + [("<end>", list(range(len(ids) - 1, n)))]


def _spatial(q: int, latent_hw: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of an attention's q queries in a UNet on a latent of latent_hw: halved (rounding up, as the
    stride-2 convolutions do) until it fits."""
    h, w = latent_hw
    while h * w > q:
        h, w = -(-h // 2), -(-w // 2)
    if h * w != q:
        raise BendlabValueError(f"{q} attention queries do not tile a {latent_hw[0]}x{latent_hw[1]} latent's "
                                f"resolutions")
    return h, w


def cross_attention(pipe, prompt: str, module: str, layer: int, bends=(), seed: int = SEED,
                    steps: int | None = None, guidance: float | None = None, model=None) -> dict[str, np.ndarray]:
    """What each token of `prompt` is attended by, at UNet step `layer` (0..N-1), while it renders with `bends`:
    {token: (h, w) float32 map}, `token_labels` order. At every position the maps sum to 1 over the tokens (the
    softmax over the prompt embedding's positions; "<end>" collects the end token and padding).

    module: a UNet path ("mid_block", "up_blocks.0", one "....attn2", or "" for the whole UNet; "unet:" prefix
            allowed): its cross-attention modules' probabilities, averaged over heads and modules (maps of
            coarser modules upsampled bilinearly to the finest), the prompt's half of the guidance batch
    The capture is an `AttentionCapture` set through `set_attn_processor` on those modules only and removed
    after the call (the render itself is unchanged by it); the render stops after that step.

    Notebook: notebooks/09_bending_targets.ipynb
    """
    path = [None]

    def check(shapes, steps):
        path[0] = check_attention_module(shapes.unet, module)
        check_step("layer", layer, steps)
    pipe, bends, steps, guidance = _prepared(pipe, model, prompt, bends, seed, steps, guidance, check)
    paths = cross_attention_modules(pipe.unet, path[0])
    state = {}

    @contextlib.contextmanager
    def install(pipe, cb):
        with capturing_attention(pipe.unet, paths, lambda: cb.step == layer) as caps:
            state["caps"] = caps
            yield

    _run(pipe, prompt, bends, seed, steps, guidance, install, stop=layer + 1)
    latent_hw = latent_shape(pipe, 1)[-2:]
    maps = []
    for cap in state["caps"].values():
        p = _prompt_half(cap.probs[-1]).float().mean(0)  # (queries, keys), mean over heads
        h, w = _spatial(p.shape[0], latent_hw)
        maps.append(p.T.reshape(1, -1, h, w))
    side = max(tuple(m.shape[-2:]) for m in maps)
    maps = torch.cat([m if tuple(m.shape[-2:]) == side else
                      torch.nn.functional.interpolate(m, size=side, mode="bilinear", align_corners=False)
                      for m in maps]).mean(0)  # (keys, h, w)
    return {label: maps[pos].sum(0).cpu().numpy() for label, pos in token_labels(pipe.tokenizer, prompt)}
