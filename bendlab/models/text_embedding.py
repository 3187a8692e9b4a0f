"""The image UNet's pooled-text embedding, kept inside AnimateDiff.

A UNet2DConditionModel with `addition_embed_type="text"` (the shipped model's, see its card; DeepFloyd IF's) adds
an attention-pooled prompt to the timestep embedding, so blocks without cross-attention see the prompt too:

    emb = time_embedding(t) + add_embedding(encoder_hidden_states)        (UNet2DConditionModel.forward)

diffusers' `UNetMotionModel.from_unet2d` keeps that config value but builds an addition embedding only for SDXL's
"text_time", so in `AnimateDiffPipeline` the pooled-prompt path is silently gone and the image model runs without
part of its conditioning. `keep_text_embedding` puts it back: the 2D UNet's `add_embedding` becomes a submodule of
the UNetMotionModel (its weights then count in `weights_fingerprint`) and every resnet's timestep embedding gets
the pooled prompt of its own frame:

    temb[b, f] = time_embedding(t)[b] + add_embedding(encoder_hidden_states[b, f])

UNetMotionModel takes encoder_hidden_states per frame (batch x frames rows, as AnimateDiffPipeline repeats them),
so several prompts along the frames (`video.joint`'s per-frame mix) give each frame its own pooled prompt. The
pooled prompt is computed from the encoder_hidden_states the UNet's forward receives, after every forward
pre-hook (prompt mixes, text bends), as the image UNet computes it from its argument.
"""

from __future__ import annotations

import functools

import torch


def keep_text_embedding(motion_unet: torch.nn.Module, unet2d: torch.nn.Module) -> bool:
    """Give `motion_unet` (a UNetMotionModel made from `unet2d`) the 2D UNet's "text" addition embedding, per frame.
    Returns True where it was installed; False (nothing changed) where `unet2d` has none or `motion_unet` already
    has an addition embedding. Installed for the module's life (the pipeline is cached), like its weights."""
    if (getattr(unet2d.config, "addition_embed_type", None) != "text"
            or getattr(unet2d, "add_embedding", None) is None
            or getattr(motion_unet, "add_embedding", None) is not None):
        return False
    from diffusers.models.resnet import ResnetBlock2D
    motion_unet.add_embedding = unet2d.add_embedding
    pooled: dict[str, torch.Tensor] = {}
    forward = motion_unet.forward  # the bound class method; hooks run before this wrapper, so it sees their output

    @functools.wraps(forward)
    def forward_with_text(sample, timestep, encoder_hidden_states, *args, **kwargs):
        pooled["emb"] = motion_unet.add_embedding(encoder_hidden_states)  # (batch x frames, time embedding width)
        try:
            return forward(sample, timestep, encoder_hidden_states, *args, **kwargs)
        finally:
            pooled.clear()

    def add_pooled(module, args, kwargs):
        emb = pooled.get("emb")
        if emb is None:
            return None
        if "temb" in kwargs:
            if kwargs["temb"] is not None:
                kwargs["temb"] = kwargs["temb"] + emb.to(kwargs["temb"].dtype)
        elif len(args) > 1 and args[1] is not None:
            args = (args[0], args[1] + emb.to(args[1].dtype), *args[2:])
        return args, kwargs

    motion_unet.forward = forward_with_text
    for m in motion_unet.modules():
        if isinstance(m, ResnetBlock2D) and m.time_emb_proj is not None:
            m.register_forward_pre_hook(add_pooled, with_kwargs=True)
    return True
