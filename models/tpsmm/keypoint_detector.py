"""Keypoint detector: a ResNet-18 regressing K groups of 5 keypoints from the full image.

The released weights use torchvision's ResNet-18 module names under ``fg_encoder`` with a 5*2*K
output ``fc``; outputs are squashed to [-1, 1] (the coordinate convention of the flow grids).
"""

from __future__ import annotations

import torch
from torch import nn


def _resnet18(num_outputs: int) -> nn.Module:
    try:
        from torchvision.models import resnet18
    except ImportError as exc:  # torchvision ships with ComfyUI; plain installs may lack it
        raise ImportError("TPSMM's keypoint detector needs torchvision: pip install torchvision") from exc
    return resnet18(weights=None, num_classes=num_outputs)


class KPDetector(nn.Module):
    """image (B,3,H,W) in [0,1] -> keypoints (B, 5K, 2) in [-1, 1]."""

    def __init__(self, num_tps: int = 10) -> None:
        super().__init__()
        self.num_tps = num_tps
        self.fg_encoder = _resnet18(num_tps * 5 * 2)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        kp = torch.sigmoid(self.fg_encoder(image)) * 2 - 1
        return kp.view(image.shape[0], self.num_tps * 5, 2)
