"""Region-aware cross-attention for Omost canvases (plain torch, no ComfyUI).

Both functions take the projected ``q`` (B, HW, heads*d), ``k``/``v`` (B, L, heads*d) that a UNet
cross-attention (``attn2``) computes, and return (B, HW, heads*d) before the output projection.
``cond_or_uncond`` lists, per equal batch chunk, 0 for a conditional and 1 for an unconditional
(negative) chunk, the way ComfyUI orders CFG batches; unconditional chunks are left unregioned.

DenseDiffusion as Omost does it (``OmostCrossAttnProcessor``): the text tokens of all entries are
concatenated; token j of entry i may only be attended by pixels inside mask_i (mask > 0.5), and its
logit is multiplied by ``HW / sum(mask_i)`` so that small regions are not drowned by the big ones::

    S = (Q K^T / sqrt(d)) * scale_j ;  S[mask_j(p) <= 0.5] = -inf ;  Y = softmax(S) V

Here the per-token scale is folded into K (``K_j * scale_j``) and the region restriction is an
additive bias, so torch's fused ``scaled_dot_product_attention`` does the work and the softmax matrix
is never materialised by us.

Attention couple: every entry is attended separately with its own tokens and the outputs are mixed
per pixel with the entries' masks normalised to sum to one: ``Y = sum_i w_i(p) attn(Q, K_i, V_i)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F


def hidden_shape(seq_len: int, latent_h: int, latent_w: int) -> tuple[int, int]:
    """(h, w) of a UNet level with ``seq_len`` pixels, keeping the latent's aspect ratio."""
    ratio = latent_w / latent_h
    h, w = round(math.sqrt(seq_len / ratio)), round(math.sqrt(seq_len * ratio))
    if h * w != seq_len:
        raise ValueError(f"Cannot map {seq_len} pixels to the {latent_h}x{latent_w} latent's aspect.")
    return h, w


def _resize_masks(masks: torch.Tensor, batch: int, h: int, w: int) -> torch.Tensor:
    """(N, H, W) or (N, B, H, W) masks → (B, N, h*w) float, one mask per batch item (repeat/truncate)."""
    if masks.dim() == 3:
        masks = masks[:, None]
    n, mb = masks.shape[:2]
    if mb < batch:
        reps = math.ceil(batch / mb)
        masks = masks.repeat(1, reps, 1, 1)
    masks = masks[:, :batch].float()
    masks = F.interpolate(masks.reshape(n * batch, 1, *masks.shape[-2:]), size=(h, w), mode="nearest-exact")
    return masks.reshape(n, batch, h * w).transpose(0, 1)


def _cond_rows(batch: int, cond_or_uncond: Sequence[int] | None) -> torch.Tensor:
    """Boolean (B,) telling which batch rows are conditional (regioned)."""
    if not cond_or_uncond:
        return torch.ones(batch, dtype=torch.bool)
    chunks = len(cond_or_uncond)
    if batch % chunks:
        raise ValueError(f"Batch {batch} does not split into {chunks} cond/uncond chunks.")
    flags = torch.tensor([c == 0 for c in cond_or_uncond], dtype=torch.bool)
    return flags.repeat_interleave(batch // chunks)


def token_masks(
    masks: torch.Tensor, token_counts: Sequence[int], batch: int, h: int, w: int,
    cond_or_uncond: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token mask values (B, hw, L) and per-token logit scales (B, L) for DenseDiffusion.

    Unconditional rows get mask 1 and scale 1 (ordinary attention over their own tokens).
    """
    m = _resize_masks(masks, batch, h, w)  # (B, N, hw)
    counts = torch.tensor(list(token_counts))
    if m.shape[1] != len(counts):
        raise ValueError(f"{m.shape[1]} masks for {len(counts)} token groups; need one mask per entry.")
    m = m.repeat_interleave(counts, dim=1).transpose(1, 2)  # (B, hw, L)
    scale = (h * w) / m.sum(dim=1).clamp_min(1e-8)  # (B, L)
    uncond = ~_cond_rows(batch, cond_or_uncond)
    m[uncond] = 1.0
    scale[uncond] = 1.0
    return m, scale


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def dense_diffusion_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, masks: torch.Tensor,
    token_counts: Sequence[int], latent_hw: tuple[int, int], cond_or_uncond: Sequence[int] | None = None,
) -> torch.Tensor:
    """Omost's masked, area-scaled cross-attention through SDPA with an additive bias."""
    b, n, _ = q.shape
    if k.shape[1] != sum(token_counts):
        raise ValueError(f"Context has {k.shape[1]} tokens but the canvas entries have {sum(token_counts)}.")
    h, w = hidden_shape(n, *latent_hw)
    m, scale = token_masks(masks.to(q.device), token_counts, b, h, w, cond_or_uncond)
    k_scaled = k * scale.to(k.dtype)[:, :, None]
    bias = torch.zeros(m.shape, dtype=q.dtype, device=q.device)
    bias.masked_fill_(m <= 0.5, float("-inf"))
    out = F.scaled_dot_product_attention(_heads(q, heads), _heads(k_scaled, heads), _heads(v, heads),
                                         attn_mask=bias[:, None])
    return _merge(out)


def dense_diffusion_attention_naive(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, masks: torch.Tensor,
    token_counts: Sequence[int], latent_hw: tuple[int, int], cond_or_uncond: Sequence[int] | None = None,
) -> torch.Tensor:
    """The formula as written (materialised scores); the reference for tests and the bench."""
    b, n, c = q.shape
    h, w = hidden_shape(n, *latent_hw)
    m, scale = token_masks(masks, token_counts, b, h, w, cond_or_uncond)
    qh, kh, vh = _heads(q, heads), _heads(k, heads), _heads(v, heads)
    scores = (qh @ kh.transpose(-1, -2)) / math.sqrt(c // heads) * scale[:, None, None, :]
    scores = scores.masked_fill((m <= 0.5)[:, None], float("-inf"))
    return _merge(scores.softmax(dim=-1) @ vh)


def couple_weights(masks: torch.Tensor, batch: int, h: int, w: int,
                   cond_or_uncond: Sequence[int] | None = None) -> torch.Tensor:
    """(B, N, hw) mixing weights: masks normalised per pixel; uncond rows use entry 0 only."""
    m = _resize_masks(masks, batch, h, w)
    total = m.sum(dim=1, keepdim=True)
    if bool((total[_cond_rows(batch, cond_or_uncond)] <= 0).any()):
        raise ValueError("Some pixels are covered by no canvas entry; keep the global entry (full mask).")
    wts = m / total.clamp_min(1e-8)
    uncond = ~_cond_rows(batch, cond_or_uncond)
    wts[uncond] = 0.0
    wts[uncond, 0] = 1.0
    return wts


def attention_couple(
    q: torch.Tensor, contexts: Sequence[tuple[torch.Tensor, torch.Tensor]], heads: int, masks: torch.Tensor,
    latent_hw: tuple[int, int], cond_or_uncond: Sequence[int] | None = None,
) -> torch.Tensor:
    """Per-entry cross-attention mixed by normalised masks; one attention call per entry."""
    b, n, _ = q.shape
    h, w = hidden_shape(n, *latent_hw)
    wts = couple_weights(masks.to(q.device), b, h, w, cond_or_uncond).to(q.dtype)
    qh = _heads(q, heads)
    out = torch.zeros_like(q)
    for i, (k, v) in enumerate(contexts):
        y = _merge(F.scaled_dot_product_attention(qh, _heads(k, heads), _heads(v, heads)))
        out = out + y * wts[:, i, :, None]
    return out
