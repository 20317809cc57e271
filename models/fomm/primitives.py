"""Building blocks shared by the FOMM family (FOMM, part swap, MRAA, TPSMM, MRFA, FSRT detector).

Keypoints live in normalised image coordinates in [-1, 1] with the corner-pixel convention
(x = 2 j / (w - 1) - 1), as in the released FOMM checkpoints. The module and buffer names below
(``conv``, ``norm``, ``pool``, ``encoder.down_blocks``, ``decoder.up_blocks``, the anti-alias
``weight`` buffer) are the ones stored in the released state dicts, so they must not change.

BatchNorm: upstream used a synchronised BatchNorm with the same keys as ``nn.BatchNorm2d``; at
inference (eval mode) both reduce to ``F.batch_norm`` with running statistics, so the stock layer is used.
Later family members (TPSMM) swapped it for ``InstanceNorm2d(affine=True)`` and nothing else, so every
block takes the norm class as a parameter instead of being written twice.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from . import fast_kernels as fast

Norm = type[nn.Module]
"""A norm layer class called as ``norm(channels, affine=True)`` (BatchNorm2d or InstanceNorm2d)."""


def make_coordinate_grid(size: tuple[int, int], dtype: torch.dtype = torch.float32,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """(h, w, 2) grid of (x, y) in [-1, 1], x varying along the last spatial axis."""
    h, w = int(size[0]), int(size[1])
    x = 2 * (torch.arange(w, dtype=dtype, device=device) / (w - 1)) - 1
    y = 2 * (torch.arange(h, dtype=dtype, device=device) / (h - 1)) - 1
    return torch.stack([x.view(1, w).expand(h, w), y.view(h, 1).expand(h, w)], dim=-1)


def kp2gaussian(kp: torch.Tensor, size: tuple[int, int], variance: float) -> torch.Tensor:
    """Gaussian blob per keypoint: kp (..., K, 2) -> (..., K, h, w), exp(-|z - kp|^2 / (2 var))."""
    grid = make_coordinate_grid(size, kp.dtype, kp.device)
    diff = grid - kp[..., None, None, :]
    return torch.exp(-0.5 * (diff ** 2).sum(-1) / variance)


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then strided subsampling: band-limited downscaling by ``scale`` (< 1).

    sigma = (1/scale - 1) / 2 and a (2 round(4 sigma) + 1)-tap kernel; the kernel is a buffer
    named ``weight`` because the released checkpoints store it (as ``down.weight``).
    """

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        sigma = (1 / scale - 1) / 2
        size = 2 * round(sigma * 4) + 1
        self.pad_before = size // 2
        self.pad_after = self.pad_before - 1 if size % 2 == 0 else self.pad_before
        taps = torch.arange(size, dtype=torch.float32)
        g = torch.exp(-((taps - (size - 1) / 2) ** 2) / (2 * sigma ** 2))
        kernel = g[:, None] * g[None, :]
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.expand(channels, 1, size, size).clone())
        self.groups = channels
        self.scale = scale
        self.step = int(1 / scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale == 1.0:
            return x
        a, b = self.pad_before, self.pad_after
        x = F.pad(x, (a, b, a, b))
        weight = self.weight.to(x.dtype)
        if fast.active(self):
            return self._strided(x, weight)
        x = F.conv2d(x, weight, groups=self.groups)
        return x[:, :, :: self.step, :: self.step]

    def _strided(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Only the kept pixels (stride = step instead of blurring everything and subsampling), and,
        for a rank-1 kernel like the Gaussian, as a column pass then a row pass: the same sums with
        2k instead of k^2 taps (the 29-tap 1/8 downscale is ~15x fewer multiply-adds, 64x fewer
        output pixels)."""
        k = weight.shape[-1]
        col, row = weight[:, 0].sum(2), weight[:, 0].sum(1)  # (C, k) each; col x row = kernel when rank 1
        if (col[:, :, None] * row[:, None, :] - weight[:, 0]).abs().max() > 1e-6 * weight.abs().max():
            return F.conv2d(x, weight, stride=self.step, groups=self.groups)
        x = F.conv2d(x, col.reshape(-1, 1, k, 1), stride=(self.step, 1), groups=self.groups)
        return F.conv2d(x, row.reshape(-1, 1, 1, k), stride=(1, self.step), groups=self.groups)


class SameBlock2d(fast.CachedFolding):
    """conv -> norm -> ReLU, resolution kept (at inference an eval BatchNorm is folded into the conv)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1,
                 norm: Norm = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size, padding=padding)
        self.norm = norm(out_features, affine=True)

    def fold_sources(self) -> tuple[torch.Tensor | None, ...]:
        return self.conv.weight, self.conv.bias, *fast.norm_tensors(self.norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fast.active(self) and fast.foldable(self.norm):
            w, b = self.cached(lambda: fast.fold(self.conv, self.norm))
            c = self.conv
            return F.relu_(F.conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups))
        return F.relu(self.norm(self.conv(x)))


class DownBlock2d(SameBlock2d):
    """conv -> norm -> ReLU -> 2x2 average pool (encoder step)."""

    def __init__(self, in_features: int, out_features: int, kernel_size: int = 3, padding: int = 1,
                 norm: Norm = nn.BatchNorm2d) -> None:
        super().__init__(in_features, out_features, kernel_size, padding, norm)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(super().forward(x))


class UpBlock2d(SameBlock2d):
    """nearest x2 upsampling -> conv -> norm -> ReLU (decoder step).

    At inference a 3x3 conv runs as four 2x2 convs on the low-resolution input (one per output
    pixel phase, :func:`fast_kernels.phase_kernels`): 2.25x fewer multiply-adds, same result.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.conv
        if (fast.active(self) and c.kernel_size == (3, 3) and c.padding == (1, 1) and c.stride == (1, 1)
                and c.dilation == (1, 1) and c.groups == 1):
            folded = fast.foldable(self.norm)

            def build() -> tuple[torch.Tensor, torch.Tensor]:
                w, b = fast.fold(c, self.norm if folded else None)
                return fast.phase_kernels(w), b

            kernels, bias = self.cached(build)
            out = fast.upsample_conv(x, kernels, bias)
            return F.relu_(out) if folded else F.relu(self.norm(out))
        return super().forward(F.interpolate(x, scale_factor=2))


class ResBlock2d(fast.CachedFolding):
    """Pre-activation residual block: norm -> ReLU -> conv -> norm -> ReLU -> conv, plus the input.

    At inference an eval ``norm2`` is folded into ``conv1``, and wide 3x3 convs run as Winograd
    F(4x4, 3x3) on the CPU where that is faster (:mod:`winograd`).
    """

    def __init__(self, features: int, kernel_size: int = 3, padding: int = 1,
                 norm: Norm = nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(features, features, kernel_size, padding=padding)
        self.norm1 = norm(features, affine=True)
        self.norm2 = norm(features, affine=True)

    cpu_only = (2, 5)  # the Winograd transforms in :meth:`_kernels`

    def fold_sources(self) -> tuple[torch.Tensor | None, ...]:
        return (self.conv1.weight, self.conv1.bias, self.conv2.weight, self.conv2.bias,
                *fast.norm_tensors(self.norm2))

    def _kernels(self) -> tuple[torch.Tensor | None, ...]:
        """(w1, b1, u1, w2, b2, u2): conv weights (``norm2`` folded into conv1 when it is an eval
        BatchNorm) and their Winograd transforms (None where Winograd does not apply)."""
        def build() -> tuple[torch.Tensor | None, ...]:
            w1, b1 = fast.fold(self.conv1, self.norm2 if fast.foldable(self.norm2) else None)
            w2, b2 = fast.fold(self.conv2, None)
            u1, u2 = fast.winograd_weight(self.conv1, w1), fast.winograd_weight(self.conv2, w2)
            return w1, b1, u1, w2, b2, u2

        return self.cached(build)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fast.active(self):
            w1, b1, u1, w2, b2, u2 = self._kernels()
            out = fast.conv(F.relu(self.norm1(x)), self.conv1, w1, b1, u1)
            out = F.relu_(out) if fast.foldable(self.norm2) else F.relu(self.norm2(out))
            return fast.conv(out, self.conv2, w2, b2, u2).add_(x)
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


def _hourglass_width(block_expansion: int, max_features: int, level: int) -> int:
    return min(max_features, block_expansion * (2 ** level))


class HourglassEncoder(nn.Module):
    """Down blocks; returns every scale (input first) for the decoder's skip connections."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int,
                 norm: Norm = nn.BatchNorm2d) -> None:
        super().__init__()
        blocks = []
        for i in range(num_blocks):
            cin = in_features if i == 0 else _hourglass_width(block_expansion, max_features, i)
            blocks.append(DownBlock2d(cin, _hourglass_width(block_expansion, max_features, i + 1), norm=norm))
        self.down_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [x]
        for block in self.down_blocks:
            feats.append(block(feats[-1]))
        return feats


