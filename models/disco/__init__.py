"""DisCo networks (Wang et al., "DisCo: Disentangled Control for Realistic Human Dance Generation").

The image model is made of stock diffusers/transformers classes; only the background ControlNet's
hint encoder (a single 4→320 convolution on VAE latents) is DisCo-specific.
"""

from .background_hint import LatentHintEncoder, background_controlnet_from_unet
from .disco_model import DiscoModel

__all__ = ["DiscoModel", "LatentHintEncoder", "background_controlnet_from_unet"]
