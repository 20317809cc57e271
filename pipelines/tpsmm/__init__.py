"""TPSMM inference: checkpoint loading and batched animation (see docs/tpsmm.md)."""

from .animate import MODES, animate, animate_tensors
from .model import WEIGHTS, TPSMMModel, config_from_state_dicts, load_model

__all__ = [
    "MODES",
    "WEIGHTS",
    "TPSMMModel",
    "animate",
    "animate_tensors",
    "config_from_state_dicts",
    "load_model",
]
