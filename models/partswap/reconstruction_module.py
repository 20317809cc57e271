"""Co-part reconstruction and part swap (Siarohin et al. 2020, Sec. 3.2 and 4.3).

Reconstruction: every part k moves the source by its own affine warp
T_k(z) = shift_s,k + A_s,k A_t,k^-1 (z - shift_t,k) (k = 0 is the background, left in place); the
target's soft segmentation picks, per pixel, which warp applies. The source features are warped
by the blended field and multiplied by a visibility map (1 where the target's foreground was not
covered by the source's foreground), then decoded.

Part swap: the target frame is encoded too, and the warped source features replace the target's
inside a blend mask M (the selected parts): out = enc_t (1 - M) + warp(enc_s) M. With a mask taken
from the source segmentation, the mask is warped like the source. In the "first order motion model"
variant the per-part warps go through FOMM's dense motion network (keypoints = part shifts,
jacobians = part affines) and its occlusion map replaces the visibility.

The encoder/decoder are FOMM's generator without its own keypoints, so this module reuses it;
key names (``first``, ``down_blocks``, ``up_blocks``, ``bottleneck``, ``final`` and, in the FOMM
variant, ``dense_motion_network``) match ``reconstruction_module`` / ``generator`` in the released
checkpoints. Sampling keeps upstream's ``grid_sample`` convention (align_corners=False).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..fomm.generator import OcclusionAwareGenerator
from ..fomm.primitives import AntiAliasInterpolation2d, make_coordinate_grid


def segment_motions(size: tuple[int, int], seg_source: dict, seg_target: dict) -> torch.Tensor:
    """Per-part backward warps target -> source, identity first: (B, S+1, h, w, 2).

    ``seg_source`` may have batch 1 while ``seg_target`` has batch B (one source, many frames).
    """
    shift_t, shift_s = seg_target["shift"], seg_source["shift"]
    identity = make_coordinate_grid(size, shift_t.dtype, shift_t.device)
    z = identity[None, None] - shift_t[:, :, None, None, :]
    if "affine" in seg_target:
        linear = torch.matmul(seg_source["affine"], torch.inverse(seg_target["affine"]))
        z = torch.einsum("bsij,bshwj->bshwi", linear.expand(z.shape[0], -1, -1, -1), z)
    to_source = z + shift_s[:, :, None, None, :]
    background = identity[None, None].expand(to_source.shape[0], 1, *identity.shape)
    return torch.cat([background, to_source], dim=1)


def blend_downsample(mask: torch.Tensor, scale: float) -> torch.Tensor:
    """Band-limited downscaling of the blend mask by ``scale`` (upstream's ``blend_scale``).

    Upstream builds this as a module holding a kernel buffer, which made strict checkpoint loading
    fail whenever ``blend_scale != 1``; here the kernel is built on the fly and never stored.
    """
    if scale == 1:
        return mask
    down = AntiAliasInterpolation2d(mask.shape[1], scale).to(mask.device).eval()
    return down(mask)


class ReconstructionModule(OcclusionAwareGenerator):
    """Encoder / part-wise warp / decoder. ``dense_motion_params`` given: the FOMM-aligned variant."""

    def __init__(
        self,
        num_channels: int = 3,
        num_segments: int = 10,
        block_expansion: int = 64,
        max_features: int = 512,
        num_down_blocks: int = 2,
        num_bottleneck_blocks: int = 6,
        estimate_visibility: bool = True,
        dense_motion_params: dict | None = None,
    ) -> None:
        super().__init__(
            num_channels=num_channels,
            num_kp=num_segments,
            block_expansion=block_expansion,
            max_features=max_features,
            num_down_blocks=num_down_blocks,
            num_bottleneck_blocks=num_bottleneck_blocks,
            estimate_occlusion_map=True,
            dense_motion_params=dense_motion_params,
        )
        self.num_segments = num_segments
        self.estimate_visibility = estimate_visibility

    @staticmethod
    def _as_keypoints(seg: dict) -> dict:
        """Part shifts/affines in the keypoint vocabulary of FOMM's dense motion network."""
        kp = {"value": seg["shift"]}
        if "affine" in seg:
            kp["jacobian"] = seg["affine"]
        return kp

    def motion(
        self,
        source: torch.Tensor,
        seg_source: dict,
        seg_target: dict,
        source_small: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Backward deformation (B, h, w, 2) and visibility (B, 1, h, w) (None when not estimated)."""
        if self.dense_motion_network is not None:
            out = self.dense_motion_network(
                source,
                self._as_keypoints(seg_target),
                self._as_keypoints(seg_source),
                source_small=source_small,
            )
            return out["deformation"], out.get("occlusion_map") if self.estimate_visibility else None
        part_map = seg_target["segmentation"]
        motions = segment_motions(part_map.shape[2:], seg_source, seg_target)
        deformation = torch.einsum("bshwc,bshw->bhwc", motions, part_map)
        visibility = None
        if self.estimate_visibility:
            source_fg = seg_source["segmentation"][:, 1:].sum(dim=1, keepdim=True)
            target_fg = part_map[:, 1:].sum(dim=1, keepdim=True)
            visibility = 1 - source_fg * (1 - target_fg)
        return deformation, visibility

    def _warp_source(
        self, features: torch.Tensor, deformation: torch.Tensor, visibility: torch.Tensor | None
    ) -> torch.Tensor:
        features = self.deform(features.expand(deformation.shape[0], -1, -1, -1), deformation)
        if visibility is not None:
            if visibility.shape[2:] != features.shape[2:]:
                visibility = F.interpolate(
                    visibility, size=features.shape[2:], mode="bilinear", align_corners=False
                )
            features = features * visibility
        return features

    def forward(self, source: torch.Tensor, seg_source: dict, seg_target: dict) -> dict[str, torch.Tensor]:
        """Reconstruct the target from the source and both segmentations (the training objective)."""
        deformation, visibility = self.motion(source, seg_source, seg_target)
        features = self._warp_source(self.encode(source), deformation, visibility)
        out = {
            "prediction": self.decode(features),
            "deformed": self.deform(source.expand(deformation.shape[0], -1, -1, -1), deformation),
        }
        if visibility is not None:
            out["visibility_maps"] = visibility
        return out

    def swap(
        self,
        source: torch.Tensor,
        target: torch.Tensor,
        seg_source: dict,
        seg_target: dict,
        blend_mask: torch.Tensor,
        blend_scale: float = 1.0,
        use_source_segmentation: bool = False,
        source_features: torch.Tensor | None = None,
        source_small: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Target frames (B, C, H, W) with the masked parts taken from the aligned source.

        ``blend_mask`` (1|B, 1, h', w') is brought to the feature size by ``blend_downsample``;
        with ``use_source_segmentation`` it is a source-side mask and is warped with the source.
        ``source_features``/``source_small`` let the caller encode the source once for all frames.
        """
        deformation, visibility = self.motion(source, seg_source, seg_target, source_small=source_small)
        enc_source = self.encode(source) if source_features is None else source_features
        enc_source = self._warp_source(enc_source, deformation, visibility)
        enc_target = self.encode(target)
        mask = blend_downsample(blend_mask, blend_scale)
        if mask.shape[2:] != enc_target.shape[2:]:
            raise ValueError(
                f"the blend mask is {tuple(mask.shape[2:])} after blend_scale {blend_scale}, "
                f"but the features are {tuple(enc_target.shape[2:])}; choose the blend scale "
                "that maps the mask size to the feature size"
            )
        if use_source_segmentation:
            mask = self.deform(mask.expand(deformation.shape[0], -1, -1, -1), deformation)
        blended = enc_target * (1 - mask) + enc_source * mask
        return self.decode(blended)
