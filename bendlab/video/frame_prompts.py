"""Prompts along the frames on a video transformer (Wan 2.x, LTX-Video): each latent frame conditioned on its own
mix of the prompts' embeddings, as method A and AnimateDiff's video method interpolate prompts frame by frame
(`video.spec.prompt_weights`; a latent frame's weights are the mean over the video frames it holds,
`video.latent_frames.per_latent_frame`, as its bend parameters are).

A video transformer has one prompt embedding per call, (B, L, D), which every token of the clip attends to in each
block's cross-attention (attn2). Cross-attention has no interaction between its queries, so splitting that call by
latent frame is exact: the queries (B, F' n, C) become (B F', n, C) (the tokens are frame-major:
`bend.hooks._apply_frames`), the keys and values come from (B F', L, C), frame f's own mix, and the output is put
back as (B, F' n, C). The mixes are made of the text encoder's outputs (L tokens of dim D, as the pipeline hands
them to the transformer) and projected by the transformer's own text projection (`Family.text_projection`), once per
call. Only the prompt's rows are mixed: the rows equal to the embedding the pipeline was handed as its prompt (Wan
calls its transformer once for the prompt and once for the negative prompt; LTX-Video once on [negative,
prompt]); the negative prompt's rows are the block's own, for every frame. LTX-Video's encoder_attention_mask
(which of the L tokens are the prompt's, not padding) becomes one per latent frame: the tokens of every prompt the
frame mixes with a weight above 0 (a frame on one prompt keeps that prompt's own mask).

`frame_prompts` installs it for one pipeline call (a forward pre-hook on the transformer and a wrapper around each
block's attn2 processor, `FrameCrossAttention`) and takes everything away afterwards, also on an error. A clip on one
prompt all along installs nothing (`video.clip`): the stock call.

Notebook: notebooks/10_video_models.ipynb
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import numpy as np
import torch

from ..checks import BendlabValueError
from ..models.family import family_of


class FrameContext:
    """What one transformer call's cross-attention needs, set by `frame_prompts`'s pre-hook before the blocks run:
    `positive` (one bool per batch row: the prompt's rows), `context` (F', L, C) each latent frame's projected mix,
    `bias` (F', 1, L) each frame's additive attention mask (LTX-Video; None for Wan)."""

    def __init__(self):
        self.positive: list[bool] = []
        self.context: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None


class FrameCrossAttention:
    """An attention processor wrapping a block's cross-attention processor (`original`): the call split by latent
    frame (the module docstring), each frame's queries attending to its own keys and values, with `state`'s
    per-frame context on the prompt's rows and the block's own context on the others."""

    def __init__(self, original, state: FrameContext):
        self.original, self.state = original, state

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, *args, **kwargs):
        s = self.state
        if not any(s.positive):
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, *args, **kwargs)
        B, T, C = hidden_states.shape
        F, L = s.context.shape[:2]
        if T % F or encoder_hidden_states is None or encoder_hidden_states.shape[1] != L or len(s.positive) != B:
            raise BendlabValueError(f"prompts along the frames: a cross-attention of {T} queries and "
                                    f"{None if encoder_hidden_states is None else encoder_hidden_states.shape[1]} "
                                    f"keys is not the clip's {F} latent frames and the prompt's {L} tokens; accepted: "
                                    "a text-to-video Wan 2.x or LTX-Video transformer")
        context = torch.cat([s.context.to(encoder_hidden_states.dtype) if pos else
                             encoder_hidden_states[i:i + 1].expand(F, -1, -1) for i, pos in enumerate(s.positive)])
        mask = attention_mask
        if mask is not None:  # (B, 1, L), the transformer's bias: each row's, or the prompt's frames' own
            mask = torch.cat([s.bias.to(mask.dtype) if pos else mask[i:i + 1].expand(F, -1, -1)
                              for i, pos in enumerate(s.positive)])
        out = self.original(attn, hidden_states.reshape(B * F, T // F, C), context, mask, *args, **kwargs)
        return out.reshape(B, T, out.shape[-1])


def latent_weights(weights, r: int) -> np.ndarray:
    """(F', P) each latent frame's prompt weights from (F, P) video frames' (`spec.prompt_weights`): the mean over
    the frames it holds (`per_latent_frame`), still summing to 1."""
    from .latent_frames import per_latent_frame
    return per_latent_frame(np.asarray(weights, dtype=float).T, r).T


def encode_each(pipe, prompts: Sequence[str], tokens: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(P, L, D) the text encoder's output for each prompt, encoded alone as the pipeline encodes its prompt (so a
    prompt's row is exactly what the stock call hands the transformer), and (P, L) its attention mask (LTX-Video;
    None for Wan)."""
    rows, masks = [], []
    for p in prompts:
        out = pipe.encode_prompt(prompt=p, do_classifier_free_guidance=False, max_sequence_length=tokens,
                                 device=pipe.device)
        rows.append(out[0])
        if len(out) == 4:  # LTX: prompt_embeds, prompt_attention_mask, negative_..., negative_...
            masks.append(out[1])
    return torch.cat(rows), (torch.cat(masks) if masks else None)


@contextlib.contextmanager
def frame_prompts(pipe, embeds: torch.Tensor, masks: torch.Tensor | None, weights, first: int, tokens: int,
                  negative_prompt: str | None = None):
    """Condition each latent frame of one pipeline call on its own mix of the prompts (the module docstring).
    embeds, masks: `encode_each`'s; weights: (F', P) each latent frame's weights (`latent_weights`); first: the
    prompt whose embedding the pipeline is handed (its rows are the prompt's rows); tokens: the prompt's length
    (`encode_each`). Yields the pipeline's keyword arguments for that prompt (prompt_embeds, and LTX-Video's
    prompt_attention_mask). A one-line error where the negative prompt's embedding equals that prompt's (its rows
    could not be told apart)."""
    fam = family_of(pipe)
    if torch.equal(encode_each(pipe, [negative_prompt or ""], tokens)[0], embeds[first:first + 1]):
        raise BendlabValueError(f"negative prompt {negative_prompt or ''!r} encodes as the window's first prompt, so "
                                "their rows cannot be told apart; accepted: a negative prompt other than the prompts")
    denoiser = fam.denoiser_of(pipe)
    w = torch.as_tensor(np.asarray(weights, dtype=float), dtype=embeds.dtype, device=embeds.device)
    mixed = torch.einsum("fp,pld->fld", w, embeds)  # one-hot rows: exactly that prompt's embedding
    keep = None if masks is None else ((w > 0)[:, :, None] & masks.bool()[None]).any(1)  # (F', L): a frame attends
    #                                                                  to the tokens of every prompt it mixes
    given = embeds[first:first + 1]
    kwargs = {"prompt_embeds": given, **({} if masks is None else {"prompt_attention_mask": masks[first:first + 1]})}
    state = FrameContext()
    project = denoiser.get_submodule(fam.text_projection)

    def pre_hook(module, args, kwargs_):
        h = kwargs_["encoder_hidden_states"]
        mine = given.to(h.device, h.dtype)
        state.positive = [torch.equal(row, mine[0]) for row in h]
        if not any(state.positive):  # Wan's call on the negative prompt: the stock cross-attention
            return None
        state.context = project(mixed.to(h.device, h.dtype))
        if keep is not None:  # as the transformer turns its 2-D mask into a bias
            state.bias = ((1 - keep.to(h.device, kwargs_["hidden_states"].dtype)) * -10000.0).unsqueeze(1)
        return None

    with contextlib.ExitStack() as stack:
        stack.callback(denoiser.register_forward_pre_hook(pre_hook, with_kwargs=True).remove)
        for k in range(len(denoiser.get_submodule(fam.frame_blocks))):
            attn = denoiser.get_submodule(f"{fam.frame_blocks}.{k}.attn2")
            stack.callback(attn.set_processor, attn.processor)
            attn.set_processor(FrameCrossAttention(attn.processor, state))
        yield kwargs
