"""Background motion predictor of the celebvhq model: one projective warp for the whole frame.

A ResNet-18 (torchvision layout, key prefix ``bg_encoder``) reads source and driving stacked on the
channel axis (6 channels) and regresses the top two rows of a 3x3 matrix that maps driving-frame
coordinates to source-frame coordinates; the bottom row is fixed to [0, 0, 1]. The matrix replaces
the identity "background" candidate of the dense motion network, so camera shake and zoom are
modelled separately from the face keypoints.
"""

from __future__ import annotations

import torch
from torch import nn


def _resnet18() -> nn.Module:
    try:
        from torchvision.models import resnet18
    except ImportError as exc:  # torchvision ships with ComfyUI; plain installs may lack it
        raise ImportError(
            "MRFA's background motion predictor needs torchvision: pip install torchvision"
        ) from exc
    return resnet18(weights=None)


class BackgroundMotionPredictor(nn.Module):
    """(source (B|1,C,H,W), driving (B,C,H,W)) -> (B, 3, 3) driving->source homogeneous matrices."""

    def __init__(self, num_channels: int = 3) -> None:
        super().__init__()
        self.bg_encoder = _resnet18()
        self.bg_encoder.conv1 = nn.Conv2d(
            2 * num_channels, 64, kernel_size=7, stride=2, padding=3, bias=False
        )
        self.bg_encoder.fc = nn.Linear(self.bg_encoder.fc.in_features, 6)

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        b = driving.shape[0]
        rows = self.bg_encoder(torch.cat([source.expand(b, -1, -1, -1), driving], dim=1)).view(b, 2, 3)
        bottom = torch.tensor([0.0, 0.0, 1.0], dtype=rows.dtype, device=rows.device).expand(b, 1, 3)
        return torch.cat([rows, bottom], dim=1)
