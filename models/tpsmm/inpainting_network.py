"""Inpainting network: warps a source U-Net's features by the dense flow and fills occluded parts.

The encoder runs on the source only (so it can be computed once per clip and shared by every
driving frame). The decoder starts from the warped, occlusion-masked deepest features and, at each
finer level, concatenates the warped encoder skip masked by that level's occlusion map. The final
image keeps warped source pixels where they are visible and the decoded pixels elsewhere.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d, warp


class InpaintingNetwork(nn.Module):
    """Generator of the driving frame from the source image and the dense motion outputs."""

    def __init__(
        self,
        num_channels: int = 3,
        block_expansion: int = 64,
        max_features: int = 512,
        num_down_blocks: int = 3,
    ) -> None:
        super().__init__()
        self.num_down_blocks = num_down_blocks
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7)
        down, up, res = [], [], []
        for i in range(num_down_blocks):
            cin = min(max_features, block_expansion * 2**i)
            cout = min(max_features, block_expansion * 2 ** (i + 1))
            down.append(DownBlock2d(cin, cout))
            dec_in = cout if i == num_down_blocks - 1 else 2 * cout
            up.append(UpBlock2d(dec_in, cin))
            res.extend([ResBlock2d(dec_in), ResBlock2d(dec_in)])
        self.down_blocks = nn.ModuleList(down)
        self.up_blocks = nn.ModuleList(up[::-1])
        self.resblock = nn.ModuleList(res[::-1])
        self.final = nn.Conv2d(block_expansion, num_channels, 7, padding=3)

    def encode(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Source feature pyramid, fine to coarse."""
        feats = [self.first(source)]
        for block in self.down_blocks:
            feats.append(block(feats[-1]))
        return feats

    def decode(
        self,
        source: torch.Tensor,
        feats: list[torch.Tensor],
        deformation: torch.Tensor,
        occlusion: list[torch.Tensor],
    ) -> torch.Tensor:
        """Render frames; ``source``/``feats`` may have batch 1 and are broadcast to the flow's batch."""
        b = deformation.shape[0]

        def warped(x: torch.Tensor) -> torch.Tensor:
            return warp(x.expand(b, -1, -1, -1), deformation)

        out = warped(feats[-1]) * occlusion[0]
        skip = out
        for i in range(self.num_down_blocks):
            out = self.resblock[2 * i + 1](self.resblock[2 * i](out))
            out = self.up_blocks[i](out)
            skip = warped(feats[-(i + 2)]) * occlusion[i + 1]
            if i < self.num_down_blocks - 1:
                out = torch.cat([out, skip], dim=1)
        occ = occlusion[-1]
        out = out * (1 - occ) + skip
        out = torch.sigmoid(self.final(out))
        return out * (1 - occ) + warped(source) * occ

    def forward(self, source: torch.Tensor, dense_motion: dict) -> torch.Tensor:
        """Predicted frames (B,C,H,W) in [0, 1]."""
        return self.decode(
            source, self.encode(source), dense_motion["deformation"], dense_motion["occlusion_map"]
        )
