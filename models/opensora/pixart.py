"""PixArt-α / PixArt-Σ: the image diffusion transformer Open-Sora builds on.

A DiT with adaLN-single and T5 cross-attention::

    x (B,4,H,W) ─ patchify (2×2) ─ + 2-D sin-cos (grid / space_scale · base_size / n)
    t ─ sinusoid ─ MLP = t   (+ [csize(h), csize(w), ar] embedders for the multi-scale "MS" models)
    t_block(t) → 6 modulation vectors shared by all blocks
    block: LN-modulated self-attention (gated), cross-attention to T5 tokens, LN-modulated MLP (gated)
    final: LN, modulate with t, linear → patches → (B, 2·4, H, W)

The released files (``PixArt-XL-2-{256x256,512x512,1024-MS}.pth``, ``PixArt-Sigma-XL-2-*.pth``)
load unchanged apart from their 2-D patch kernel, which is stored here as the 3-D kernel
Open-Sora uses (one frame). The positional table is computed for the actual latent size with the
trained ``base_size``, so other resolutions work as in the MS models. Open-Sora's
``no_temporal_pos_emb=False`` variant (adds the 1-frame temporal table) is kept for its video
fine-tunes. Attention is torch SDPA, layer norms plain PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .config import ReleasedConfig
from .stdit import sincos_1d
from .stdit2 import Attention, FinalLayer, SizeEmbedder
from .stdit3 import CaptionProjection, CrossAttention, Mlp, PatchEmbed3D, ScalarEmbedder, modulate


@dataclass
class PixArtConfig(ReleasedConfig):
    """PixArt-XL/2 by default. ``input_size`` is the trained latent size (H, W); ``base_size`` (in
    patches) defaults to ⌊√(patches at input_size)⌋; ``micro_conditions`` marks the MS models."""

    in_channels: int = 4
    patch_size: tuple[int, int] = (2, 2)
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    pred_sigma: bool = True
    caption_channels: int = 4096
    model_max_length: int = 120
    input_size: tuple[int, int] = (32, 32)
    base_size: int | None = None
    space_scale: float = 1.0
    time_scale: float = 1.0
    no_temporal_pos_emb: bool = True
    micro_conditions: bool = False
    extra: dict = field(default_factory=dict, repr=False)

    ARCHITECTURE = "PixArt"
    MODEL_TYPE = "pixart"
    TUPLE_FIELDS = ('patch_size', 'input_size')

    @property
    def grid_base(self) -> int:
        if self.base_size is not None:
            return self.base_size
        return int(
            math.sqrt((self.input_size[0] // self.patch_size[0]) * (self.input_size[1] // self.patch_size[1]))
        )


def pixart_pos_embed(height: int, width: int, dim: int, scale: float, base_size: int) -> torch.Tensor:
    """(height·width, dim) table; grid = arange(n) / scale · base_size / n, column half first."""
    rows = torch.arange(height, dtype=torch.float32) / scale * (base_size / height)
    cols = torch.arange(width, dtype=torch.float32) / scale * (base_size / width)
    col_emb = sincos_1d(cols, dim // 2)[None].expand(height, width, dim // 2)
    row_emb = sincos_1d(rows, dim // 2)[:, None].expand(height, width, dim // 2)
    return torch.cat([col_emb, row_emb], dim=-1).reshape(height * width, dim).float()


class PixArtBlock(nn.Module):
    """adaLN-single block on tokens (B, N, C); ``mod`` is (B, 6, C)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn = Attention(dim, num_heads, qk_norm=False)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(self, x, y, y_mask, mod: torch.Tensor) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            (self.scale_shift_table + mod).unsqueeze(2).unbind(dim=1)
        )
        x = x + gate_msa * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        x = x + self.cross_attn(x, y, y_mask)
        return x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class PixArt(nn.Module):
    """PixArt-α/Σ denoiser (eps + learned variance). ``forward`` returns fp32 of the input's rank."""

    def __init__(self, config: PixArtConfig):
        super().__init__()
        self.config = config
        c = config.hidden_size
        self.x_embedder = PatchEmbed3D((1, *config.patch_size), config.in_channels, c)
        self.t_embedder = ScalarEmbedder(c)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))
        self.y_embedder = CaptionProjection(config.caption_channels, c, config.model_max_length)
        self.blocks = nn.ModuleList(
            PixArtBlock(c, config.num_heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.final_layer = FinalLayer(c, math.prod(config.patch_size), config.out_channels)
        if config.micro_conditions:
            if c % 3:
                raise ValueError(f"PixArt-MS hidden_size must be divisible by 3 (got {c})")
            self.csize_embedder = SizeEmbedder(c // 3)
            self.ar_embedder = SizeEmbedder(c // 3)

    @property
    def dtype(self) -> torch.dtype:
        return self.x_embedder.proj.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.x_embedder.proj.weight.device

    def null_caption(self, batch: int) -> torch.Tensor:
        """The learned unconditional caption (B, L, caption_channels)."""
        return self.y_embedder.y_embedding[None].expand(batch, -1, -1)

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor | None = None,
        height=None,
        width=None,
        ar=None,
        **_: object,
    ) -> torch.Tensor:
        """x (B,C,H,W) or (B,C,1,H,W) latents; timestep (B,) in [0, 1000); y (B,[1,]L,D) T5 features;
        mask (B,L). MS models also take the image's pixel ``height``/``width`` (default 8× the
        latent) and ``ar`` = height/width."""
        video = x.dim() == 5
        if video:
            if x.shape[2] != 1:
                raise ValueError(f"PixArt denoises single images; got {x.shape[2]} frames")
            x = x[:, :, 0]
        dtype, dev = self.dtype, x.device
        b, _, lat_h, lat_w = x.shape
        x, timestep, y = x.to(dtype), timestep.to(dtype), y.to(dtype)
        ph, pw = self.config.patch_size
        nh, nw = -(-lat_h // ph), -(-lat_w // pw)
        cfg = self.config

        tokens = self.x_embedder(x[:, :, None]).flatten(2).transpose(1, 2)  # (B, N, C)
        c = tokens.shape[-1]
        tokens = tokens + pixart_pos_embed(nh, nw, c, cfg.space_scale, cfg.grid_base).to(dev, dtype)
        if not cfg.no_temporal_pos_emb:  # one frame: position 0 of the 1-D table
            tokens = tokens + sincos_1d(torch.zeros(1, dtype=torch.float64), c).float().to(dev, dtype)

        temb = self.t_embedder(timestep, dtype)
        if cfg.micro_conditions:
            h = torch.as_tensor(lat_h * 8 if height is None else height, dtype=torch.float32, device=dev)
            w = torch.as_tensor(lat_w * 8 if width is None else width, dtype=torch.float32, device=dev)
            h, w = h.reshape(-1).expand(b), w.reshape(-1).expand(b)
            ratio = h / w if ar is None else torch.as_tensor(ar, dtype=torch.float32, device=dev).reshape(-1)
            temb = temb + torch.cat(
                [
                    self.csize_embedder(torch.stack([h, w], 1), dtype),
                    self.ar_embedder(ratio.expand(b)[:, None], dtype),
                ],
                dim=1,
            )
        mod = self.t_block(temb).unflatten(-1, (6, -1))  # (B, 6, C)

        if y.dim() == 4:
            y = y.squeeze(1)
        y = self.y_embedder(y)
        if y.shape[0] != b:
            y = y.repeat(b // y.shape[0], 1, 1)
        y_mask = None
        if mask is not None:
            y_mask = mask.reshape(mask.shape[0], -1).bool().to(dev)
            y_mask = y_mask.repeat(b // y_mask.shape[0], 1) if y_mask.shape[0] != b else y_mask

        for block in self.blocks:
            tokens = block(tokens, y, y_mask, mod)

        out = self.final_layer(tokens[:, None, :, :], temb)[:, 0]  # (B, N, ph·pw·Cout)
        co = cfg.out_channels
        out = out.reshape(b, nh, nw, ph, pw, co).permute(0, 5, 1, 3, 2, 4).reshape(b, co, nh * ph, nw * pw)
        out = out[:, :, :lat_h, :lat_w].float()
        return out[:, :, None] if video else out
