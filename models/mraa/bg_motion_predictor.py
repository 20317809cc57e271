"""MRAA background motion predictor (paper Sec. 3.2, "background motion").

An encoder on the stacked (source, driving) pair, global average pooling and a linear layer give one
homogeneous 3x3 transform of the background (shift, affine or perspective; ``zero`` = identity,
no weights). Upstream uses it during training only; at inference the background is kept still
unless the caller asks for it. Keys ``encoder.down_blocks.*``, ``fc.*``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..fomm.primitives import HourglassEncoder

BG_TYPES = {"zero": 0, "shift": 2, "affine": 6, "perspective": 8}


class BGMotionPredictor(nn.Module):
    """(source (1|B,C,H,W), driving (B,C,H,W)) -> (B, 3, 3) background transform (driving -> source)."""

    def __init__(
        self,
        block_expansion: int = 32,
        num_channels: int = 3,
        max_features: int = 1024,
        num_blocks: int = 5,
        bg_type: str = "affine",
    ) -> None:
        super().__init__()
        if bg_type not in BG_TYPES:
            raise ValueError(f"bg_type must be one of {', '.join(BG_TYPES)}, got {bg_type!r}")
        self.bg_type = bg_type
        if bg_type != "zero":
            self.encoder = HourglassEncoder(block_expansion, 2 * num_channels, num_blocks, max_features)
            self.fc = nn.Linear(min(max_features, block_expansion * 2**num_blocks), BG_TYPES[bg_type])

    def forward(self, source: torch.Tensor, driving: torch.Tensor) -> torch.Tensor:
        b = driving.shape[0]
        out = torch.eye(3, dtype=driving.dtype, device=driving.device).repeat(b, 1, 1)
        if self.bg_type == "zero":
            return out
        pair = torch.cat([source.expand(b, -1, -1, -1), driving], dim=1)
        pred = self.fc(self.encoder(pair)[-1].mean(dim=(2, 3)))
        if self.bg_type == "shift":
            out[:, :2, 2] = pred
        else:
            out[:, :2, :] = pred[:, :6].view(b, 2, 3)
            if self.bg_type == "perspective":
                out[:, 2, :2] = pred[:, 6:]
        return out
