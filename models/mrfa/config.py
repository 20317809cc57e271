"""Hyper-parameters of the released MRFA models (upstream ``config/vox1.yaml`` / ``celebvhq.yaml``).

Both released configs describe the same networks (the "mtia" prior: a keypoint transformer plus
FOMM dense motion, and the refinement decoder); celebvhq was trained with background motion, so its
checkpoint also holds a background motion predictor. Tests shrink the widths to get tiny models with
the same key layout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MRFAConfig:
    """Widths of the networks; the defaults are the released 256x256 models."""

    image_size: int = 256
    num_kp: int = 10
    num_channels: int = 3
    # keypoint transformer (upstream ``mtia_kp_detector.MODEL``)
    kp_dim: int = 192
    kp_depth: int = 12
    kp_heads: int = 8
    kp_mlp_ratio: int = 3
    kp_patch_size: int = 4
    hr_stage2_channels: tuple[int, ...] = (32, 64)
    hr_stage2_blocks: tuple[int, ...] = (4, 4)
    hr_stage2_modules: int = 1
    hr_stage3_channels: tuple[int, ...] = (32, 64, 128)
    hr_stage3_blocks: tuple[int, ...] = (4, 4, 4)
    hr_stage3_modules: int = 4
    # prior dense motion (upstream ``dense_motion``)
    dm_block_expansion: int = 64
    dm_max_features: int = 1024
    dm_num_blocks: int = 5
    dm_scale_factor: float = 0.25
    # refinement decoder (upstream ``raft_flow``)
    corr_dim: int = 256
    gen_block_expansion: int = 64
    gen_max_features: int = 512
    gen_num_up_blocks: int = 5
    enc_block_expansion: int = 32
    enc_max_features: int = 512
    enc_num_blocks: int = 5
    # celebvhq: background motion predictor present
    background: bool = False


def build_networks(cfg: MRFAConfig) -> dict:
    """The networks of a checkpoint, keyed like the entries of the released ``model`` state dict."""
    from .background import BackgroundMotionPredictor
    from .dense_motion import DenseMotionNetwork
    from .keypoint_transformer import KeypointTransformer
    from .refinement import RefinementDecoder

    nets = {
        "encoder": KeypointTransformer(cfg),
        "dense_motion": DenseMotionNetwork(
            block_expansion=cfg.dm_block_expansion,
            num_blocks=cfg.dm_num_blocks,
            max_features=cfg.dm_max_features,
            num_kp=cfg.num_kp,
            num_channels=cfg.num_channels,
            scale_factor=cfg.dm_scale_factor,
        ),
        "decoder": RefinementDecoder(cfg),
    }
    if cfg.background:
        nets["bg_predictor"] = BackgroundMotionPredictor(cfg.num_channels)
    return nets
