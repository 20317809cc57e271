"""STDiT: the spatial-temporal diffusion transformer of Open-Sora 1.0.

PixArt-α blocks with a temporal self-attention inserted after the spatial one::

    x (B,4,T,H,W) ─ patchify (1×2×2) ─ + fixed 2-D sin-cos table (grid / space_scale)
    t ─ sinusoid ─ MLP = t ;  t_block(t) → 6 modulation vectors (adaLN-single)
    block: spatial self-attn on LN-modulated tokens, gated
           temporal self-attn on the *raw* tokens (+ 1-D sin-cos table / time_scale in block 0
           only), gated with the same gate as the spatial branch
           cross-attn to T5 tokens, MLP (modulated)
    final: LN, modulate with t, linear → patches → (B, 2·4, T, H, W)

The released checkpoints (``OpenSora-v1-*.pth``) store the two positional tables, but the upstream
loader discards them and rebuilds them from the scales; here they are computed for the actual
latent size at run time (identical to the stored ones at the trained size), so they are not part
of the state dict. Attention is torch SDPA, layer norms plain PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .config import ReleasedConfig
from .stdit2 import Attention, FinalLayer
from .stdit3 import CaptionProjection, CrossAttention, Mlp, PatchEmbed3D, ScalarEmbedder, modulate


@dataclass
class STDiTConfig(ReleasedConfig):
    """STDiT-XL/2 by default; ``space_scale``/``time_scale`` come with each released checkpoint
    (0.5 for the 256² models, 1.0 for 512²; time 1.0, or 2/3 for 64 frames)."""

    in_channels: int = 4
    patch_size: tuple[int, int, int] = (1, 2, 2)
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    pred_sigma: bool = True
    caption_channels: int = 4096
    model_max_length: int = 120
    space_scale: float = 1.0
    time_scale: float = 1.0
    extra: dict = field(default_factory=dict, repr=False)

    ARCHITECTURE = "STDiT"
    MODEL_TYPE = "stdit"


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """MAE-style table ``[sin(p·ω), cos(p·ω)]``, ω = 10000^(-k/(dim/2)), computed in float64."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = positions.double().reshape(-1, 1) * omega[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(height: int, width: int, dim: int, scale: float) -> torch.Tensor:
    """(height·width, dim) table, row-major tokens; first half encodes the column, second the row."""
    rows = torch.arange(height, dtype=torch.float32) / scale
    cols = torch.arange(width, dtype=torch.float32) / scale
    col_emb = sincos_1d(cols, dim // 2)[None].expand(height, width, dim // 2)
    row_emb = sincos_1d(rows, dim // 2)[:, None].expand(height, width, dim // 2)
    return torch.cat([col_emb, row_emb], dim=-1).reshape(height * width, dim).float()


class STDiTBlock(nn.Module):
    """One spatial + temporal block on tokens (B, T, S, C); ``mod`` is (B, 1, 6, C)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn = Attention(dim, num_heads, qk_norm=False)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)
        self.attn_temp = Attention(dim, num_heads, qk_norm=False)

    def forward(self, x, y, y_mask, mod: torch.Tensor, temporal_pos: torch.Tensor | None = None):
        b, t, s, c = x.shape
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            (self.scale_shift_table + mod).unsqueeze(3).unbind(dim=2)
        )
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        x = x + gate_msa * self.attn(h.reshape(b * t, s, c)).view(b, t, s, c)

        h = x.transpose(1, 2).reshape(b * s, t, c)
        if temporal_pos is not None:
            h = h + temporal_pos
        x = x + gate_msa * self.attn_temp(h).view(b, s, t, c).transpose(1, 2)

        x = x + self.cross_attn(x.reshape(b, t * s, c), y, y_mask).view(b, t, s, c)
        return x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class STDiT(nn.Module):
    """Open-Sora 1.0 denoiser. ``forward`` returns (B, out_channels, T, H, W) in fp32."""

    def __init__(self, config: STDiTConfig):
        super().__init__()
        self.config = config
        c = config.hidden_size
        self.x_embedder = PatchEmbed3D(config.patch_size, config.in_channels, c)
        self.t_embedder = ScalarEmbedder(c)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))
        self.y_embedder = CaptionProjection(config.caption_channels, c, config.model_max_length)
        self.blocks = nn.ModuleList(
            STDiTBlock(c, config.num_heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.final_layer = FinalLayer(c, math.prod(config.patch_size), config.out_channels)

    @property
    def dtype(self) -> torch.dtype:
        return self.x_embedder.proj.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.x_embedder.proj.weight.device

    def null_caption(self, batch: int) -> torch.Tensor:
        """The learned unconditional caption (B, L, caption_channels)."""
        return self.y_embedder.y_embedding[None].expand(batch, -1, -1)

    def embed_caption(self, y: torch.Tensor, mask: torch.Tensor | None, batch: int):
        """Project T5 features (B,[1,]L,D) → (B,L,C) and a bool key mask (B,L) or None."""
        if y.dim() == 4:
            y = y.squeeze(1)
        y = self.y_embedder(y)
        if y.shape[0] != batch:
            y = y.repeat(batch // y.shape[0], 1, 1)
        if mask is None:
            return y, None
        mask = mask.reshape(mask.shape[0], -1).bool().to(y.device)
        if mask.shape[0] != batch:
            mask = mask.repeat(batch // mask.shape[0], 1)
        return y, mask

    def forward(
        self, x: torch.Tensor, timestep: torch.Tensor, y: torch.Tensor, mask: torch.Tensor | None = None, **_
    ) -> torch.Tensor:
        """x (B,C,T,H,W) latents; timestep (B,) in [0, 1000); y (B,[1,]L,D) T5 features; mask (B,L)."""
        dtype, dev = self.dtype, x.device
        b, _, frames, lat_h, lat_w = x.shape
        x, timestep, y = x.to(dtype), timestep.to(dtype), y.to(dtype)
        pt, ph, pw = self.config.patch_size
        nt, nh, nw = -(-frames // pt), -(-lat_h // ph), -(-lat_w // pw)

        tokens = self.x_embedder(x).flatten(3).permute(0, 2, 3, 1)  # (B, T, S, C)
        c = tokens.shape[-1]
        tokens = tokens + sincos_2d(nh, nw, c, self.config.space_scale).to(dev, dtype)
        temporal_pos = (
            sincos_1d(torch.arange(nt, dtype=torch.float64) / self.config.time_scale, c)
            .float()
            .to(dev, dtype)
        )

        temb = self.t_embedder(timestep, dtype)
        mod = self.t_block(temb).unflatten(-1, (6, -1))[:, None]  # (B, 1, 6, C)
        y, y_mask = self.embed_caption(y, mask, b)

        for i, block in enumerate(self.blocks):
            tokens = block(tokens, y, y_mask, mod, temporal_pos if i == 0 else None)

        out = self.final_layer(tokens, temb)
        return self.unpatchify(out, nt, nh, nw)[:, :, :frames, :lat_h, :lat_w].float()

    def unpatchify(self, x: torch.Tensor, nt: int, nh: int, nw: int) -> torch.Tensor:
        pt, ph, pw = self.config.patch_size
        c = self.config.out_channels
        x = x.reshape(x.shape[0], nt, nh, nw, pt, ph, pw, c).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(x.shape[0], c, nt * pt, nh * ph, nw * pw)
