"""Dense motion network: K TPS warps + background -> optical flow and multi-resolution occlusions.

At 1/4 resolution the source is warped by the identity (background) and the K TPS transforms; the
warped copies and keypoint heatmap differences go through an hourglass whose finest level predicts
soft contribution maps (softmax over K+1) that blend the transforms into one flow (paper Eq. 6).
Occlusion masks are read off the two finest hourglass levels and off two extra upsampling blocks,
giving masks at 1/8, 1/4, 1/2 and full resolution for the inpainting network's four levels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import AntiAliasInterpolation2d, Hourglass, UpBlock2d, coordinate_grid, kp2gaussian
from .tps import apply_tps, fit_tps

NUM_OCCLUSIONS = 4


class DenseMotionNetwork(nn.Module):
    """Flow (B,h,w,2) in source coordinates and occlusion masks, for batches of frames."""

    def __init__(
        self,
        block_expansion: int = 64,
        num_blocks: int = 5,
        max_features: int = 1024,
        num_tps: int = 10,
        num_channels: int = 3,
        scale_factor: float = 0.25,
        kp_variance: float = 0.01,
    ) -> None:
        super().__init__()
        self.num_tps = num_tps
        self.kp_variance = kp_variance
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)
        in_features = num_channels * (num_tps + 1) + num_tps * 5 + 1
        self.hourglass = Hourglass(block_expansion, in_features, num_blocks, max_features)
        levels = self.hourglass.out_channels
        finest = levels[-1]
        self.maps = nn.Conv2d(finest, num_tps + 1, 7, padding=3)

        self.num_up = int(math.log2(1 / scale_factor))
        self.up = nn.ModuleList(UpBlock2d(finest // 2**i, finest // 2 ** (i + 1)) for i in range(self.num_up))
        from_hourglass = NUM_OCCLUSIONS - self.num_up
        occ_channels = levels[len(levels) - from_hourglass :] + [
            finest // 2 ** (i + 1) for i in range(self.num_up)
        ]
        self.occlusion = nn.ModuleList(nn.Conv2d(c, 1, 7, padding=3) for c in occ_channels)

    def transformations(
        self, kp_driving: torch.Tensor, kp_source: torch.Tensor, h: int, w: int
    ) -> torch.Tensor:
        """Sampling grids (B, K+1, h, w, 2): identity (background) then the K TPS warps."""
        b = kp_driving.shape[0]
        kd = kp_driving.view(b, self.num_tps, 5, 2)
        ks = kp_source.view(b, self.num_tps, 5, 2)
        weights, affine = fit_tps(kd, ks)
        grid = coordinate_grid(h, w, kp_driving.dtype, kp_driving.device)
        tps = apply_tps(grid.view(-1, 2), kd, weights, affine).view(b, self.num_tps, h, w, 2)
        identity = grid.expand(b, 1, h, w, 2)
        return torch.cat([identity, tps], dim=1)

    def forward(
        self, source: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor
    ) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """source (B,C,H,W); kp_* (B, 5K, 2) in [-1, 1]. The source batch may be 1 (broadcast)."""
        b = kp_driving.shape[0]
        if self.scale_factor != 1:
            source = self.down(source)
        source = source.expand(b, -1, -1, -1)
        _, c, h, w = source.shape

        heat = kp2gaussian(kp_driving, h, w, self.kp_variance) - kp2gaussian(
            kp_source, h, w, self.kp_variance
        )
        heat = torch.cat([heat.new_zeros(b, 1, h, w), heat], dim=1)

        grids = self.transformations(kp_driving, kp_source, h, w)  # (B,K+1,h,w,2)
        k1 = self.num_tps + 1
        src = source.unsqueeze(1).expand(b, k1, c, h, w).reshape(b * k1, c, h, w)
        deformed = F.grid_sample(src, grids.reshape(b * k1, h, w, 2), align_corners=True).view(b, k1, c, h, w)

        levels = self.hourglass(torch.cat([heat, deformed.view(b, k1 * c, h, w)], dim=1))
        contribution = F.softmax(self.maps(levels[-1]), dim=1)  # (B,K+1,h,w)
        deformation = (grids * contribution[..., None]).sum(dim=1)  # (B,h,w,2)

        from_hourglass = NUM_OCCLUSIONS - self.num_up
        occlusion = [
            torch.sigmoid(conv(level))
            for conv, level in zip(self.occlusion[:from_hourglass], levels[-from_hourglass:])
        ]
        feat = levels[-1]
        for up, conv in zip(self.up, self.occlusion[from_hourglass:]):
            feat = up(feat)
            occlusion.append(torch.sigmoid(conv(feat)))
        return {
            "deformed_source": deformed,
            "contribution_maps": contribution,
            "deformation": deformation,
            "occlusion_map": occlusion,
        }
