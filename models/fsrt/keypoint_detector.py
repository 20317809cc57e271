"""FSRT's keypoint detector: the FOMM detector (Siarohin et al. 2019) without the jacobian head.

FSRT conditions on 10 unsupervised keypoints and, through the expression encoder, on the
detector's feature map weighted by each keypoint's heatmap, so both are returned. Keys
(``predictor.*``, ``kp.*``, ``down.weight``) match the released ``kp_detector.pt``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm.primitives import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid


class KPDetector(nn.Module):
    """Frames (B, 3, H, W) in [0, 1] -> keypoints (B, K, 2), features (B, C, h, w), heatmaps (B, K, h2, w2).

    The heatmaps are smaller than the features (7x7 ``kp`` conv without padding, as released).
    """

    def __init__(self, block_expansion: int = 32, num_kp: int = 10, num_channels: int = 3,
                 max_features: int = 1024, num_blocks: int = 5, temperature: float = 0.1,
                 scale_factor: float = 0.25, pad: int = 0) -> None:
        super().__init__()
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        self.num_kp = num_kp
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.down(frames) if self.scale_factor != 1 else frames
        features = self.predictor(x)
        logits = self.kp(features)
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, h * w) / self.temperature, dim=2).view(b, k, h, w)
        grid = make_coordinate_grid((h, w), heatmap.dtype, heatmap.device)
        keypoints = torch.einsum("bkhw,hwc->bkc", heatmap, grid)
        return keypoints, features, heatmap
