"""The temporal half of the Open-Sora 1.2 video VAE (MAGVIT-v2 style, causal 3-D convolutions).

It runs on the 4-channel latents of the per-frame (spatial) SDXL VAE and compresses time 4×:

    encoder: conv_in → stages of ResBlocks (time-stride-2 conv after the 2nd and 3rd) → ResBlocks
             → GroupNorm, SiLU, 1×1×1 conv → quant_conv → (mean, logvar)
    decoder: post_quant_conv → conv1 → ResBlocks → stages in reverse, each time upsampling by a
             conv to C·2 channels and depth-to-space along time → GroupNorm, SiLU, conv_out

Every convolution is causal in time: it sees the current and earlier frames only (zero padding of
k−1 frames in front). Clips are zero-padded in front to a multiple of 4 frames before encoding;
the decoder drops the same number of leading frames.

Module and parameter names follow the released ``temporal_vae.*`` keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TemporalVAEConfig:
    """``VAE_Temporal_SD`` of Open-Sora 1.2 by default."""

    in_out_channels: int = 4
    latent_channels: int = 4
    filters: int = 128
    num_res_blocks: int = 4
    channel_multipliers: tuple[int, ...] = (1, 2, 2, 4)
    temporal_downsample: tuple[bool, ...] = (False, True, True)
    num_groups: int = 32

    @property
    def time_factor(self) -> int:
        return 2 ** sum(self.temporal_downsample)


class CausalConv3d(nn.Module):
    """3-D convolution padded so output frame t depends on input frames ≤ t (strided in time only)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, time_stride: int = 1, bias: bool = True):
        super().__init__()
        time_pad = kernel - 1 + 1 - time_stride
        self.padding = (kernel // 2, kernel // 2, kernel // 2, kernel // 2, time_pad, 0)
        self.conv = nn.Conv3d(cin, cout, kernel, stride=(time_stride, 1, 1), bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, self.padding))


class ResBlock(nn.Module):
    """GN-SiLU-conv ×2 with a 1×1×1 shortcut when the width changes (no conv biases)."""

    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = CausalConv3d(cin, cout, 3, bias=False)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = CausalConv3d(cout, cout, 3, bias=False)
        self.conv3 = CausalConv3d(cin, cout, 1, bias=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.conv3 is None else self.conv3(x))


class Encoder(nn.Module):
    def __init__(self, cfg: TemporalVAEConfig):
        super().__init__()
        widths = [cfg.filters * m for m in cfg.channel_multipliers]
        self.conv_in = CausalConv3d(cfg.in_out_channels, cfg.filters, 3, bias=False)
        self.block_res_blocks = nn.ModuleList()
        self.conv_blocks = nn.ModuleList()
        prev = cfg.filters
        for i, width in enumerate(widths):
            self.block_res_blocks.append(
                nn.ModuleList(
                    ResBlock(prev if j == 0 else width, width, cfg.num_groups)
                    for j in range(cfg.num_res_blocks)
                )
            )
            prev = width
            if i < len(widths) - 1:
                down = cfg.temporal_downsample[i]
                self.conv_blocks.append(
                    CausalConv3d(width, width, 3, time_stride=2) if down else nn.Identity()
                )
        self.res_blocks = nn.ModuleList(
            ResBlock(prev, prev, cfg.num_groups) for _ in range(cfg.num_res_blocks)
        )
        self.norm1 = nn.GroupNorm(cfg.num_groups, prev)
        self.conv2 = CausalConv3d(prev, 2 * cfg.latent_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for i, blocks in enumerate(self.block_res_blocks):
            for block in blocks:
                x = block(x)
            if i < len(self.conv_blocks):
                x = self.conv_blocks[i](x)
        for block in self.res_blocks:
            x = block(x)
        return self.conv2(F.silu(self.norm1(x)))


class Decoder(nn.Module):
    def __init__(self, cfg: TemporalVAEConfig):
        super().__init__()
        widths = [cfg.filters * m for m in cfg.channel_multipliers]
        self.temporal_downsample = tuple(cfg.temporal_downsample)
        top = widths[-1]
        self.conv1 = CausalConv3d(cfg.latent_channels, top, 3)
        self.res_blocks = nn.ModuleList(ResBlock(top, top, cfg.num_groups) for _ in range(cfg.num_res_blocks))
        # Stage i (fine → coarse order, as saved) takes the width of stage i+1 as input.
        self.block_res_blocks = nn.ModuleList()
        for i, width in enumerate(widths):
            prev = widths[i + 1] if i + 1 < len(widths) else top
            self.block_res_blocks.append(
                nn.ModuleList(
                    ResBlock(prev if j == 0 else width, width, cfg.num_groups)
                    for j in range(cfg.num_res_blocks)
                )
            )
        # conv_blocks[i-1] upsamples time after stage i (i ≥ 1) to C·2 channels for depth-to-space.
        self.conv_blocks = nn.ModuleList(
            CausalConv3d(widths[i], widths[i] * 2, 3) if cfg.temporal_downsample[i - 1] else nn.Identity()
            for i in range(1, len(widths))
        )
        self.norm1 = nn.GroupNorm(cfg.num_groups, widths[0])
        self.conv_out = CausalConv3d(widths[0], cfg.in_out_channels, 3)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv1(z)
        for block in self.res_blocks:
            x = block(x)
        for i in reversed(range(len(self.block_res_blocks))):
            for block in self.block_res_blocks[i]:
                x = block(x)
            if i > 0 and self.temporal_downsample[i - 1]:
                x = self.conv_blocks[i - 1](x)
                b, c2, t, h, w = x.shape  # depth to space: channel (c, 2) → time (t, 2)
                x = x.view(b, c2 // 2, 2, t, h, w).permute(0, 1, 3, 2, 4, 5).reshape(b, c2 // 2, t * 2, h, w)
        return self.conv_out(F.silu(self.norm1(x)))


class TemporalVAE(nn.Module):
    """4× temporal compression of spatial latents; ``encode`` returns (mean, logvar)."""

    def __init__(self, cfg: TemporalVAEConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or TemporalVAEConfig()
        self.encoder = Encoder(cfg)
        self.quant_conv = CausalConv3d(2 * cfg.latent_channels, 2 * cfg.latent_channels, 1)
        self.post_quant_conv = CausalConv3d(cfg.latent_channels, cfg.latent_channels, 1)
        self.decoder = Decoder(cfg)

    def latent_frames(self, frames: int) -> int:
        return -(-frames // self.cfg.time_factor)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B,C,T,h,w) → mean, logvar (B,latent,⌈T/4⌉,h,w); T is front-padded to a multiple of 4."""
        pad = -x.shape[2] % self.cfg.time_factor
        x = F.pad(x, (0, 0, 0, 0, pad, 0))
        moments = self.quant_conv(self.encoder(x)).to(x.dtype)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor, num_frames: int) -> torch.Tensor:
        """z (B,latent,t,h,w) → (B,C,num_frames,h,w): the leading padding frames are dropped."""
        x = self.decoder(self.post_quant_conv(z))
        return x[:, :, -num_frames % self.cfg.time_factor :]
