"""FSRT expression encoder: a latent facial-expression vector from the keypoint detector's features.

A 7x7 conv maps the detector's feature map to ``per_kp`` channels per keypoint; each keypoint's
channels are pooled with that keypoint's heatmap, and an MLP maps the concatenation to the
expression vector that conditions both the source encoding and the rendering of each frame.
Keys ``expression.*`` and ``expression_mlp.{0,2,4,6}.*`` match the released checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn


class ExpressionEncoder(nn.Module):
    """(features (B, C, h, w), heatmaps (B, K, h', w')) -> expression (B, expression_size)."""

    def __init__(self, in_channels: int = 35, num_kp: int = 10, per_kp: int = 32,
                 mlp_widths: tuple[int, ...] = (640, 1280, 640), expression_size: int = 256,
                 pad: int = 0) -> None:
        super().__init__()
        self.num_kp = num_kp
        self.per_kp = per_kp
        self.expression = nn.Conv2d(in_channels, num_kp * per_kp, kernel_size=(7, 7), padding=pad)
        widths = [num_kp * per_kp, *mlp_widths, expression_size]
        layers: list[nn.Module] = []
        for i in range(len(widths) - 1):
            layers += [nn.Linear(widths[i], widths[i + 1]), nn.ReLU()]
        self.expression_mlp = nn.Sequential(*layers[:-1])

    def forward(self, features: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        maps = self.expression(features)
        b, _, h, w = maps.shape
        maps = maps.view(b, self.num_kp, self.per_kp, h, w)
        pooled = (heatmap.unsqueeze(2) * maps).sum(dim=(-2, -1))
        return self.expression_mlp(pooled.reshape(b, -1))
