"""Region attention: SDPA DenseDiffusion equals Omost's naive formula; attention couple equals its definition.

The naive reference writes out ``softmax(mask(-inf) * (QK^T/sqrt(d)) * HW/area) V`` as in
ComfyUI_densediffusion / Omost's ``OmostCrossAttnProcessor`` (see docs/omost.md).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from motionsuite.pipelines.omost import attention as at
from motionsuite.pipelines.omost.canvas import parse_reply
from motionsuite.pipelines.omost.render import render_masks

_FIX = Path(__file__).parent / "fixtures" / "omost" / "canvas_parity.json"
CASES = json.loads(_FIX.read_text(encoding="utf-8"))["cases"]


def _setup(batch, latent_hw=(16, 24), level=2, heads=4, d=8, counts=(5, 3, 7, 2, 4)):
    lh, lw = latent_hw
    n = (lh // level) * (lw // level)
    q = torch.randn(batch, n, heads * d)
    k = torch.randn(batch, sum(counts), heads * d) * 3
    v = torch.randn(batch, sum(counts), heads * d)
    entries = parse_reply(CASES[0]["reply"]).entries
    masks = render_masks(entries, lh * 8, lw * 8)
    return q, k, v, heads, masks, counts, latent_hw


@pytest.mark.parametrize("cond_or_uncond", [None, [1, 0], [0, 1], [0, 0, 1]])
def test_dense_diffusion_sdpa_equals_naive(cond_or_uncond):
    batch = 2 * len(cond_or_uncond) if cond_or_uncond else 2
    q, k, v, heads, masks, counts, hw = _setup(batch)
    fast = at.dense_diffusion_attention(q, k, v, heads, masks, counts, hw, cond_or_uncond)
    ref = at.dense_diffusion_attention_naive(q, k, v, heads, masks, counts, hw, cond_or_uncond)
    assert (fast - ref).abs().max().item() <= 1e-5


def test_dense_diffusion_batched_masks_and_uncond_plain():
    q, k, v, heads, masks, counts, hw = _setup(4)
    per_item = torch.stack([masks, masks.flip(-1)], dim=1)  # (N, 2, H, W): one mask set per batch item
    fast = at.dense_diffusion_attention(q, k, v, heads, per_item, counts, hw, [1, 0])
    ref = at.dense_diffusion_attention_naive(q, k, v, heads, per_item, counts, hw, [1, 0])
    assert (fast - ref).abs().max().item() <= 1e-5
    plain = torch.nn.functional.scaled_dot_product_attention(
        at._heads(q[:2], heads), at._heads(k[:2], heads), at._heads(v[:2], heads))
    assert torch.allclose(fast[:2], at._merge(plain), atol=1e-5)  # uncond chunk is ordinary attention
    assert not torch.allclose(fast[2:], at._merge(torch.nn.functional.scaled_dot_product_attention(
        at._heads(q[2:], heads), at._heads(k[2:], heads), at._heads(v[2:], heads))), atol=1e-3)


def test_attention_couple_definition():
    q, _, _, heads, masks, _, hw = _setup(4)
    contexts = [(torch.randn(4, 6, q.shape[-1]), torch.randn(4, 6, q.shape[-1])) for _ in range(len(masks))]
    out = at.attention_couple(q, contexts, heads, masks, hw, [1, 0])
    h, w = at.hidden_shape(q.shape[1], *hw)
    small = torch.nn.functional.interpolate(masks[:, None], size=(h, w), mode="nearest-exact")[:, 0]
    wts = small.flatten(1) / small.flatten(1).sum(0, keepdim=True)  # (N, hw)
    d = q.shape[-1] // heads
    ref = torch.zeros_like(q)
    for i, (k, v) in enumerate(contexts):
        qh, kh, vh = at._heads(q, heads), at._heads(k, heads), at._heads(v, heads)
        y = at._merge(((qh @ kh.transpose(-1, -2)) / math.sqrt(d)).softmax(-1) @ vh)
        for row in range(4):
            ref[row] += y[row] * (wts[i][:, None] if row >= 2 else float(i == 0))
    assert (out - ref).abs().max().item() <= 1e-5


def test_errors():
    q, k, v, heads, masks, counts, hw = _setup(2)
    with pytest.raises(ValueError, match="tokens"):
        at.dense_diffusion_attention(q, k[:, :-1], v[:, :-1], heads, masks, counts, hw)
    with pytest.raises(ValueError, match="aspect"):
        at.hidden_shape(37, 16, 24)
    with pytest.raises(ValueError, match="no canvas entry"):
        at.attention_couple(q, [(k, v)], heads, masks[1:2], hw)
