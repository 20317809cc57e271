"""MRFA (Tao et al., "Learning Motion Refinement for Unsupervised Face Animation", NeurIPS 2023).

Networks state-dict compatible with the released ``vox.pth`` / ``celebvhq.pth`` (entries of the
``model`` dict: ``encoder``, ``dense_motion``, ``decoder``, and ``bg_predictor`` for celebvhq). The
VGG-19 and image pyramid stored beside them are training-only and are not built.
"""

from .background import BackgroundMotionPredictor
from .config import MRFAConfig, build_networks
from .dense_motion import DenseMotionNetwork
from .keypoint_transformer import KeypointTransformer
from .refinement import RefinementDecoder

__all__ = [
    "BackgroundMotionPredictor",
    "DenseMotionNetwork",
    "KeypointTransformer",
    "MRFAConfig",
    "RefinementDecoder",
    "build_networks",
]
