"""Open-Sora networks (hpcaitech/Open-Sora): STDiT3 (v1.2) and the v1.2 video VAE."""

from .stdit3 import STDiT3, STDiT3Config
from .vae_temporal import TemporalVAE, TemporalVAEConfig
from .video_vae import OpenSoraVAE

__all__ = ["OpenSoraVAE", "STDiT3", "STDiT3Config", "TemporalVAE", "TemporalVAEConfig"]
