"""Animation-via-disentanglement network: source identity + driving pose -> keypoints for the source.

Two MLP encoders (identity from the source keypoints, pose from the driving keypoints) and an MLP
decoder; layer indices follow the released ``nn.Sequential`` layout (Linear, BatchNorm1d, ReLU).
"""

from __future__ import annotations

import torch
from torch import nn


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.extend([nn.BatchNorm1d(b), nn.ReLU()])
    return nn.Sequential(*layers)


class AVDNetwork(nn.Module):
    """(kp_source, kp_driving) each (B, 5K, 2) -> keypoints (B, 5K, 2) with the source's identity."""

    def __init__(self, num_tps: int = 10, id_bottle_size: int = 64, pose_bottle_size: int = 64) -> None:
        super().__init__()
        n = 5 * 2 * num_tps
        self.num_tps = num_tps
        self.id_encoder = _mlp([n, 256, 512, 1024, id_bottle_size])
        self.pose_encoder = _mlp([n, 256, 512, 1024, pose_bottle_size])
        self.decoder = _mlp([pose_bottle_size + id_bottle_size, 1024, 512, 256, n])

    def forward(self, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
        b = kp_driving.shape[0]
        pose = self.pose_encoder(kp_driving.reshape(b, -1))
        ident = self.id_encoder(kp_source.reshape(kp_source.shape[0], -1).expand(b, -1))
        return self.decoder(torch.cat([pose, ident], dim=1)).view(b, self.num_tps * 5, 2)
