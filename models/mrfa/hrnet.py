"""High-resolution backbone in front of MRFA's keypoint transformer (TokenPose-B "pre_feature").

A ResNet stem (two stride-2 convs, four bottlenecks) followed by two HRNet stages that keep
parallel branches at 1/4, 1/8 and 1/16 resolution and repeatedly exchange information between
them; only the 1/4 branch is returned. Module names (``conv1``, ``layer1``, ``transition1``,
``stage2``, ``fuse_layers`` ...) follow the released MRFA checkpoints (``encoder.pre_feature.*``).
"""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual connection."""

    expansion = 1

    def __init__(self, cin: int, planes: int, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + skip)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a residual connection."""

    expansion = 4

    def __init__(self, cin: int, planes: int, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + skip)


def _projection(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


def _blocks(cin: int, planes: int, count: int) -> nn.Sequential:
    """``count`` basic blocks; the first one projects the skip when the width changes."""
    down = _projection(cin, planes) if cin != planes else None
    layers = [BasicBlock(cin, planes, down)] + [BasicBlock(planes, planes) for _ in range(count - 1)]
    return nn.Sequential(*layers)


def _stride2(cin: int, cout: int, relu: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches, then every output scale sums all branches resampled to it."""

    def __init__(self, channels: list[int], num_blocks: list[int], multi_scale_output: bool) -> None:
        super().__init__()
        self.branches = nn.ModuleList(_blocks(c, c, n) for c, n in zip(channels, num_blocks))
        n = len(channels)
        self.fuse_layers = None
        if n > 1:
            fuse = []
            for i in range(n if multi_scale_output else 1):
                row: list[nn.Module | None] = []
                for j in range(n):
                    if j > i:  # coarser -> finer: 1x1 conv then nearest upsampling
                        row.append(
                            nn.Sequential(
                                nn.Conv2d(channels[j], channels[i], 1, bias=False),
                                nn.BatchNorm2d(channels[i]),
                                nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                            )
                        )
                    elif j == i:
                        row.append(None)
                    else:  # finer -> coarser: chain of stride-2 convs
                        steps = [_stride2(channels[j], channels[j], True) for _ in range(i - j - 1)]
                        steps.append(_stride2(channels[j], channels[i], False))
                        row.append(nn.Sequential(*steps))
                fuse.append(nn.ModuleList(row))
            self.fuse_layers = nn.ModuleList(fuse)
        self.relu = nn.ReLU()

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        if self.fuse_layers is None:
            return xs
        outs = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, len(xs)):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            outs.append(self.relu(y))
        return outs


class HRNetBase(nn.Module):
    """Stem + stage 2 (2 branches) + stage 3 (3 branches, last module single-scale) -> 1/4 features."""

    def __init__(
        self,
        stage2_channels: tuple[int, ...],
        stage2_blocks: tuple[int, ...],
        stage2_modules: int,
        stage3_channels: tuple[int, ...],
        stage3_blocks: tuple[int, ...],
        stage3_modules: int,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        layers = [Bottleneck(64, 64, _projection(64, 256))] + [Bottleneck(256, 64) for _ in range(3)]
        self.layer1 = nn.Sequential(*layers)
        ch2, ch3 = list(stage2_channels), list(stage3_channels)
        self.transition1 = self._transition([256], ch2)
        self.stage2 = self._stage(ch2, list(stage2_blocks), stage2_modules, multi_scale_output=True)
        self.transition2 = self._transition(ch2, ch3)
        self.stage3 = self._stage(ch3, list(stage3_blocks), stage3_modules, multi_scale_output=False)
        self.out_channels = ch3[0]

    @staticmethod
    def _transition(before: list[int], after: list[int]) -> nn.ModuleList:
        """Keep (or re-width) existing branches; open each new, coarser branch from the coarsest one."""
        layers: list[nn.Module | None] = []
        for i, cout in enumerate(after):
            if i < len(before):
                layers.append(
                    None
                    if before[i] == cout
                    else nn.Sequential(
                        nn.Conv2d(before[i], cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
                    )
                )
            else:
                steps = [_stride2(before[-1], before[-1], True) for _ in range(i - len(before))]
                steps.append(_stride2(before[-1], cout, True))
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    @staticmethod
    def _stage(
        channels: list[int], blocks: list[int], modules: int, multi_scale_output: bool
    ) -> nn.Sequential:
        return nn.Sequential(
            *[
                HighResolutionModule(channels, blocks, multi_scale_output or i < modules - 1)
                for i in range(modules)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(self.relu(self.bn2(self.conv2(x))))
        xs = [x if t is None else t(x) for t in self.transition1]
        ys = self.stage2(xs)
        # a transition applies to the coarsest stage-2 output, even for an existing branch (upstream order)
        xs = [ys[i] if (i < len(ys) and t is None) else t(ys[-1]) for i, t in enumerate(self.transition2)]
        return self.stage3(xs)[0]
