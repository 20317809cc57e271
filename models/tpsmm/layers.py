"""Building blocks shared by the TPSMM networks.

TPSMM normalises with ``InstanceNorm2d(affine=True)`` (so checkpoints hold only weight/bias, no
running statistics) and samples every grid with ``align_corners=True``: coordinates live in
[-1, 1] with -1/1 on the centres of the border pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def coordinate_grid(h: int, w: int, dtype: torch.dtype, device: torch.device | str) -> torch.Tensor:
    """(h, w, 2) grid of (x, y) in [-1, 1], the align_corners=True convention of every keypoint."""
    x = torch.arange(w, dtype=dtype, device=device)
    y = torch.arange(h, dtype=dtype, device=device)
    x = 2 * (x / (w - 1)) - 1
    y = 2 * (y / (h - 1)) - 1
    return torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w)], dim=-1)


def kp2gaussian(kp: torch.Tensor, h: int, w: int, variance: float) -> torch.Tensor:
    """Gaussian blobs exp(-|z - kp|^2 / (2 var)) for keypoints (..., N, 2) -> (..., N, h, w)."""
    grid = coordinate_grid(h, w, kp.dtype, kp.device)
    diff = grid - kp[..., None, None, :]
    return torch.exp(-0.5 * (diff**2).sum(-1) / variance)


def warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` (B,C,H,W) with a sampling grid (B,h,w,2), resizing the grid if needed."""
    h, w = image.shape[2:]
    if grid.shape[1:3] != (h, w):
        grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(h, w), mode="bilinear", align_corners=True)
        grid = grid.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, align_corners=True)


class SameBlock2d(nn.Module):
    """conv -> instance norm -> ReLU at constant resolution."""

    def __init__(self, cin: int, cout: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2)
        self.norm = nn.InstanceNorm2d(cout, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(SameBlock2d):
    """SameBlock2d followed by 2x2 average pooling (halves the resolution)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(super().forward(x), 2)


class UpBlock2d(SameBlock2d):
    """Nearest x2 upsampling followed by SameBlock2d (doubles the resolution)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class ResBlock2d(nn.Module):
    """Pre-activation residual block: (norm -> ReLU -> conv) x 2 + identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = nn.InstanceNorm2d(channels, affine=True)
        self.norm2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class _Encoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        chans = [in_features] + [min(max_features, block_expansion * 2 ** (i + 1)) for i in range(num_blocks)]
        self.down_blocks = nn.ModuleList(DownBlock2d(chans[i], chans[i + 1]) for i in range(num_blocks))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = [x]
        for block in self.down_blocks:
            outs.append(block(outs[-1]))
        return outs


class _Decoder(nn.Module):
    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        blocks = []
        self.out_channels: list[int] = []
        for i in reversed(range(num_blocks)):
            cin = (1 if i == num_blocks - 1 else 2) * min(max_features, block_expansion * 2 ** (i + 1))
            self.out_channels.append(cin)
            blocks.append(UpBlock2d(cin, min(max_features, block_expansion * 2**i)))
        self.up_blocks = nn.ModuleList(blocks)
        # channels of every decoder level after its skip concatenation, coarse to fine
        self.out_channels = self.out_channels[1:] + [block_expansion + in_features]

    def forward(self, skips: list[torch.Tensor]) -> list[torch.Tensor]:
        out = skips[-1]
        levels = []
        for block, skip in zip(self.up_blocks, reversed(skips[:-1])):
            out = torch.cat([block(out), skip], dim=1)
            levels.append(out)
        return levels


class Hourglass(nn.Module):
    """U-Net that returns every decoder level (coarse to fine); TPSMM reads occlusions off several."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int) -> None:
        super().__init__()
        self.encoder = _Encoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = _Decoder(block_expansion, in_features, num_blocks, max_features)
        self.out_channels = self.decoder.out_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.decoder(self.encoder(x))


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur (sigma = (1/s - 1)/2) then nearest resampling by ``scale``: band-limited resize.

    The kernel is a persistent buffer ``weight`` because the released checkpoints store it.
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.pad_before = size // 2
        self.pad_after = self.pad_before - 1 if size % 2 == 0 else self.pad_before
        t = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((t - (size - 1) / 2) ** 2) / (2 * sigma**2))
        kernel = g[:, None] * g[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone())
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        a, b = self.pad_before, self.pad_after
        out = F.conv2d(F.pad(x, (a, b, a, b)), self.weight.to(x.dtype), groups=x.shape[1])
        return F.interpolate(out, scale_factor=(self.scale, self.scale), mode="nearest")
