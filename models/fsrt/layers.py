"""Positional encoding and the pre-norm transformer used by the FSRT encoder and decoder.

FSRT (Rochow et al., "FSRT: Facial Scene Representation Transformer", CVPR 2024) follows SRT/OSRT:
image features and query rays are tagged with sinusoidal encodings of their 2-D pixel position and
of the 10 facial keypoints, and a ViT-style transformer (pre-LayerNorm, GELU MLP) mixes them.
Attention runs through ``torch.nn.functional.scaled_dot_product_attention``, so no (queries x
tokens) matrix is materialised where the backend has a fused kernel.

Module names (``layers.<i>.<0|1>.norm`` / ``.fn``, ``to_qkv``, ``to_q``, ``to_kv``, ``to_out.0``,
``net.0`` / ``net.3``) are the keys of the released checkpoints.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_encoding(coords: torch.Tensor, num_octaves: int, start_octave: int) -> torch.Tensor:
    """coords (..., D) -> (..., 2 * D * num_octaves).

    Frequencies 2^o * pi for o = start_octave .. start_octave + num_octaves - 1; the layout is all
    sines then all cosines, each ordered coordinate-major (c0 o0, c0 o1, ..., c1 o0, ...).
    """
    octaves = torch.arange(start_octave, start_octave + num_octaves, device=coords.device)
    freqs = (2.0 ** octaves.to(coords.dtype)) * math.pi
    scaled = (coords.unsqueeze(-1) * freqs).flatten(-2)
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=-1)


class PreNorm(nn.Module):
    """LayerNorm before the wrapped block (the residual is added by the transformer)."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor, **kwargs) -> torch.Tensor:
        return self.fn(self.norm(x), **kwargs)


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear (the dropout slots of the training code keep the ``net.3`` index)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden_dim), nn.GELU(), nn.Identity(),
                                 nn.Linear(hidden_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Multi-head attention; self-attention (``to_qkv``) or cross-attention to ``z`` (``to_q``/``to_kv``).

    Cross-attention can take precomputed keys/values (``kv``) so that a latent shared by many
    query chunks and frames is projected once instead of once per chunk.
    """

    def __init__(self, dim: int, heads: int, dim_head: int, self_attention: bool = True,
                 kv_dim: int | None = None) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        if self_attention:
            self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        else:
            self.to_q = nn.Linear(dim, inner, bias=False)
            self.to_kv = nn.Linear(kv_dim or dim, 2 * inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim))

    def _split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.heads, -1).transpose(1, 2)

    def keys_values(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-head keys and values (B, heads, N, d) of the latent ``z`` (B, N, kv_dim)."""
        k, v = self.to_kv(z).chunk(2, dim=-1)
        return self._split_heads(k), self._split_heads(v)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if hasattr(self, "to_qkv"):
            q, k, v = map(self._split_heads, self.to_qkv(x).chunk(3, dim=-1))
        else:
            q = self._split_heads(self.to_q(x))
            k, v = kv if kv is not None else self.keys_values(z)
            if k.shape[0] != q.shape[0]:
                k, v = k.expand(q.shape[0], -1, -1, -1), v.expand(q.shape[0], -1, -1, -1)
        out = F.scaled_dot_product_attention(q, k, v)
        b, _, n, _ = out.shape
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class Transformer(nn.Module):
    """``depth`` x (pre-norm attention + residual, pre-norm MLP + residual)."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int,
                 self_attention: bool = True, kv_dim: int | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([
                PreNorm(dim, Attention(dim, heads, dim_head, self_attention, kv_dim)),
                PreNorm(dim, FeedForward(dim, mlp_dim)),
            ])
            for _ in range(depth)
        )

    def cross_keys_values(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Keys/values of ``z`` for every cross-attention layer (computed once, reused per chunk)."""
        return [attn.fn.keys_values(z) for attn, _ in self.layers]

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None,
                kvs: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        for i, (attn, ff) in enumerate(self.layers):
            x = attn(x, z=z, kv=kvs[i] if kvs is not None else None) + x
            x = ff(x) + x
        return x
