"""MRFA keypoint detector: HRNet features + a token transformer (TokenPose-B, "mtia" prior).

The 1/4-resolution HRNet features are cut into 4x4 patches (256 tokens at 256 px input), embedded,
given a fixed 2-D sine position code, and processed together with 2K learned query tokens: the
first K read out keypoint positions, the next K their 2x2 jacobians. With the 'sine-full' layout the
position code is re-added to the patch tokens before every layer after the first. State-dict names
match ``encoder.*`` of the released checkpoints (``pre_feature.*``, ``transformer.*``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import MRFAConfig
from .hrnet import HRNetBase


def sine_position_embedding(h: int, w: int, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """(1, h*w, dim): first half encodes the row, second half the column, as sin/cos pairs."""
    half = dim // 2
    eps = 1e-6
    ys = torch.arange(1, h + 1, dtype=torch.float32)[:, None].expand(h, w)
    xs = torch.arange(1, w + 1, dtype=torch.float32)[None, :].expand(h, w)
    ys = ys / (h + eps) * 2 * math.pi
    xs = xs / (w + eps) * 2 * math.pi
    freq = temperature ** (2 * (torch.arange(half, dtype=torch.float32) // 2) / half)

    def encode(v: torch.Tensor) -> torch.Tensor:
        v = v[..., None] / freq
        return torch.stack((v[..., 0::2].sin(), v[..., 1::2].cos()), dim=-1).flatten(-2)

    return torch.cat([encode(ys), encode(xs)], dim=-1).reshape(1, h * w, dim)


class Attention(nn.Module):
    """Multi-head self-attention (scaled per head) via SDPA."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.to_qkv = nn.Linear(dim, dim * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.to_qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, d))


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreNorm(nn.Module):
    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Residual(nn.Module):
    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x) + x


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    Residual(PreNorm(dim, Attention(dim, heads))),
                    Residual(PreNorm(dim, FeedForward(dim, mlp_dim))),
                ]
            )
            for _ in range(depth)
        )


class TokenTransformer(nn.Module):
    """Patch tokens + 2K query tokens -> keypoints (B, K, 2) in [-1, 1] and jacobians (B, K, 2, 2)."""

    def __init__(
        self,
        feature_size: tuple[int, int],
        patch_size: tuple[int, int],
        num_keypoints: int,
        dim: int,
        depth: int,
        heads: int,
        mlp_dim: int,
        channels: int,
    ) -> None:
        super().__init__()
        gh, gw = feature_size[0] // patch_size[0], feature_size[1] // patch_size[1]
        self.patch_size = patch_size
        self.num_keypoints = num_keypoints
        self.keypoint_token = nn.Parameter(torch.zeros(1, 2 * num_keypoints, dim))
        # Stored in the checkpoints as a (frozen) parameter; rebuilt here identically.
        self.pos_embedding = nn.Parameter(sine_position_embedding(gh, gw, dim), requires_grad=False)
        self.patch_to_embedding = nn.Linear(channels * patch_size[0] * patch_size[1], dim)
        self.transformer = Transformer(dim, depth, heads, mlp_dim)
        self.mlp_head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 2))
        self.mlp_head_jacobian = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, 4))

    def forward(self, feature: torch.Tensor) -> dict[str, torch.Tensor]:
        b, c, h, w = feature.shape
        p1, p2 = self.patch_size
        # patch layout (p1 p2 c) per token, row-major over the patch grid
        x = (
            feature.view(b, c, h // p1, p1, w // p2, p2)
            .permute(0, 2, 4, 3, 5, 1)
            .reshape(b, (h // p1) * (w // p2), p1 * p2 * c)
        )
        x = self.patch_to_embedding(x)
        n = x.shape[1]
        pos = self.pos_embedding[:, :n].to(x.dtype)
        k2 = 2 * self.num_keypoints
        x = torch.cat([self.keypoint_token.to(x.dtype).expand(b, -1, -1), x + pos], dim=1)
        for idx, (attn, ff) in enumerate(self.transformer.layers):
            if idx > 0:  # 'sine-full': position code re-added before every later layer
                x = torch.cat([x[:, :k2], x[:, k2:] + pos], dim=1)
            x = ff(attn(x))
        k = self.num_keypoints
        value = 2 * torch.sigmoid(self.mlp_head(x[:, :k])) - 1
        jacobian = self.mlp_head_jacobian(x[:, k:k2]).view(b, k, 2, 2)
        return {"value": value, "jacobian": jacobian}


class KeypointTransformer(nn.Module):
    """Image (B, 3, S, S) in [0, 1] -> {'value': (B, K, 2), 'jacobian': (B, K, 2, 2)}.

    S is the training size (``cfg.image_size``): the fixed position code has one entry per patch of
    an S x S image, so callers resize to S first.
    """

    def __init__(self, cfg: MRFAConfig) -> None:
        super().__init__()
        self.pre_feature = HRNetBase(
            cfg.hr_stage2_channels,
            cfg.hr_stage2_blocks,
            cfg.hr_stage2_modules,
            cfg.hr_stage3_channels,
            cfg.hr_stage3_blocks,
            cfg.hr_stage3_modules,
        )
        self.image_size = cfg.image_size
        self.transformer = TokenTransformer(
            feature_size=(cfg.image_size // 4, cfg.image_size // 4),
            patch_size=(cfg.kp_patch_size, cfg.kp_patch_size),
            num_keypoints=cfg.num_kp,
            dim=cfg.kp_dim,
            depth=cfg.kp_depth,
            heads=cfg.kp_heads,
            mlp_dim=cfg.kp_dim * cfg.kp_mlp_ratio,
            channels=self.pre_feature.out_channels,
        )

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.transformer(self.pre_feature(image))
