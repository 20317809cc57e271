"""The DisCo image model as one holder of its stock components.

Components and their released checkpoint prefixes (DeepSpeed ``module`` dict):

| attribute               | class                           | checkpoint prefix      |
|-------------------------|---------------------------------|------------------------|
| ``unet``                | UNet2DConditionModel            | ``unet.``              |
| ``pose_controlnet``     | ControlNetModel (RGB skeleton)  | ``controlnet.nets.0.`` |
| ``background_controlnet`` | ControlNetModel + LatentHintEncoder | ``controlnet.nets.1.`` |
| ``clip``                | CLIPVisionModelWithProjection   | ``clip_image_encoder.``|
| ``refer_clip_proj``     | Linear(1024→768, no bias)       | ``refer_clip_proj.``   |
| ``vae``                 | AutoencoderKL                   | ``vae.``               |
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from torch import nn
from transformers import CLIPVisionModelWithProjection

from .attention import release_context_cache, use_shared_context_attention
from .background_hint import background_controlnet_from_unet
from .lean_blocks import use_lean_blocks
from .temporal import add_temporal_layers, set_num_frames

#: SD-1.x latent scaling used by DisCo (``scale_factor``).
VAE_SCALING = 0.18215


@dataclass
class DiscoModel:
    """All networks of a DisCo image model plus the scheduler config used for sampling."""

    unet: UNet2DConditionModel
    pose_controlnet: ControlNetModel
    background_controlnet: ControlNetModel
    clip: CLIPVisionModelWithProjection
    refer_clip_proj: nn.Linear
    vae: AutoencoderKL
    scheduler_config: dict = field(default_factory=dict)
    name: str = "disco"
    temporal: bool = False

    @classmethod
    def from_configs(
        cls,
        unet_config: dict,
        vae_config: dict,
        clip_config,
        scheduler_config: dict | None = None,
        temporal: bool = False,
    ) -> DiscoModel:
        """Build randomly initialised components with the given configs (weights loaded afterwards).

        ``temporal`` adds DisCo's temporal layers to the UNet and both ControlNets (TemConvNet).
        """
        unet = UNet2DConditionModel.from_config(unet_config)
        pose = ControlNetModel.from_unet(unet)
        background = background_controlnet_from_unet(unet)
        if temporal:  # after from_unet: the ControlNets copy the plain 2-D blocks, then all are inflated
            for net in (unet, pose, background):
                add_temporal_layers(net)
        for net in (unet, pose, background):  # reference-token K/V computed once per sampling run
            use_shared_context_attention(net)
        clip = CLIPVisionModelWithProjection(clip_config)
        proj = nn.Linear(clip_config.hidden_size, unet.config.cross_attention_dim, bias=False)
        vae = AutoencoderKL.from_config(vae_config)
        for net in (unet, pose, background, vae):  # same values, fewer fresh activations
            use_lean_blocks(net)
        for module in (unet, pose, background, clip, proj, vae):
            module.eval().requires_grad_(False)
        return cls(unet, pose, background, clip, proj, vae, dict(scheduler_config or {}), temporal=temporal)

    def set_num_frames(self, frames: int) -> None:
        """Clip length seen by the temporal layers in the next UNet/ControlNet calls (temporal model)."""
        for net in (self.unet, self.pose_controlnet, self.background_controlnet):
            set_num_frames(net, frames)

    def release_caches(self) -> None:
        """Forget the reference-token keys/values cached by the cross-attentions (end of sampling)."""
        for net in (self.unet, self.pose_controlnet, self.background_controlnet):
            release_context_cache(net)

    def modules(self) -> dict[str, nn.Module]:
        """Components by attribute name (for device moves and dtype casts)."""
        return {
            "unet": self.unet,
            "pose_controlnet": self.pose_controlnet,
            "background_controlnet": self.background_controlnet,
            "clip": self.clip,
            "refer_clip_proj": self.refer_clip_proj,
            "vae": self.vae,
        }

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> DiscoModel:
        """Move all components; CLIP stays fp32 as upstream keeps it (its tokens feed a fp16 proj)."""
        for name, module in self.modules().items():
            module.to(device=device, dtype=torch.float32 if name == "clip" else dtype)
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device
