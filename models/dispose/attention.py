"""Cross-attention over a single context token, without the attention.

SVD conditions every cross-attention layer on one token, the reference's CLIP image embedding.
A softmax over one key is exactly 1, so every query's output is that token's value:
``to_out(to_v(context))``, whatever the query. :class:`SingleTokenCrossAttnProcessor` computes
just that. It skips the query and key projections and the attention product, and runs the output
projection once per batch item instead of once per query. The result is the same up to float
rounding. Any other case (longer context, masks, norms or rescaling: not
:func:`plain_cross_attention`) uses diffusers' SDPA processor.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from ..common.attention import plain_cross_attention


class SingleTokenCrossAttnProcessor(AttnProcessor2_0):
    """``AttnProcessor2_0`` with a shortcut for one-token cross-attention (see module docstring)."""

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        *args,
        **kwargs,
    ) -> torch.Tensor:
        shortcut = (
            encoder_hidden_states is not None
            and encoder_hidden_states.shape[1] == 1
            and attention_mask is None
            and hidden_states.ndim == 3
            and plain_cross_attention(attn)
        )
        if not shortcut:
            return super().__call__(
                attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs
            )
        out = attn.to_out[1](attn.to_out[0](attn.to_v(encoder_hidden_states)))
        return out.expand(-1, hidden_states.shape[1], -1)


def use_single_token_cross_attention(module: torch.nn.Module) -> None:
    """Install :class:`SingleTokenCrossAttnProcessor` on every cross-attention layer of ``module``."""
    processor = SingleTokenCrossAttnProcessor()
    for layer in module.modules():
        if isinstance(layer, Attention) and layer.is_cross_attention:
            layer.set_processor(processor)
