"""TPSMM's view of the FOMM-family building blocks.

TPSMM keeps FOMM's blocks and key names but normalises with ``InstanceNorm2d(affine=True)`` (so
checkpoints hold only weight/bias, no running statistics), pads every conv to keep the size, and
reads occlusion masks off every decoder level of its hourglass. Everything else comes from
:mod:`models.fomm.primitives`; grids use the align_corners=True convention ([-1, 1] on the centres
of the border pixels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm import primitives as fomm
from ..fomm.primitives import AntiAliasInterpolation2d

__all__ = [
    "AntiAliasInterpolation2d", "DownBlock2d", "Hourglass", "ResBlock2d", "SameBlock2d", "UpBlock2d",
    "coordinate_grid", "kp2gaussian", "warp",
]


def coordinate_grid(h: int, w: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """(h, w, 2) grid of (x, y) in [-1, 1], the align_corners=True convention of every keypoint."""
    return fomm.make_coordinate_grid((h, w), dtype, device)


def kp2gaussian(kp: torch.Tensor, h: int, w: int, variance: float) -> torch.Tensor:
    """Gaussian blobs exp(-|z - kp|^2 / (2 var)) for keypoints (..., N, 2) -> (..., N, h, w)."""
    return fomm.kp2gaussian(kp, (h, w), variance)


def warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` (B,C,H,W) with a sampling grid (B,h,w,2), resizing the grid if needed."""
    h, w = image.shape[2:]
    if grid.shape[1:3] != (h, w):
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True)
        grid = grid.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, align_corners=True)


class SameBlock2d(fomm.SameBlock2d):
    """conv (size-preserving padding) -> instance norm -> ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3) -> None:
        super().__init__(cin, cout, kernel_size, kernel_size // 2, norm=nn.InstanceNorm2d)


class DownBlock2d(fomm.DownBlock2d):
    """SameBlock2d followed by 2x2 average pooling (halves the resolution)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, norm=nn.InstanceNorm2d)


class UpBlock2d(fomm.UpBlock2d):
    """Nearest x2 upsampling followed by SameBlock2d (doubles the resolution)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, norm=nn.InstanceNorm2d)


class ResBlock2d(fomm.ResBlock2d):
    """Pre-activation residual block with instance norms."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, norm=nn.InstanceNorm2d)


class Hourglass(fomm.Hourglass):
    """Instance-norm hourglass returning every decoder level (coarse to fine)."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__(block_expansion, in_features, num_blocks, max_features, norm=nn.InstanceNorm2d)
        self.out_channels = self.decoder.level_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:  # type: ignore[override]
        return self.decoder.levels(self.encoder(x))
