"""FSRT inference: checkpoint loading and batched, chunked animation (see docs/fsrt.md)."""

from .animate import FITS, animate, animate_tensors, transfer_keypoints
from .model import WEIGHTS, FSRTModel, config_from_state_dicts, load_model

__all__ = [
    "FITS",
    "WEIGHTS",
    "FSRTModel",
    "animate",
    "animate_tensors",
    "config_from_state_dicts",
    "load_model",
    "transfer_keypoints",
]
