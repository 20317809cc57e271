"""MRAA region predictor (Siarohin et al. 2021, "Motion Representations for Articulated Animation", Sec. 3.1).

An hourglass on the 4x-downscaled frame predicts one heatmap per region; a spatial softmax turns it
into a distribution over pixels. Its mean is the region's ``shift``, its second central moment the
region's ``covar``, and a principal-axis factorisation of that covariance (SVD: U sqrt(S)) the
region's ``affine`` frame. Key names match the released ``region_predictor`` state dict
(``predictor.*``, ``regions.*``, ``down.weight``).

Device independence: singular vectors are defined only up to sign, and different SVD back ends
(LAPACK on the CPU, cuSOLVER/MAGMA on a GPU) pick different signs. The released models were trained
and evaluated with the CPU path, so the 2x2 SVDs always run on the CPU in float32 here, whatever
device and dtype the network runs in; the result does not depend on the device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm.primitives import AntiAliasInterpolation2d, Hourglass, make_coordinate_grid


def covariance_sqrt(covar: torch.Tensor) -> torch.Tensor:
    """(..., 2, 2) symmetric PSD -> A = U diag(sqrt(S)) with A A^T = covar (CPU LAPACK signs)."""
    flat = covar.detach().reshape(-1, 2, 2).to("cpu", torch.float32)
    u, s, _ = torch.linalg.svd(flat)
    affine = u * s.sqrt().unsqueeze(-2)  # scale column j of U by sqrt(s_j)
    return affine.to(covar.device, covar.dtype).view(covar.shape)


class RegionPredictor(nn.Module):
    """Frames (B, C, H, W) in [0, 1] -> {"shift" (B,K,2), "covar", "affine" (B,K,2,2), "heatmap"}."""

    def __init__(
        self,
        block_expansion: int = 32,
        num_regions: int = 10,
        num_channels: int = 3,
        max_features: int = 1024,
        num_blocks: int = 5,
        temperature: float = 0.1,
        scale_factor: float = 0.25,
        pad: int = 3,
    ) -> None:
        super().__init__()
        self.predictor = Hourglass(block_expansion, num_channels, num_blocks, max_features)
        self.regions = nn.Conv2d(self.predictor.out_filters, num_regions, kernel_size=(7, 7), padding=pad)
        self.num_regions = num_regions
        self.temperature = temperature
        self.scale_factor = scale_factor
        if scale_factor != 1:
            self.down = AntiAliasInterpolation2d(num_channels, scale_factor)

    @staticmethod
    def region_moments(heatmap: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and covariance of each region's distribution over the [-1, 1] pixel grid."""
        grid = make_coordinate_grid(heatmap.shape[2:], heatmap.dtype, heatmap.device)
        weights = heatmap.unsqueeze(-1)
        shift = (weights * grid).sum(dim=(2, 3))
        centred = grid - shift[:, :, None, None, :]
        outer = centred.unsqueeze(-1) * centred.unsqueeze(-2)
        covar = (outer * weights.unsqueeze(-1)).sum(dim=(2, 3))
        return shift, covar

    def forward(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.down(frames) if self.scale_factor != 1 else frames
        logits = self.regions(self.predictor(x))
        b, k, h, w = logits.shape
        heatmap = F.softmax(logits.view(b, k, h * w) / self.temperature, dim=2).view(b, k, h, w)
        shift, covar = self.region_moments(heatmap)
        return {"shift": shift, "covar": covar, "affine": covariance_sqrt(covar), "heatmap": heatmap}
