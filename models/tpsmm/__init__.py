"""Thin-Plate Spline Motion Model (Zhao & Zhang, CVPR 2022) networks.

State-dict compatible with the released ``vox.pth.tar`` (keys ``kp_detector``,
``dense_motion_network``, ``inpainting_network``, ``avd_network``). Every network takes a batch of
frames, so a whole clip can be animated in a few forward passes instead of a Python loop.
"""

from .avd_network import AVDNetwork
from .config import TPSMMConfig
from .dense_motion import DenseMotionNetwork
from .inpainting_network import InpaintingNetwork
from .keypoint_detector import KPDetector

__all__ = ["AVDNetwork", "DenseMotionNetwork", "InpaintingNetwork", "KPDetector", "TPSMMConfig"]
