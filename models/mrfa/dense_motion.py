"""MRFA's prior motion: the FOMM dense motion network, with an optional global background warp.

Architecture and key names are FOMM's (``models.fomm``). MRFA differs in two ways: the background
candidate warp may be a projective transform predicted by the background motion network (celebvhq
model) instead of the identity, and the occlusion output stays as logits, because the refinement
decoder adds residual logits to it before the sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..fomm.dense_motion import DenseMotionNetwork as FommDenseMotion
from ..fomm.dense_motion import warp


class DenseMotionNetwork(FommDenseMotion):
    """(source, kp_driving, kp_source, bg_param) -> deformation (B, h, w, 2), mask, occlusion logits."""

    def sparse_motions(
        self, size: tuple[int, int], kp_driving: dict, kp_source: dict, bg_param: torch.Tensor | None = None
    ) -> torch.Tensor:
        """FOMM's K+1 candidate warps; with ``bg_param`` (B, 3, 3) the background one is projective."""
        motions = super().sparse_motions(size, kp_driving, kp_source)
        if bg_param is None:
            return motions
        grid = motions[:, 0]  # identity (B, h, w, 2)
        homog = torch.cat([grid, torch.ones_like(grid[..., :1])], dim=-1)
        moved = torch.einsum("bij,bhwj->bhwi", bg_param.to(grid.dtype), homog)
        background = moved[..., :2] / moved[..., 2:3]
        return torch.cat([background[:, None], motions[:, 1:]], dim=1)

    def forward(
        self,
        source: torch.Tensor,
        kp_driving: dict,
        kp_source: dict,
        bg_param: torch.Tensor | None = None,
        source_small: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``source`` may have batch 1 while the keypoints have batch B; ``source_small`` skips the blur."""
        if source_small is None:
            source_small = self.down(source) if self.scale_factor != 1 else source
        b = kp_driving["value"].shape[0]
        _, c, h, w = source_small.shape
        k1 = self.num_kp + 1
        heat = self.heatmap_difference((h, w), kp_driving, kp_source)
        motions = self.sparse_motions((h, w), kp_driving, kp_source, bg_param)
        src = source_small.expand(b, c, h, w).unsqueeze(1).expand(b, k1, c, h, w).reshape(b * k1, c, h, w)
        deformed = warp(src, motions.reshape(b * k1, h, w, 2)).view(b, k1, c, h, w)
        features = self.hourglass(torch.cat([heat, deformed], dim=2).view(b, -1, h, w))
        mask = F.softmax(self.mask(features), dim=1)
        deformation = torch.einsum("bkhwc,bkhw->bhwc", motions, mask)
        return {"deformation": deformation, "mask": mask, "occlusion": self.occlusion(features)}
