"""Hyper-parameters of the released TPSMM models (upstream ``config/*.yaml`` ``model_params``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TPSMMConfig:
    """Widths of the four networks; the defaults are the released vox-256 model.

    Tests shrink the block expansions / max features to get tiny models with the same key layout.
    """

    num_tps: int = 10
    num_channels: int = 3
    # inpainting network (upstream ``generator_params``)
    gen_block_expansion: int = 64
    gen_max_features: int = 512
    gen_num_down_blocks: int = 3
    # dense motion network
    dm_block_expansion: int = 64
    dm_max_features: int = 1024
    dm_num_blocks: int = 5
    dm_scale_factor: float = 0.25
    # AVD network
    id_bottle_size: int = 128
    pose_bottle_size: int = 128
    # training-time resolution: inputs are resized to this square size
    image_size: int = 256


def build_networks(cfg: TPSMMConfig) -> dict:
    """The four networks of a checkpoint, keyed like the released ``.pth.tar`` entries."""
    from .avd_network import AVDNetwork
    from .dense_motion import DenseMotionNetwork
    from .inpainting_network import InpaintingNetwork
    from .keypoint_detector import KPDetector

    return {
        "kp_detector": KPDetector(cfg.num_tps),
        "dense_motion_network": DenseMotionNetwork(
            cfg.dm_block_expansion,
            cfg.dm_num_blocks,
            cfg.dm_max_features,
            cfg.num_tps,
            cfg.num_channels,
            cfg.dm_scale_factor,
        ),
        "inpainting_network": InpaintingNetwork(
            cfg.num_channels, cfg.gen_block_expansion, cfg.gen_max_features, cfg.gen_num_down_blocks
        ),
        "avd_network": AVDNetwork(cfg.num_tps, cfg.id_bottle_size, cfg.pose_bottle_size),
    }
