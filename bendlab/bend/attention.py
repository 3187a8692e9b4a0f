"""Bending attention probabilities: `AttnBendProcessor` computes attention as diffusers' `AttnProcessor` does
with the probabilities explicit (`attention_call`, the one copy of that body, also used by `bend.insides` to look
at them), bends them, renormalises each row and weighs the values; an identity bend hands the call to the
module's own processor, so the image is bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .bends import Bend
from . import operators
from ..checks import BendlabValueError


@dataclass
class AttentionCall:
    """One call of a diffusers `Attention` module up to its softmax, as diffusers' `AttnProcessor` computes it:
    `probs` (B * heads, queries, keys), the values, and what the rest of the call needs (`output`)."""

    probs: torch.Tensor
    value: torch.Tensor
    residual: torch.Tensor
    shape: tuple | None  # (B, C, H, W) of a 4-D input (a spatial block's feature map), else None

    @property
    def hw(self) -> tuple[int, int] | None:
        """The (h, w) of the queries when the input was a feature map."""
        return None if self.shape is None else tuple(self.shape[-2:])

    def output(self, attn, probs: torch.Tensor) -> torch.Tensor:
        """The rest of the call with `probs` (this call's, or bent ones): weigh the values, project, reshape."""
        out = attn.batch_to_head_dim(torch.bmm(probs, self.value))
        out = attn.to_out[1](attn.to_out[0](out))
        if self.shape is not None:
            out = out.transpose(-1, -2).reshape(self.shape)
        if attn.residual_connection:
            out = out + self.residual
        return out / attn.rescale_output_factor


def attention_call(attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                   attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                   rotary_emb=None) -> AttentionCall:
    """diffusers' `AttnProcessor` body up to softmax(q k^T * scale) (`attn.get_attention_scores`): the one copy of
    it, used to bend the probabilities (`AttnBendProcessor`) and to look at them (`bend.insides`). A module with
    fewer key/value heads than query heads, or given rotary embeddings (Stable Audio's DiT), is computed as
    `StableAudioAttnProcessor2_0` computes it (`_grouped_call`)."""
    if rotary_emb is not None or attn.to_k.out_features != attn.to_q.out_features:
        return _grouped_call(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb)
    residual = hidden_states
    if attn.spatial_norm is not None:
        hidden_states = attn.spatial_norm(hidden_states, temb)
    shape = None
    if hidden_states.ndim == 4:
        shape = tuple(hidden_states.shape)
        b, c, h, w = shape
        hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
    batch, length, _ = hidden_states.shape if encoder_hidden_states is None else encoder_hidden_states.shape
    mask = attn.prepare_attention_mask(attention_mask, length, batch)
    if attn.group_norm is not None:
        hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
    query = attn.to_q(hidden_states)
    context = hidden_states if encoder_hidden_states is None else (
        attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states)
    key, value = attn.to_k(context), attn.to_v(context)
    query, key, value = attn.head_to_batch_dim(query), attn.head_to_batch_dim(key), attn.head_to_batch_dim(value)
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    return AttentionCall(attn.get_attention_scores(query, key, mask), value, residual, shape)


def _grouped_call(attn, hidden_states, encoder_hidden_states, attention_mask, rotary_emb) -> AttentionCall:
    """diffusers' `StableAudioAttnProcessor2_0` up to its softmax, with the probabilities explicit: grouped key and
    value heads repeated to the query heads, rotary embeddings on the queries (and, for self-attention, the keys);
    probabilities and values as (B * heads, tokens, head_dim), as `AttentionCall.output` takes them."""
    from diffusers.models.embeddings import apply_rotary_emb
    residual = hidden_states
    context = hidden_states if encoder_hidden_states is None else (
        attn.norm_encoder_hidden_states(encoder_hidden_states) if attn.norm_cross else encoder_hidden_states)
    B = hidden_states.shape[0]
    query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
    d = query.shape[-1] // attn.heads
    kv = key.shape[-1] // d
    query = query.view(B, -1, attn.heads, d).transpose(1, 2)
    key, value = (t.view(B, -1, kv, d).transpose(1, 2) for t in (key, value))
    if kv != attn.heads:
        key, value = (torch.repeat_interleave(t, attn.heads // kv, dim=1) for t in (key, value))
    if attn.norm_q is not None:
        query = attn.norm_q(query)
    if attn.norm_k is not None:
        key = attn.norm_k(key)
    if rotary_emb is not None:
        def rotate(t):
            r = rotary_emb[0].shape[-1]
            return torch.cat((apply_rotary_emb(t[..., :r].float(), rotary_emb, use_real=True, use_real_unbind_dim=-2),
                              t[..., r:].float()), dim=-1).to(t.dtype)
        query = rotate(query)
        if not attn.is_cross_attention:
            key = rotate(key)
    flat = [t.reshape(B * attn.heads, -1, d) for t in (query, key, value)]
    mask = None if attention_mask is None else attn.prepare_attention_mask(attention_mask, key.shape[2], B)
    probs = attn.get_attention_scores(flat[0], flat[1], mask)
    return AttentionCall(probs, flat[2], residual, None)


class AttnBendProcessor:
    """A diffusers attention processor that bends the attention probabilities of one `Attention` module.

    At the steps of its bends (`cb.step`, as UNet module hooks read it) it computes attention as diffusers'
    `AttnProcessor` does, with the probabilities explicit (`attn.get_attention_scores`: softmax(q k^T * scale)),
    bends them (`bend_probs`) and multiplies the bent probabilities with the values. At every other step, and
    whenever the bends leave the probabilities exactly as they were (an identity bend), it hands the call to the
    module's own processor (`original`, e.g. AttnProcessor2_0's fused kernel), so an unbent render is
    bit-identical.

    bends: (Bend, mask) pairs; mask None (every column) or a boolean (P, K, 1) over the K key tokens, one row per
           prompt (`token_mask`); cb: the call's `BendCallback`; cfg: a function telling, during the call, whether
           the batch is [negative, positive] (classifier-free guidance), in which case only the positive half is
           bent, as the text target does.
    """

    def __init__(self, original, bends, cb, cfg, extra_keys: int = 0, frames: bool = False):
        self.original, self.bends, self.cb, self.cfg = original, bends, cb, cfg
        self.extra_keys = extra_keys  # cross-attention keys after the prompt's tokens (Stable Audio's durations: 2)
        self.frames = frames  # temporal attention (a motion module's): the queries are the frames, and a bend's
        #                       parameters (one per frame) go to the query rows, not to the batch (the pixels)

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None, rotary_emb=None,
                 **kwargs):
        # rotary_emb is named: diffusers passes a module only the keyword arguments its processor's signature names
        def stock():
            extra = dict(kwargs, **({} if temb is None else {"temb": temb}),
                         **({} if rotary_emb is None else {"rotary_emb": rotary_emb}))
            return self.original(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                                 attention_mask=attention_mask, **extra)

        active = [(b, m) for b, m in self.bends if self.cb.step in b.layers]
        if not active:
            return stock()
        call = attention_call(attn, hidden_states, encoder_hidden_states, attention_mask, temb, rotary_emb)
        hw = call.hw
        if hw is None:
            try:
                hw = self._map_shape(call.probs.shape[1])
            except BendlabValueError:  # queries not on the latent's grid (a music DiT's: time and a global token)
                if any(b.op in operators.ATTN_OPERATORS for b, _ in active):  # only these need the grid
                    raise
        bent = self.bend_probs(call.probs, attn.heads, active, hw)
        if bent is None:  # an identity: the module's own processor, bit for bit
            return stock()
        return call.output(attn, bent)

    def _map_shape(self, queries: int) -> tuple[int, int]:
        """The (h, w) of a block's query positions: the latent's size halved k times as diffusers' downsamplers
        halve it (ceil), the k whose h x w is the number of queries."""
        H, W = self.cb.latent_hw
        for k in range(8):
            h, w = -(-H // 2**k), -(-W // 2**k)
            if h * w == queries:
                return h, w
        raise BendlabValueError(f"{queries} attention queries are not the {H}x{W} latent at any block resolution; "
                                f"accepted: "
                                "an attn target of a UNet whose attention runs on the latent's grid")

    def bend_probs(self, probs: torch.Tensor, heads: int, active, hw: tuple[int, int]) -> torch.Tensor | None:
        """The bent probabilities (B * heads, Q, K), or None when every bend left them as they were.

        The positive half of the batch under classifier-free guidance (all of it without), as (B, heads, Q, K):
        a point-wise operator acts on the selected columns; a spatial one (`operators.ATTN_OPERATORS`) on each
        selected column's map over the image, the Q queries as the block's h x w grid (row-major), each batch
        item with its parameter. Then, once, every bent row is clamped at 0 and divided by its sum (a row whose
        sum is 0 becomes uniform, 1/K), so each row sums to 1 again."""
        n, Q, K = probs.shape
        P = probs.view(n // heads, heads, Q, K)
        half = P.shape[0] // 2 if self.cfg() else 0
        x = P[half:]
        changed = False
        for b, m in active:
            if m is not None:
                if m.shape[1] < K and self.extra_keys == K - m.shape[1]:  # keys after the prompt's (Stable Audio's 2
                    m = torch.cat([m, m.new_zeros(m.shape[0], K - m.shape[1], 1)], 1)  # duration tokens): unselected
                if m.shape[1] != K:
                    raise BendlabValueError(f"{b.where} selects among {m.shape[1]} prompt tokens, but {b.target} "
                                            f"attends to "
                                            f"{K} keys; accepted: where='all' for this module")
                if m.shape[0] not in (1, x.shape[0]):
                    raise BendlabValueError(f"{b.where} was found in {m.shape[0]} prompts for a batch of {x.shape[0]}; "
                                            "accepted: one prompt per batch item")
                m = m.to(x.device).view(m.shape[0], 1, 1, K)
            y = self._apply(b, x.permute(2, 0, 1, 3), hw).permute(1, 2, 0, 3) if self.frames else \
                self._apply(b, x, hw)  # temporal: each query frame's rows with that frame's parameter
            if m is not None:
                y = torch.where(m, y, x)
            if not torch.equal(y, x):
                x, changed = y, True
        if not changed:
            return None
        x = x.clamp_min(0)
        total = x.sum(dim=-1, keepdim=True)
        x = torch.where(total > 0, x / total.clamp_min(torch.finfo(x.dtype).tiny), torch.full_like(x, 1.0 / K))
        return (torch.cat([P[:half], x]) if half else x).reshape(n, Q, K)

    @staticmethod
    def _apply(b: Bend, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """b's operator on every column of x (B, heads, Q, K), with one parameter per batch item."""
        f = operators.OPERATORS[b.op]
        if b.op not in operators.ATTN_OPERATORS:
            return f(x, b.param)
        B, heads, Q, K = x.shape
        maps = x.transpose(2, 3).reshape(B, heads * K, *hw)  # each (head, key) column as an h x w image
        return f(maps, b.param).reshape(B, heads, K, Q).transpose(2, 3)