class HourglassDecoder(nn.Module):
    """Up blocks, each followed by concatenation with the encoder feature of the same scale."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int, max_features: int,
                 norm: Norm = nn.BatchNorm2d) -> None:
        super().__init__()
        blocks = []
        #: channels after each level's skip concatenation, coarse to fine (the last is ``out_filters``)
        self.level_channels: list[int] = []
        for i in reversed(range(num_blocks)):
            cin = (1 if i == num_blocks - 1 else 2) * _hourglass_width(block_expansion, max_features, i + 1)
            cout = _hourglass_width(block_expansion, max_features, i)
            blocks.append(UpBlock2d(cin, cout, norm=norm))
            self.level_channels.append(cout + (in_features if i == 0 else cout))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def levels(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Every decoder level, coarse to fine; TPSMM reads occlusion masks off several of them."""
        out = feats[-1]
        outs = []
        for block, skip in zip(self.up_blocks, reversed(feats[:-1])):
            out = torch.cat([block(out), skip], dim=1)
            outs.append(out)
        return outs

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.levels(feats)[-1]


class Hourglass(nn.Module):
    """U-Net style hourglass; output has ``out_filters = block_expansion + in_features`` channels."""

    def __init__(self, block_expansion: int, in_features: int, num_blocks: int = 3,
                 max_features: int = 256, norm: Norm = nn.BatchNorm2d) -> None:
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_features, num_blocks, max_features, norm)
        self.decoder = HourglassDecoder(block_expansion, in_features, num_blocks, max_features, norm)
        self.out_filters = self.decoder.out_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))
