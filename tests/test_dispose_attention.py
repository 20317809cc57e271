"""One-token cross-attention shortcut (``models/dispose/attention.py``) against diffusers' SDPA."""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from dispose_tiny import UNET
from motionsuite.models.common.attention import plain_cross_attention
from motionsuite.models.dispose.attention import SingleTokenCrossAttnProcessor
from motionsuite.models.dispose.unet import MimicMotionUNet
from parity_utils import random_state_dict


@torch.no_grad()
def test_single_token_matches_sdpa():
    torch.manual_seed(0)
    attn = Attention(64, cross_attention_dim=32, heads=4, dim_head=16).eval()
    x = torch.randn(3, 50, 64)
    for ctx_len in (1, 2):  # the shortcut for one token, the SDPA fallback for two
        ctx = torch.randn(3, ctx_len, 32)
        attn.set_processor(AttnProcessor2_0())
        ref = attn(x, encoder_hidden_states=ctx)
        attn.set_processor(SingleTokenCrossAttnProcessor())
        queries = []
        hook = attn.to_q.register_forward_hook(lambda *a, seen=queries: seen.append(1))
        out = attn(x, encoder_hidden_states=ctx)
        hook.remove()
        assert out.shape == ref.shape and (out - ref).abs().max() <= 1e-5
        assert bool(queries) == (ctx_len != 1)  # one token: no query projection, the shortcut ran


@torch.no_grad()
def test_unet_uses_shortcut_with_same_output():
    unet = MimicMotionUNet.from_config(UNET).eval()
    unet.load_state_dict(random_state_dict(unet, 11, gain=0.5))
    g = torch.Generator().manual_seed(1)
    args = (torch.randn(2, 3, 8, 8, 8, generator=g), torch.tensor(0.7), torch.randn(2, 1, 32, generator=g))
    args = (*args, torch.tensor([[6.0, 127.0, 0.02]] * 2))
    out = unet(*args, return_dict=False)[0]
    cross = [m for m in unet.modules() if isinstance(m, Attention) and m.is_cross_attention]
    assert cross and all(isinstance(m.processor, SingleTokenCrossAttnProcessor) for m in cross)
    assert all(plain_cross_attention(m) for m in cross)  # so every layer takes the shortcut
    for m in cross:
        m.set_processor(AttnProcessor2_0())
    assert (unet(*args, return_dict=False)[0] - out).abs().max() <= 1e-5
