"""MRAA animation-via-disentanglement network (paper Sec. 3.3).

Region parameters (shift and affine frame, 6 numbers per region) of the source give an identity
code, those of the driving frame a pose code; a decoder turns (pose, identity) into region
parameters with the source's shape and the driving pose. Layer indices follow the released
``nn.Sequential`` layout (Linear, BatchNorm1d, ReLU, ...), keys ``id_encoder``, ``pose_encoder``,
``decoder``.
"""

from __future__ import annotations

import torch
from torch import nn

from .pixelwise_flow import region_transforms


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.extend([nn.BatchNorm1d(b), nn.ReLU()])
    return nn.Sequential(*layers)


def region_embedding(params: dict) -> torch.Tensor:
    """[shift, affine.flatten] per region, flattened -> (B, 6K)."""
    affine = params["affine"]
    return torch.cat([params["shift"], affine.flatten(-2)], dim=-1).flatten(1)


class AVDNetwork(nn.Module):
    """(source params (1|B), driving params (B)) -> {"shift", "affine", "covar"} for the source (B)."""

    def __init__(
        self,
        num_regions: int = 10,
        id_bottle_size: int = 64,
        pose_bottle_size: int = 64,
        revert_axis_swap: bool = True,
    ) -> None:
        super().__init__()
        n = 6 * num_regions
        self.num_regions = num_regions
        self.revert_axis_swap = revert_axis_swap
        self.id_encoder = _mlp([n, 256, 512, 1024, id_bottle_size])
        self.pose_encoder = _mlp([n, 256, 512, 1024, pose_bottle_size])
        self.decoder = _mlp([pose_bottle_size + id_bottle_size, 1024, 512, 256, n])

    def forward(self, source_params: dict, driving_params: dict) -> dict[str, torch.Tensor]:
        b = driving_params["shift"].shape[0]
        ident = {
            "shift": source_params["shift"].expand(b, -1, -1),
            "affine": source_params["affine"].expand(b, -1, -1, -1),
        }
        if self.revert_axis_swap:  # align the source frames' axis signs with the driving ones
            sign = torch.sign(region_transforms(ident, driving_params, False)[..., 0:1, 0:1])
            ident["affine"] = ident["affine"] * sign
        pose = self.pose_encoder(region_embedding(driving_params))
        code = torch.cat([pose, self.id_encoder(region_embedding(ident))], dim=1)
        emb = self.decoder(code).view(b, self.num_regions, 6)
        affine = emb[..., 2:].reshape(b, self.num_regions, 2, 2)
        return {"shift": emb[..., :2], "affine": affine, "covar": affine @ affine.transpose(-1, -2)}
