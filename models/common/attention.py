"""Helpers shared by the pack's diffusers attention processors (DisCo, DisPose)."""

from __future__ import annotations

from diffusers.models.attention_processor import Attention


def plain_cross_attention(attn: Attention) -> bool:
    """True for a plain SD-style cross-attention: ``to_out(softmax(q k^T / sqrt(d)) v)`` with no
    norms, residual or output rescaling. The pack's shortcut processors only replace that form;
    anything else goes to diffusers' own processor."""
    return (
        attn.is_cross_attention
        and attn.spatial_norm is None
        and attn.group_norm is None
        and attn.norm_q is None
        and attn.norm_k is None
        and not attn.norm_cross
        and not attn.residual_connection
        and attn.rescale_output_factor == 1.0
    )
