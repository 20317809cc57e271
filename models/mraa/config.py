"""Hyper-parameters of the released MRAA models (upstream ``config/*.yaml`` ``model_params``)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class MRAAConfig:
    """Widths of the four networks; the defaults are the released vox256 model.

    All released configs (vox256, taichi256, mgif256, ted384, ted-youtube384) share these values
    except ``num_regions`` (20 for ted-youtube) and ``bg_type`` ("zero" for mgif). Tests shrink the
    widths to get tiny models with the same key layout.
    """

    num_regions: int = 10
    num_channels: int = 3
    revert_axis_swap: bool = True
    # region predictor
    rp_block_expansion: int = 32
    rp_max_features: int = 1024
    rp_num_blocks: int = 5
    rp_scale_factor: float = 0.25
    temperature: float = 0.1
    # generator
    gen_block_expansion: int = 64
    gen_max_features: int = 512
    gen_num_down_blocks: int = 2
    gen_num_bottleneck_blocks: int = 6
    skips: bool = True
    # pixel-wise flow predictor (inside the generator)
    flow_block_expansion: int = 64
    flow_max_features: int = 1024
    flow_num_blocks: int = 5
    flow_scale_factor: float = 0.25
    use_deformed_source: bool = True
    use_covar_heatmap: bool = True
    estimate_occlusion_map: bool = True
    # AVD network
    id_bottle_size: int = 64
    pose_bottle_size: int = 64
    # background motion predictor
    bg_block_expansion: int = 32
    bg_max_features: int = 1024
    bg_num_blocks: int = 5
    bg_type: str = "affine"
    # training-time resolution: inputs are resized to this square size
    image_size: int = 256


def build_networks(cfg: MRAAConfig) -> dict[str, nn.Module]:
    """The four networks of a checkpoint, keyed like the released ``.pth`` entries, in eval mode."""
    from .avd_network import AVDNetwork
    from .bg_motion_predictor import BGMotionPredictor
    from .generator import Generator
    from .region_predictor import RegionPredictor

    flow = {
        "block_expansion": cfg.flow_block_expansion,
        "max_features": cfg.flow_max_features,
        "num_blocks": cfg.flow_num_blocks,
        "scale_factor": cfg.flow_scale_factor,
        "use_deformed_source": cfg.use_deformed_source,
        "use_covar_heatmap": cfg.use_covar_heatmap,
        "estimate_occlusion_map": cfg.estimate_occlusion_map,
    }
    nets = {
        "region_predictor": RegionPredictor(
            cfg.rp_block_expansion,
            cfg.num_regions,
            cfg.num_channels,
            cfg.rp_max_features,
            cfg.rp_num_blocks,
            cfg.temperature,
            cfg.rp_scale_factor,
        ),
        "generator": Generator(
            cfg.num_channels,
            cfg.num_regions,
            cfg.gen_block_expansion,
            cfg.gen_max_features,
            cfg.gen_num_down_blocks,
            cfg.gen_num_bottleneck_blocks,
            flow,
            cfg.skips,
            cfg.revert_axis_swap,
        ),
        "avd_network": AVDNetwork(
            cfg.num_regions, cfg.id_bottle_size, cfg.pose_bottle_size, cfg.revert_axis_swap
        ),
        "bg_predictor": BGMotionPredictor(
            cfg.bg_block_expansion, cfg.num_channels, cfg.bg_max_features, cfg.bg_num_blocks, cfg.bg_type
        ),
    }
    return {k: v.eval() for k, v in nets.items()}
