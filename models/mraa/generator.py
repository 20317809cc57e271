"""MRAA generator (paper Sec. 3.2): an encoder-decoder whose skip connections are warped.

The source is encoded (7x7 conv, down blocks); the pixel-wise flow warps the deepest feature map,
which is masked by the occlusion map and decoded (residual bottleneck, up blocks). With ``skips``
every decoder stage blends the warped encoder feature of the same size in by the occlusion map
(visible: warped source feature, occluded: decoder output), and the final image is blended the same
way with the warped source pixels. Key names match ``generator.*`` in the released checkpoints.

Batching: the source features are computed once (batch 1) and broadcast over the driving batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm.dense_motion import warp
from ..fomm.primitives import DownBlock2d, ResBlock2d, SameBlock2d, UpBlock2d
from .pixelwise_flow import PixelwiseFlowPredictor


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, h, w, 2) flow bilinearly resized to ``size`` (values are coordinates, so unchanged)."""
    if tuple(flow.shape[1:3]) == tuple(size):
        return flow
    resized = F.interpolate(flow.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
    return resized.permute(0, 2, 3, 1)


def blend_warped(
    skip: torch.Tensor, flow: torch.Tensor, occlusion: torch.Tensor | None, previous: torch.Tensor | None
) -> torch.Tensor:
    """Warp ``skip`` by the flow and mix it with ``previous`` by the occlusion map (visible = 1)."""
    b = flow.shape[0]
    warped = warp(skip.expand(b, -1, -1, -1), resize_flow(flow, skip.shape[2:]))
    if occlusion is None:
        return warped
    if occlusion.shape[2:] != warped.shape[2:]:
        occlusion = F.interpolate(occlusion, size=warped.shape[2:], mode="bilinear", align_corners=False)
    if previous is None:
        return warped * occlusion
    return warped * occlusion + previous * (1 - occlusion)


class Generator(nn.Module):
    """(source (1|B), driving region params (B), source region params) -> {"prediction": (B,C,H,W), ...}."""

    def __init__(
        self,
        num_channels: int = 3,
        num_regions: int = 10,
        block_expansion: int = 64,
        max_features: int = 512,
        num_down_blocks: int = 2,
        num_bottleneck_blocks: int = 6,
        pixelwise_flow_predictor_params: dict | None = None,
        skips: bool = True,
        revert_axis_swap: bool = True,
    ) -> None:
        super().__init__()
        self.pixelwise_flow_predictor = PixelwiseFlowPredictor(
            num_regions=num_regions,
            num_channels=num_channels,
            revert_axis_swap=revert_axis_swap,
            **(pixelwise_flow_predictor_params or {}),
        )
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=7, padding=3)

        def width(i: int) -> int:
            return min(max_features, block_expansion * (2**i))

        self.down_blocks = nn.ModuleList(DownBlock2d(width(i), width(i + 1)) for i in range(num_down_blocks))
        self.up_blocks = nn.ModuleList(
            UpBlock2d(width(i + 1), width(i)) for i in reversed(range(num_down_blocks))
        )
        self.bottleneck = nn.Sequential()
        for i in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{i}", ResBlock2d(width(num_down_blocks)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))
        self.skips = skips

    def encode(self, source: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features, finest first (computed once per source, reused for every frame)."""
        feats = [self.first(source)]
        for block in self.down_blocks:
            feats.append(block(feats[-1]))
        return feats

    def decode(
        self,
        source: torch.Tensor,
        feats: list[torch.Tensor],
        flow: torch.Tensor,
        occlusion: torch.Tensor | None,
    ) -> torch.Tensor:
        out = blend_warped(feats[-1], flow, occlusion, None)
        out = self.bottleneck(out)
        for i, block in enumerate(self.up_blocks):
            if self.skips:
                out = blend_warped(feats[-(i + 1)], flow, occlusion, out)
            out = block(out)
        if self.skips:
            out = blend_warped(feats[0], flow, occlusion, out)
        out = torch.sigmoid(self.final(out))
        if self.skips:
            out = blend_warped(source, flow, occlusion, out)
        return out

    def forward(
        self,
        source: torch.Tensor,
        driving_params: dict,
        source_params: dict,
        bg_params: torch.Tensor | None = None,
        source_features: list[torch.Tensor] | None = None,
        source_small: torch.Tensor | None = None,
        return_deformed: bool = False,
    ) -> dict:
        motion = self.pixelwise_flow_predictor(
            source, driving_params, source_params, bg_params, source_small=source_small
        )
        feats = self.encode(source) if source_features is None else source_features
        flow, occlusion = motion["optical_flow"], motion.get("occlusion_map")
        out = {"optical_flow": flow, "prediction": self.decode(source, feats, flow, occlusion)}
        if occlusion is not None:
            out["occlusion_map"] = occlusion
        if return_deformed:
            out["deformed"] = blend_warped(source, flow, None, None)
        return out
