"""MRFA's image encoder/decoder (the "generator" inside the refinement decoder).

``encode`` returns source features at six scales (coarsest first); ``decode`` fuses the warped
features level by level, each refined warp gated by its occlusion map and concatenated with the
coarse (prior-motion) warp, and blends the final image with the warped source pixels. Key names
match ``decoder.generator.*`` of the released checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm import fast_kernels as fast
from ..fomm.primitives import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d


class ChannelBlock2d(nn.Module):
    """BN -> ReLU -> 3x3 conv halving the channels (merges refined and coarse features)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = fast.FastConv2d(features, features // 2, 3, padding=1)
        self.norm1 = nn.BatchNorm2d(features, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(F.relu(self.norm1(x)))


class RefinementGenerator(nn.Module):
    """Source encoder (6 scales) and the occlusion-gated decoder of the refined warps."""

    def __init__(
        self, num_channels: int, block_expansion: int, max_features: int, num_up_blocks: int
    ) -> None:
        super().__init__()
        self.num_up_blocks = num_up_blocks
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)
        widths = [min(max_features, block_expansion * 2**i) for i in range(num_up_blocks + 1)]
        self.down_blocks = nn.ModuleList(DownBlock2d(widths[i], widths[i + 1]) for i in range(num_up_blocks))
        order = list(reversed(range(num_up_blocks)))
        self.up_blocks = nn.ModuleList(UpBlock2d(widths[i + 1], widths[i]) for i in order)
        self.resblock = nn.ModuleList(ResBlock2d(widths[i + 1]) for i in order)
        self.channel_block = nn.ModuleList(ChannelBlock2d(2 * widths[i + 1]) for i in order)
        self.final = fast.FastConv2d(block_expansion, num_channels, 7, padding=3)
        self.feature_channels = list(reversed(widths))  # coarsest first, as ``encode`` returns

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.first(x)]
        for block in self.down_blocks:
            feats.append(block(feats[-1]))
        return feats[::-1]

    def decode(
        self,
        warped: list[torch.Tensor],
        warped_image: torch.Tensor,
        occlusion: list[torch.Tensor],
        warped_coarse: list[torch.Tensor],
    ) -> torch.Tensor:
        out = torch.cat([warped[0] * occlusion[0], warped_coarse[0]], dim=1)
        for i in range(self.num_up_blocks):
            out = self.up_blocks[i](self.resblock[i](self.channel_block[i](out)))
            out = warped[i + 1] * occlusion[i + 1] + out * (1 - occlusion[i + 1])
            if i != self.num_up_blocks - 1:
                out = torch.cat([out, warped_coarse[i + 1]], dim=1)
        out = torch.sigmoid(self.final(out))
        return out * (1 - occlusion[-1]) + warped_image * occlusion[-1]
