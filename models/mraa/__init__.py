"""Motion Representations for Articulated Animation (MRAA; Siarohin et al., CVPR 2021) networks.

State-dict compatible with the released checkpoints (``vox256.pth`` etc.: entries
``region_predictor``, ``generator``, ``avd_network``, ``bg_predictor``). Every network takes a batch
of frames, so a clip is animated in a few forward passes instead of a Python loop.
"""

from .avd_network import AVDNetwork
from .bg_motion_predictor import BGMotionPredictor
from .config import MRAAConfig, build_networks
from .generator import Generator
from .pixelwise_flow import PixelwiseFlowPredictor
from .region_predictor import RegionPredictor

__all__ = [
    "AVDNetwork",
    "BGMotionPredictor",
    "Generator",
    "MRAAConfig",
    "PixelwiseFlowPredictor",
    "RegionPredictor",
    "build_networks",
]
