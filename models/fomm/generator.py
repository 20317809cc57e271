"""FOMM occlusion-aware generator (paper Sec. 3.2-3.3).

Encode the source (conv + 2 down blocks), warp the feature map with the dense motion field,
multiply by the occlusion map, then decode (6 residual blocks, 2 up blocks, 7x7 conv, sigmoid).
Key names match ``generator.*`` in the released checkpoints.

Batching: the source is encoded once at its own batch size (normally 1) and broadcast over the
driving batch, so animating N frames costs one encoder pass instead of N.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dense_motion import DenseMotionNetwork, warp
from .primitives import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d


class OcclusionAwareGenerator(nn.Module):
    """(source (1|B, C, H, W), kp_source, kp_driving (B)) -> {"prediction": (B, C, H, W), ...}."""

    def __init__(self, num_channels: int = 3, num_kp: int = 10, block_expansion: int = 64,
                 max_features: int = 512, num_down_blocks: int = 2, num_bottleneck_blocks: int = 6,
                 estimate_occlusion_map: bool = True, dense_motion_params: dict | None = None,
                 estimate_jacobian: bool = True) -> None:
        super().__init__()
        self.dense_motion_network = (
            DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                               estimate_occlusion_map=estimate_occlusion_map, **dense_motion_params)
            if dense_motion_params is not None else None)
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)

        def width(i: int) -> int:
            return min(max_features, block_expansion * (2 ** i))

        self.down_blocks = nn.ModuleList(DownBlock2d(width(i), width(i + 1)) for i in range(num_down_blocks))
        self.up_blocks = nn.ModuleList(
            UpBlock2d(width(i + 1), width(i)) for i in reversed(range(num_down_blocks)))
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(width(num_down_blocks)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.num_channels = num_channels

    def encode(self, source: torch.Tensor) -> torch.Tensor:
        """Source feature map (computed once per source, reused for every driving frame)."""
        out = self.first(source)
        for block in self.down_blocks:
            out = block(out)
        return out

    @staticmethod
    def deform(features: torch.Tensor, deformation: torch.Tensor) -> torch.Tensor:
        """Warp ``features`` by ``deformation``, resizing the field bilinearly when sizes differ."""
        h, w = features.shape[2:]
        if deformation.shape[1:3] != (h, w):
            deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(h, w), mode="bilinear",
                                        align_corners=False).permute(0, 2, 3, 1)
        return warp(features, deformation)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        out = self.bottleneck(features)
        for block in self.up_blocks:
            out = block(out)
        return torch.sigmoid(self.final(out))

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict,
                source_features: torch.Tensor | None = None, source_small: torch.Tensor | None = None,
                return_deformed: bool = False) -> dict[str, torch.Tensor]:
        b = kp_driving["value"].shape[0]
        feats = self.encode(source) if source_features is None else source_features
        feats = feats.expand(b, -1, -1, -1)
        out: dict[str, torch.Tensor] = {}
        if self.dense_motion_network is not None:
            motion = self.dense_motion_network(source, kp_driving, kp_source, source_small=source_small)
            out.update(mask=motion["mask"], sparse_deformed=motion["sparse_deformed"])
            feats = self.deform(feats, motion["deformation"])
            occlusion = motion.get("occlusion_map")
            if occlusion is not None:
                out["occlusion_map"] = occlusion
                if occlusion.shape[2:] != feats.shape[2:]:
                    occlusion = F.interpolate(occlusion, size=feats.shape[2:], mode="bilinear",
                                              align_corners=False)
                feats = feats * occlusion
            if return_deformed:
                out["deformed"] = self.deform(source.expand(b, -1, -1, -1), motion["deformation"])
        out["prediction"] = self.decode(feats)
        return out
