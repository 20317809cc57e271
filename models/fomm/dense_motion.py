"""FOMM dense motion network (paper Sec. 3.2, eqs. 4-7).

From source and driving keypoints it builds K+1 candidate backward warps (identity for the
background plus one first-order (affine) warp around each keypoint), warps the downscaled source
with each, and lets an hourglass choose per pixel among them (softmax mask) and predict an
occlusion map. Key names match ``generator.dense_motion_network.*`` in the released checkpoints.

Sampling uses ``grid_sample`` with ``align_corners=False`` while the grids follow the corner
convention: this mismatch is what the released weights were run with, so it is kept for parity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .primitives import (
    AntiAliasInterpolation2d,
    Hourglass,
    kp2gaussian,
    make_coordinate_grid,
)


def warp(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Backward warp with the upstream sampling convention (bilinear, zeros, align_corners=False)."""
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class DenseMotionNetwork(nn.Module):
    """(source, kp_driving, kp_source) -> deformation (B, h, w, 2), mask, occlusion map at 1/4 size."""

    def __init__(self, block_expansion: int = 64, num_blocks: int = 5, max_features: int = 1024,
                 num_kp: int = 10, num_channels: int = 3, estimate_occlusion_map: bool = True,
                 scale_factor: float = 0.25, kp_variance: float = 0.01) -> None:
        super().__init__()
        in_features = (num_kp + 1) * (num_channels + 1)  # per candidate warp: heatmap + warped source
        self.hourglass = Hourglass(block_expansion, in_features, num_blocks, max_features)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion = (nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
                          if estimate_occlusion_map else None)
        self.num_kp = num_kp
        self.scale_factor = scale_factor
        self.kp_variance = kp_variance
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def heatmap_difference(self, size: tuple[int, int], kp_driving: dict, kp_source: dict) -> torch.Tensor:
        """Eq. 6: G(kp_d) - G(kp_s) per keypoint, plus an all-zero background channel -> (B, K+1, 1, h, w)."""
        heat = (kp2gaussian(kp_driving["value"], size, self.kp_variance)
                - kp2gaussian(kp_source["value"], size, self.kp_variance))
        zeros = heat.new_zeros(heat.shape[0], 1, *size)
        return torch.cat([zeros, heat], dim=1).unsqueeze(2)

    def sparse_motions(self, size: tuple[int, int], kp_driving: dict, kp_source: dict) -> torch.Tensor:
        """Eq. 4: T_k(z) = kp_s + J_s J_d^-1 (z - kp_d), identity for k = 0 -> (B, K+1, h, w, 2)."""
        b = kp_driving["value"].shape[0]
        identity = make_coordinate_grid(size, kp_driving["value"].dtype, kp_driving["value"].device)
        z = identity[None, None] - kp_driving["value"][:, :, None, None, :]
        if "jacobian" in kp_driving:
            jac = torch.matmul(kp_source["jacobian"], torch.inverse(kp_driving["jacobian"]))
            z = torch.einsum("bkij,bkhwj->bkhwi", jac.expand(b, -1, -1, -1), z)
        to_source = z + kp_source["value"][:, :, None, None, :]
        background = identity[None, None].expand(b, 1, *identity.shape)
        return torch.cat([background, to_source], dim=1)

    def forward(self, source: torch.Tensor, kp_driving: dict, kp_source: dict,
                source_small: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``source`` may have batch 1 while the keypoints have batch B (one source, many frames);
        ``source_small`` lets the caller pass the already downscaled source to skip the blur."""
        if source_small is None:
            source_small = self.down(source) if self.scale_factor != 1 else source
        b = kp_driving["value"].shape[0]
        _, c, h, w = source_small.shape
        k1 = self.num_kp + 1
        heat = self.heatmap_difference((h, w), kp_driving, kp_source)
        motions = self.sparse_motions((h, w), kp_driving, kp_source)
        src = source_small.expand(b, c, h, w).unsqueeze(1).expand(b, k1, c, h, w).reshape(b * k1, c, h, w)
        deformed = warp(src, motions.reshape(b * k1, h, w, 2)).view(b, k1, c, h, w)
        features = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, h, w))
        mask = F.softmax(self.mask(features), dim=1)
        deformation = torch.einsum("bkhwc,bkhw->bhwc", motions, mask)
        out = {"sparse_deformed": deformed, "mask": mask, "deformation": deformation}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features))
        return out
