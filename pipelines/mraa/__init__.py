"""MRAA inference: checkpoint loading and batched animation (see docs/mraa.md)."""

from .animate import FITS, MODES, animate, animate_tensors, relative_region_params
from .model import WEIGHTS, MRAAModel, config_from_state_dicts, load_model

__all__ = [
    "FITS",
    "MODES",
    "WEIGHTS",
    "MRAAModel",
    "animate",
    "animate_tensors",
    "config_from_state_dicts",
    "load_model",
    "relative_region_params",
]
