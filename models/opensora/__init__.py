"""Open-Sora networks (hpcaitech/Open-Sora): STDiT3 (v1.2) and the v1.2 video VAE."""

from .stdit3 import STDiT3, STDiT3Config

__all__ = ["STDiT3", "STDiT3Config"]
