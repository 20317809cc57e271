"""FOMM keypoint detector (Siarohin et al. 2019, "First Order Motion Model", Sec. 3.1).

An hourglass on the 4x-downscaled frame predicts one heatmap per keypoint; a spatial softmax
(temperature 0.1) turns it into a distribution whose mean is the keypoint. A second head predicts
four maps per keypoint whose heatmap-weighted average is the local 2x2 jacobian (the first-order
term of the motion around the keypoint). Key names match the released ``kp_detector`` state dict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .primitives import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid


class KPDetector(nn.Module):
    """Frames (B, C, H, W) in [0, 1] -> {"value": (B, K, 2), "jacobian": (B, K, 2, 2)}."""

    def __init__(self, block_expansion: int = 32, num_kp: int = 10, num_channels: int = 3,
                 max_features: int = 1024, num_blocks: int = 5, temperature: float = 0.1,
                 estimate_jacobian: bool = True, scale_factor: float = 0.25, pad: int = 0) -> None:
        super().__init__()
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        self.jacobian = (nn.Conv2d(self.predictor.out_filters, 4 * num_kp, kernel_size=(7, 7), padding=pad)
                         if estimate_jacobian else None)
        if self.jacobian is not None:
            # identity jacobians at initialisation, as in the paper's training set-up
            nn.init.zeros_(self.jacobian.weight)
            with torch.no_grad():
                self.jacobian.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * num_kp))
        self.num_kp = num_kp
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.down(frames) if self.scale_factor != 1 else frames
        features = self.predictor(x)
        logits = self.kp(features)
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, h * w) / self.temperature, dim=2).view(b, k, h, w)
        grid = make_coordinate_grid((h, w), heatmap.dtype, heatmap.device)
        out = {"value": torch.einsum("bkhw,hwc->bkc", heatmap, grid)}
        if self.jacobian is not None:
            maps = self.jacobian(features).view(b, k, 4, h, w)
            jac = (heatmap.unsqueeze(2) * maps).sum(dim=(-2, -1))
            out["jacobian"] = jac.view(b, k, 2, 2)
        return out
