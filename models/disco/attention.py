"""Cross-attention on DisCo's reference tokens with the key/value projections shared and cached.

In DisCo every frame attends to the same 257 CLIP tokens of the reference image (one token set
for the conditional half of a CFG batch, one for the unconditional half), and those tokens stay
the same for all denoising steps. A stock cross-attention projects the tokens to keys and values
again for every frame, every network and every step. :class:`SharedContextCrossAttention` instead

* accepts ``G`` distinct token sets for a batch of ``B = G·n`` queries (query ``i`` reads set
  ``i // n``) and attends each group's ``n·L`` queries to its keys in one call; the result is the
  same as repeating the tokens ``n`` times (softmax is taken per query over the same keys);
* keeps the projected keys/values while the very same token tensor (same object, unmodified) is
  passed again, i.e. for all steps of one sampling run. :func:`release_context_cache` drops them.

Any other use (self-attention, masks, attention variants DisCo does not have) goes through
diffusers' standard SDPA processor unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn

from ..common.attention import plain_cross_attention


def _version(t: torch.Tensor) -> int:
    """In-place change counter; inference tensors (ComfyUI runs nodes under ``inference_mode``) have
    none, and the conditioning tokens are never changed in place, so identity alone keys them."""
    return -1 if t.is_inference() else t._version


class SharedContextCrossAttention:
    """Attention processor: keys/values of the context computed once per token set and reused."""

    def __init__(self) -> None:
        self._fallback = AttnProcessor2_0()
        self._context: torch.Tensor | None = None
        self._version = -1
        self._key_value: tuple[torch.Tensor, torch.Tensor] | None = None

    def release(self) -> None:
        self._context, self._key_value, self._version = None, None, -1

    def key_value(self, attn: Attention, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G, heads, tokens, head_dim)`` keys and values, cached for this context tensor."""
        if self._context is context and self._version == _version(context) and self._key_value:
            return self._key_value
        groups, tokens, _ = context.shape
        key, value = attn.to_k(context), attn.to_v(context)
        head_dim = key.shape[-1] // attn.heads
        key = key.view(groups, tokens, attn.heads, head_dim).transpose(1, 2)
        value = value.view(groups, tokens, attn.heads, head_dim).transpose(1, 2)
        self._context, self._version, self._key_value = context, _version(context), (key, value)
        return key, value

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        usable = (
            encoder_hidden_states is not None
            and attention_mask is None
            and hidden_states.ndim == 3
            and hidden_states.shape[0] % encoder_hidden_states.shape[0] == 0
            and plain_cross_attention(attn)
        )
        if not usable:
            return self._fallback(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        batch, length, _ = hidden_states.shape
        groups = encoder_hidden_states.shape[0]
        key, value = self.key_value(attn, encoder_hidden_states)
        query = attn.to_q(hidden_states)
        head_dim = query.shape[-1] // attn.heads
        # all frames of one group attend to the same keys: fold them into one long query sequence
        query = query.view(groups, (batch // groups) * length, attn.heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, key, value)
        out = out.transpose(1, 2).reshape(batch, length, attn.heads * head_dim).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


def use_shared_context_attention(net: nn.Module) -> None:
    """Give every cross-attention of ``net`` its own :class:`SharedContextCrossAttention`."""
    for module in net.modules():
        if isinstance(module, Attention) and module.is_cross_attention:
            module.set_processor(SharedContextCrossAttention())


def release_context_cache(net: nn.Module) -> None:
    """Drop the cached keys/values (and the token tensor they came from) of ``net``."""
    for module in net.modules():
        if isinstance(module, Attention) and isinstance(module.processor, SharedContextCrossAttention):
            module.processor.release()
