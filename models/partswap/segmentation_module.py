"""Co-part segmentation module (Siarohin et al. 2020, "Motion Supervised co-part Segmentation", Sec. 3.1).

The FOMM keypoint hourglass on the 4x-downscaled frame feeds three heads:
- ``segmentation``: a softmax over S parts plus background, the soft part map;
- ``shift``: one heatmap per part whose spatial softmax (temperature 0.1) mean is the part's
  position, as FOMM keypoints;
- ``affine``: four maps per part whose heatmap-weighted average is the part's 2x2 linear motion.
The part positions and affines define one affine warp per part, which the reconstruction module
blends with the segmentation. Key names (``predictor``, ``shift``, ``affine``, ``segmentation``,
``down.weight``) match ``segmentation_module`` in the released checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm.primitives import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid


class SegmentationModule(nn.Module):
    """Frames (B, C, H, W) in [0, 1] -> {"segmentation": (B, S+1, h, w), "shift": (B, S, 2),
    "affine": (B, S, 2, 2)} at h, w = H * scale_factor, W * scale_factor."""

    def __init__(
        self,
        num_segments: int = 10,
        num_channels: int = 3,
        block_expansion: int = 32,
        max_features: int = 1024,
        num_blocks: int = 5,
        temperature: float = 0.1,
        estimate_affine_part: bool = True,
        scale_factor: float = 0.25,
    ) -> None:
        super().__init__()
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        width = self.predictor.out_filters
        self.shift = nn.Conv2d(width, num_segments, kernel_size=(7, 7), padding=(3, 3))
        self.affine = (
            nn.Conv2d(width, 4 * num_segments, kernel_size=(7, 7), padding=(3, 3))
            if estimate_affine_part
            else None
        )
        if self.affine is not None:
            # identity part motions at initialisation, as in training
            nn.init.zeros_(self.affine.weight)
            with torch.no_grad():
                self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 1.0] * num_segments))
        self.segmentation = nn.Conv2d(width, num_segments + 1, kernel_size=(7, 7), padding=(3, 3))
        self.num_segments = num_segments
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.down(frames) if self.scale_factor != 1 else frames
        features = self.predictor(x)
        out = {"segmentation": F.softmax(self.segmentation(features), dim=1)}
        logits = self.shift(features)
        b, s, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, s, h * w) / self.temperature, dim=2).view(b, s, h, w)
        grid = make_coordinate_grid((h, w), heatmap.dtype, heatmap.device)
        out["shift"] = torch.einsum("bshw,hwc->bsc", heatmap, grid)
        if self.affine is not None:
            maps = self.affine(features).view(b, s, 4, h, w)
            out["affine"] = (heatmap.unsqueeze(2) * maps).sum(dim=(-2, -1)).view(b, s, 2, 2)
        return out
