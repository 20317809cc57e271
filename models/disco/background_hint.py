"""Background ControlNet of DisCo: a ControlNet whose hint encoder reads VAE latents.

DisCo conditions on the background through a second ControlNet. Its condition is already a latent
(4 channels at 1/8 resolution), so the usual 16/32/96/256 hint encoder is replaced by one 3×3
convolution 4→C0 (no activation, no zero conv), initialised from the UNet's ``conv_in``. The module
keeps the released key names ``controlnet_cond_embedding.conv_in.{weight,bias}``.
"""

from __future__ import annotations

import torch
from diffusers import ControlNetModel, UNet2DConditionModel
from torch import nn


class LatentHintEncoder(nn.Module):
    """Maps a background latent (B,4,h,w) to the first UNet feature width (B,C0,h,w)."""

    def __init__(self, latent_channels: int = 4, out_channels: int = 320) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(latent_channels, out_channels, kernel_size=3, padding=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.conv_in(latent)


def background_controlnet_from_unet(unet: UNet2DConditionModel, copy_weights: bool = True) -> ControlNetModel:
    """Build DisCo's background ControlNet from a UNet, as upstream does at construction time.

    With ``copy_weights`` the encoder half and the hint conv start from the UNet (upstream init);
    a checkpoint load overwrites them anyway.
    """
    controlnet = ControlNetModel.from_unet(unet, load_weights_from_unet=copy_weights)
    hint = LatentHintEncoder(unet.config.in_channels, unet.config.block_out_channels[0])
    if copy_weights:
        hint.conv_in.load_state_dict(unet.conv_in.state_dict())
    controlnet.controlnet_cond_embedding = hint
    return controlnet
