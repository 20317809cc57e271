"""DisPose PointAdapter: keypoint features of the reference placed at the driving keypoints.

Each of the 18 OpenPose body keypoints of the reference image carries a DIFT feature (1280-d from
SD-1.5's up block 1). For every frame the adapter scatters those features onto a /16 pixel grid at
the frame's own keypoint positions (features landing in the same cell are averaged), maps them with
one small MLP per ControlNet level, and resizes them to that level. The ControlNet adds level ``i`` to
the output of its down block ``i``.

Key layout of ``DisPose.pth``: ``point_adapter.model_list.{i}.mlp.{0,2}.{weight,bias}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class _MLP(nn.Module):
    """Linear -> SiLU -> Linear, kept in an ``mlp`` Sequential for the released key names."""

    def __init__(self, in_dim: int, out_dim: int, mid_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, mid_dim), nn.SiLU(), nn.Linear(mid_dim, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def keypoint_cells(
    frames: Sequence[Mapping[str, np.ndarray]], grid_h: int, grid_w: int
) -> list[list[tuple[int, int, int]]]:
    """Per frame, ``(keypoint, row, col)`` of every usable body keypoint of person 0.

    A keypoint is used when its subset entry is not -1 and both normalised coordinates are >= 0
    (DWPose writes -1 for undetected points). Coordinates are truncated to grid cells and clamped.
    """
    out = []
    for frame in frames:
        cand = np.asarray(frame["candidate"], dtype=np.float64)
        subset = np.asarray(frame["subset"])[0]
        cells = []
        for k, (point, sub) in enumerate(zip(cand, subset, strict=False)):
            if point.min() < 0 or sub == -1:
                continue
            col = min(max(int(point[0] * grid_w), 0), grid_w - 1)
            row = min(max(int(point[1] * grid_h), 0), grid_h - 1)
            cells.append((k, row, col))
        out.append(cells)
    return out


class PointAdapter(nn.Module):
    """Scatter reference keypoint embeddings per frame and project them to every ControlNet level."""

    def __init__(
        self,
        embedding_channels: int = 1280,
        channels: Sequence[int] = (320, 640, 1280, 1280),
        downsample_rates: Sequence[int] = (16, 32, 64, 64),
        mid_dim: int = 128,
    ) -> None:
        super().__init__()
        self.model_list = nn.ModuleList(_MLP(embedding_channels, ch, mid_dim) for ch in channels)
        self.embedding_channels = embedding_channels
        self.downsample_rates = list(downsample_rates)

    def scatter(
        self,
        frames: Sequence[Mapping[str, np.ndarray]],
        point_embedding: torch.Tensor,
        height: int,
        width: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(F,C,h,w) averaged embeddings and (F,1,h,w) occupancy mask on the finest grid.

        Every visible driving keypoint marks its cell even when the reference embedding is zero
        (keypoint invisible in the reference); the MLP bias then still produces a feature there.
        """
        rate = self.downsample_rates[0]
        gh, gw = height // rate, width // rate
        n = len(frames)
        emb = point_embedding.reshape(-1, point_embedding.shape[-1])
        state = emb.new_zeros(n, self.embedding_channels, gh, gw)
        count = emb.new_zeros(n, gh, gw)
        for f, cells in enumerate(keypoint_cells(frames, gh, gw)):
            for k, row, col in cells:
                state[f, :, row, col] += emb[k]
                count[f, row, col] += 1
        mask = (count > 0).to(emb.dtype)
        return state / count.clamp(min=1).unsqueeze(1), mask.unsqueeze(1)

    def forward(
        self,
        frames: Sequence[Mapping[str, np.ndarray]],
        point_embedding: torch.Tensor,
        height: int,
        width: int,
    ) -> list[torch.Tensor]:
        """Per level, a (F,ch_i,H/r_i,W/r_i) feature map for a tile of F frames of a H x W video.

        ``frames`` holds one DWPose ``bodies`` dict per frame (``candidate`` (18,2) normalised,
        ``subset`` (1,18)); ``point_embedding`` is (1,18,C).
        """
        state, mask = self.scatter(frames, point_embedding, height, width)
        feats = state.permute(0, 2, 3, 1)  # channels last for the per-pixel MLPs
        out = []
        for rate, mlp in zip(self.downsample_rates, self.model_list, strict=True):
            size = (height // rate, width // rate)
            level = mlp(feats).permute(0, 3, 1, 2) * mask
            level = F.interpolate(level, size=size, mode="bilinear", align_corners=False)
            out.append(level * F.interpolate(mask, size=size, mode="nearest"))
        return out
