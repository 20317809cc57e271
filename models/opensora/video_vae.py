"""Open-Sora 1.2 video VAE: per-frame SDXL VAE (diffusers ``AutoencoderKL``) + temporal VAE.

    encode: frames ─ spatial VAE (8×8, ×0.18215) ─ 17-frame micro-chunks ─ temporal VAE (4× time)
            ─ (z − shift) / scale                          (per-channel normalisation)
    decode: z·scale + shift ─ 5-latent chunks ─ temporal decode (17 frames each, padding trimmed)
            ─ spatial decode (/0.18215)

A 17-frame chunk becomes 5 latents (front-padded to 20 frames), a shorter last chunk of n frames
becomes ⌈n/4⌉ latents. Decoding needs the frame count to trim the padding; without it, each
full chunk gives 17 frames and a last chunk of r latents 4r−3 frames (what encoding 4r−3 frames
gives back).

Attribute names give the released ``model.safetensors`` keys: ``spatial_vae.module.*`` (diffusers
names), ``temporal_vae.*``, ``scale``, ``shift``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import AutoencoderKL
from torch import nn

from .vae_temporal import TemporalVAE, TemporalVAEConfig

#: ``PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers`` (subfolder ``vae``): the spatial half.
SDXL_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "act_fn": "silu",
    "sample_size": 1024,
    "scaling_factor": 0.13025,
    "force_upcast": True,
}
#: Open-Sora multiplies spatial latents by SD's factor, not the config's 0.13025.
SPATIAL_SCALING = 0.18215
SHIFT = (-0.10, 0.34, 0.27, 0.98)
SCALE = (3.85, 2.32, 2.33, 3.06)


class SpatialVAE(nn.Module):
    """Holds the diffusers VAE as ``module`` (the checkpoint prefix ``spatial_vae.module.``)."""

    def __init__(self, config: dict | None = None):
        super().__init__()
        self.module = AutoencoderKL.from_config(config or SDXL_VAE_CONFIG)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.module.config.block_out_channels) - 1)


class OpenSoraVAE(nn.Module):
    """The v1.2 video VAE; images are clips of one frame."""

    def __init__(
        self,
        spatial_config: dict | None = None,
        temporal_config: TemporalVAEConfig | None = None,
        micro_frame_size: int = 17,
        shift: tuple[float, ...] = SHIFT,
        scale: tuple[float, ...] = SCALE,
    ):
        super().__init__()
        self.spatial_vae = SpatialVAE(spatial_config)
        self.temporal_vae = TemporalVAE(temporal_config)
        self.micro_frame_size = micro_frame_size
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32)[None, :, None, None, None])
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32)[None, :, None, None, None])

    # ------------------------------------------------------------------------------------- sizes
    @property
    def micro_latent_size(self) -> int:
        return self.temporal_vae.latent_frames(self.micro_frame_size)

    @property
    def spatial_factor(self) -> int:
        return self.spatial_vae.downsample

    @property
    def dtype(self) -> torch.dtype:
        return self.scale.dtype

    @property
    def device(self) -> torch.device:
        return self.scale.device

    def latent_frames(self, frames: int) -> int:
        """Latent count of a clip: 5 per full 17-frame chunk plus ⌈rest/4⌉."""
        full, rest = divmod(frames, self.micro_frame_size)
        return full * self.micro_latent_size + self.temporal_vae.latent_frames(rest)

    def frames_for_latents(self, latents: int) -> int:
        """Default frame count of ``latents`` (inverse of :meth:`latent_frames` for 17k + 4r−3)."""
        full, rest = divmod(latents, self.micro_latent_size)
        tf = self.temporal_vae.cfg.time_factor
        return full * self.micro_frame_size + (rest * tf - (tf - 1) if rest else 0)

    # ------------------------------------------------------------------------------ spatial half
    def _spatial_encode(self, x: torch.Tensor, batch: int, generator: torch.Generator | None) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        out = []
        for i in range(0, frames.shape[0], batch):
            dist = self.spatial_vae.module.encode(frames[i : i + batch]).latent_dist
            out.append(_sample(dist.mean, dist.logvar, generator) * SPATIAL_SCALING)
        z = torch.cat(out)
        return z.view(b, t, *z.shape[1:]).permute(0, 2, 1, 3, 4)

    def _spatial_decode(self, z: torch.Tensor, batch: int) -> torch.Tensor:
        b, c, t, h, w = z.shape
        frames = z.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        out = [
            self.spatial_vae.module.decode(frames[i : i + batch] / SPATIAL_SCALING).sample
            for i in range(0, frames.shape[0], batch)
        ]
        x = torch.cat(out)
        return x.view(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)

    # --------------------------------------------------------------------------------- interface
    @torch.no_grad()
    def encode(
        self,
        video: torch.Tensor,
        generator: torch.Generator | None = None,
        sample: bool = True,
        spatial_batch: int = 4,
    ) -> torch.Tensor:
        """video (B,3,T,H,W) in [-1,1] → normalised latents (B,4,latent_frames(T),H/8,W/8).

        ``sample=False`` returns posterior means (deterministic); otherwise both posteriors are
        sampled with noise drawn on the CPU from ``generator`` (reproducible on any device).
        """
        gen = generator if sample else None
        x_z = self._spatial_encode(video, spatial_batch, gen if sample else _MEAN)
        chunks = []
        for i in range(0, x_z.shape[2], self.micro_frame_size):
            mean, logvar = self.temporal_vae.encode(x_z[:, :, i : i + self.micro_frame_size])
            chunks.append(_sample(mean, logvar, gen if sample else _MEAN))
        z = torch.cat(chunks, dim=2)
        return (z - self.shift.to(z.dtype)) / self.scale.to(z.dtype)

    @torch.no_grad()
    def decode(
        self,
        z: torch.Tensor,
        num_frames: int | None = None,
        spatial_batch: int = 4,
        callback: Callable[[int, int], None] | None = None,
    ) -> torch.Tensor:
        """Normalised latents (B,4,t,h,w) → video (B,3,num_frames,H,W) in about [-1,1].

        Chunks of 5 latents are decoded one at a time through both halves, so memory stays
        bounded by one chunk; ``callback(done, total)`` is called after each chunk.
        """
        if num_frames is None:
            num_frames = self.frames_for_latents(z.shape[2])
        if self.latent_frames(num_frames) != z.shape[2]:
            raise ValueError(
                f"{z.shape[2]} latent frames cannot decode to {num_frames} frames "
                f"({num_frames} frames encode to {self.latent_frames(num_frames)} latents)."
            )
        z = z * self.scale.to(z.dtype) + self.shift.to(z.dtype)
        step = self.micro_latent_size
        total = -(-z.shape[2] // step)
        videos, remaining = [], num_frames
        for n, i in enumerate(range(0, z.shape[2], step)):
            frames = min(self.micro_frame_size, remaining)
            x_z = self.temporal_vae.decode(z[:, :, i : i + step], num_frames=frames)
            videos.append(self._spatial_decode(x_z, spatial_batch))
            remaining -= self.micro_frame_size
            if callback is not None:
                callback(n + 1, total)
        return torch.cat(videos, dim=2)


_MEAN = object()  # marker: take the posterior mean


def _sample(mean: torch.Tensor, logvar: torch.Tensor, generator) -> torch.Tensor:
    """mean + σ·ε with ε from ``generator`` on the CPU (global RNG when None); the mean for ``_MEAN``."""
    if generator is _MEAN:
        return mean
    noise = torch.randn(mean.shape, generator=generator, dtype=torch.float32)
    return mean + torch.exp(0.5 * logvar.clamp(-30.0, 20.0)) * noise.to(mean.device, mean.dtype)
