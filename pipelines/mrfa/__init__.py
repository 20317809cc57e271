"""MRFA inference: checkpoint loading and batched animation (see docs/mrfa.md)."""

from .animate import FITS, MODES, animate, animate_tensors
from .model import WEIGHTS, MRFAModel, config_from_checkpoint, load_model, split_checkpoint

__all__ = [
    "FITS",
    "MODES",
    "WEIGHTS",
    "MRFAModel",
    "animate",
    "animate_tensors",
    "config_from_checkpoint",
    "load_model",
    "split_checkpoint",
]
