"""DisCo networks (Wang et al., "DisCo: Disentangled Control for Realistic Human Dance Generation").

The image model is made of stock diffusers/transformers classes; only the background ControlNet's
hint encoder (a single 4→320 convolution on VAE latents) is DisCo-specific. The temporal model adds
DisCo's temporal convolution and attention to those stock blocks (``temporal.py``).
"""

from .attention import SharedContextCrossAttention, release_context_cache, use_shared_context_attention
from .background_hint import LatentHintEncoder, background_controlnet_from_unet
from .disco_model import DiscoModel
from .temporal import add_temporal_layers, set_num_frames

__all__ = [
    "DiscoModel",
    "LatentHintEncoder",
    "SharedContextCrossAttention",
    "add_temporal_layers",
    "release_context_cache",
    "background_controlnet_from_unet",
    "set_num_frames",
    "use_shared_context_attention",
]
