"""MRAA pixel-wise flow predictor (paper Sec. 3.2).

Like FOMM's dense motion network, but each region contributes a full-covariance Gaussian heatmap
and an affine warp built from the regions' principal-axis frames:
T_k(z) = shift_s + A_s A_d^-1 (z - shift_d). An hourglass blends the K region warps and a
background warp (identity, or a 3x3 homogeneous background motion) per pixel and predicts an
occlusion map. Key names match ``generator.pixelwise_flow_predictor.*`` in the released checkpoints.

Sampling keeps upstream's ``grid_sample`` default (``align_corners=False``) on corner-convention
grids, which is what the released weights were trained with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm.dense_motion import warp
from ..fomm.primitives import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid


def region_gaussian(shift: torch.Tensor, covar: torch.Tensor | float, size: tuple[int, int]) -> torch.Tensor:
    """exp(-1/2 (z - mu)^T covar^-1 (z - mu)) per region: shift (B,K,2) -> (B,K,h,w)."""
    grid = make_coordinate_grid(size, shift.dtype, shift.device)
    diff = grid - shift[:, :, None, None, :]
    if isinstance(covar, float):
        return torch.exp(-0.5 * (diff**2).sum(-1) / covar)
    precision = torch.inverse(covar)[:, :, None, None]
    mahalanobis = (diff.unsqueeze(-2) @ precision @ diff.unsqueeze(-1)).squeeze(-1).squeeze(-1)
    return torch.exp(-0.5 * mahalanobis)


def region_transforms(source_params: dict, driving_params: dict, revert_axis_swap: bool) -> torch.Tensor:
    """A_s A_d^-1 per region (B,K,2,2). With ``revert_axis_swap`` the matrix is negated where its
    top-left entry is negative: the SVD may flip both principal axes of a region between source and
    driving frames, which would otherwise turn the region upside down."""
    affine = source_params["affine"] @ torch.inverse(driving_params["affine"])
    if revert_axis_swap:
        affine = affine * torch.sign(affine[..., 0:1, 0:1])
    return affine


class PixelwiseFlowPredictor(nn.Module):
    """(source (1|B), driving params (B), source params (1|B)) -> optical_flow (B,h,w,2), occlusion_map."""

    def __init__(
        self,
        block_expansion: int = 64,
        num_blocks: int = 5,
        max_features: int = 1024,
        num_regions: int = 10,
        num_channels: int = 3,
        estimate_occlusion_map: bool = True,
        scale_factor: float = 0.25,
        region_var: float = 0.01,
        use_covar_heatmap: bool = True,
        use_deformed_source: bool = True,
        revert_axis_swap: bool = True,
    ) -> None:
        super().__init__()
        per_region = num_channels * int(use_deformed_source) + 1  # heatmap (+ warped source)
        self.hourglass = Hourglass(block_expansion, (num_regions + 1) * per_region, num_blocks, max_features)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_regions + 1, kernel_size=(7, 7), padding=(3, 3))
        self.occlusion = (
            nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
            if estimate_occlusion_map
            else None
        )
        self.num_regions = num_regions
        self.scale_factor = scale_factor
        self.region_var = region_var
        self.use_covar_heatmap = use_covar_heatmap
        self.use_deformed_source = use_deformed_source
        self.revert_axis_swap = revert_axis_swap
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    def heatmap_difference(self, size: tuple[int, int], driving: dict, source: dict, b: int) -> torch.Tensor:
        """Eq. 6: H_k = G(driving region) - G(source region), plus a zero background -> (B,K+1,1,h,w)."""

        def gaussian(params: dict) -> torch.Tensor:
            covar = params["covar"] if self.use_covar_heatmap else self.region_var
            return region_gaussian(params["shift"], covar, size)

        heat = gaussian(driving) - gaussian(source)
        heat = heat.expand(b, -1, -1, -1)
        return torch.cat([heat.new_zeros(b, 1, *size), heat], dim=1).unsqueeze(2)

    def sparse_motions(
        self, size: tuple[int, int], driving: dict, source: dict, b: int, bg_params: torch.Tensor | None
    ) -> torch.Tensor:
        """Background warp and the K region warps, each mapping driving to source coords -> (B,K+1,h,w,2)."""
        identity = make_coordinate_grid(size, driving["shift"].dtype, driving["shift"].device)
        z = identity - driving["shift"][:, :, None, None, :]
        affine = region_transforms(source, driving, self.revert_axis_swap)
        z = torch.einsum("bkij,bkhwj->bkhwi", affine.expand(b, -1, -1, -1), z.expand(b, -1, -1, -1, -1))
        to_source = z + source["shift"][:, :, None, None, :]
        if bg_params is None:
            background = identity.expand(b, 1, *identity.shape)
        else:  # homogeneous 3x3 background motion, e.g. a camera pan
            homog = torch.cat([identity, identity.new_ones(*size, 1)], dim=-1)
            moved = torch.einsum("bij,hwj->bhwi", bg_params.expand(b, -1, -1), homog)
            background = (moved[..., :2] / moved[..., 2:3]).unsqueeze(1)
        return torch.cat([background, to_source], dim=1)

    def forward(
        self,
        source: torch.Tensor,
        driving_params: dict,
        source_params: dict,
        bg_params: torch.Tensor | None = None,
        source_small: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """``source`` may have batch 1 for a batch B of driving params (one source, many frames)."""
        if source_small is None:
            source_small = self.down(source) if self.scale_factor != 1 else source
        b = driving_params["shift"].shape[0]
        _, c, h, w = source_small.shape
        k1 = self.num_regions + 1
        heat = self.heatmap_difference((h, w), driving_params, source_params, b)
        motions = self.sparse_motions((h, w), driving_params, source_params, b, bg_params)
        inputs = heat
        if self.use_deformed_source:
            src = source_small.expand(b, c, h, w).unsqueeze(1).expand(b, k1, c, h, w).reshape(b * k1, c, h, w)
            deformed = warp(src, motions.reshape(b * k1, h, w, 2)).view(b, k1, c, h, w)
            inputs = torch.cat([heat, deformed], dim=2)
        features = self.hourglass(inputs.view(b, -1, h, w))
        mask = F.softmax(self.mask(features), dim=1)
        out = {"optical_flow": torch.einsum("bkhwc,bkhw->bhwc", motions, mask)}
        if self.occlusion is not None:
            out["occlusion_map"] = torch.sigmoid(self.occlusion(features))
        return out
