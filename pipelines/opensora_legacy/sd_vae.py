"""The image VAE of Open-Sora 1.0/1.1 and PixArt: a diffusers ``AutoencoderKL`` applied frame by frame.

Open-Sora 1.0/1.1 and PixArt-α use ``stabilityai/sd-vae-ft-ema``, PixArt-Σ the SDXL VAE. There is
no temporal compression: latent frame i is pixel frame i. The DiT works on latents multiplied by
the VAE's ``scaling_factor`` (0.18215 for the SD VAE, 0.13025 for the SDXL VAE, read from the
folder's ``config.json``). LATENTs handed between nodes hold the *unscaled* latents with frames as
the batch, ComfyUI's own convention, so ComfyUI's VAE Encode/Decode with the same VAE interoperate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..core.errors import InputError, MissingWeightsError
from ..core.memory import on_device

WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


class SDVAE:
    """A diffusers AutoencoderKL kept on the offload device, used per frame in micro-batches."""

    def __init__(self, module: torch.nn.Module, micro_batch: int = 4):
        self.module = module
        self.micro_batch = micro_batch

    @property
    def scaling_factor(self) -> float:
        return float(getattr(self.module.config, "scaling_factor", None) or 0.18215)

    @property
    def dtype(self) -> torch.dtype:
        return next(self.module.parameters()).dtype

    spatial_factor = 8

    @torch.no_grad()
    def encode(
        self, frames: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Frames (N,3,H,W) in [-1,1] → unscaled latents (N,4,H/8,W/8) fp32 on the CPU."""
        out = []
        with on_device(self.module) as device:
            for chunk in frames.split(self.micro_batch):
                dist = self.module.encode(chunk.to(device, self.dtype)).latent_dist
                if deterministic:
                    z = dist.mean
                else:
                    noise = torch.randn(dist.mean.shape, generator=generator, dtype=torch.float32)
                    z = dist.mean + dist.std * noise.to(dist.mean)
                out.append(z.float().cpu())
        return torch.cat(out)

    @torch.no_grad()
    def decode(
        self, latents: torch.Tensor, batch: int = 0, callback: Callable[[int], None] | None = None
    ) -> torch.Tensor:
        """Unscaled latents (N,4,h,w) → frames (N,3,8h,8w) in [-1,1], fp32 on the CPU."""
        out = []
        with on_device(self.module) as device:
            for chunk in latents.split(batch or self.micro_batch):
                out.append(self.module.decode(chunk.to(device, self.dtype)).sample.float().cpu())
                if callback is not None:
                    callback(chunk.shape[0])
        return torch.cat(out)


def vae_folder(path: str | Path, source: str) -> Path:
    """The folder holding ``config.json`` + weights; a diffusers pipeline repo's ``vae/`` is accepted."""
    path = Path(path)
    if path.is_dir() and not (path / "config.json").is_file() and (path / "vae" / "config.json").is_file():
        path = path / "vae"
    if not path.is_dir() or not (path / "config.json").is_file():
        raise MissingWeightsError(
            f"VAE folder '{path}' needs config.json and diffusion_pytorch_model.safetensors; "
            f"download them from {source} into that folder."
        )
    if not any((path / name).is_file() for name in WEIGHT_NAMES):
        raise MissingWeightsError(
            f"VAE folder '{path}' has config.json but no {WEIGHT_NAMES[0]}; download it from {source}."
        )
    return path


def load_sd_vae(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    source: str = "https://huggingface.co/stabilityai/sd-vae-ft-ema",
    micro_batch: int = 4,
) -> SDVAE:
    """Load a diffusers AutoencoderKL folder (keys and config unchanged)."""
    from diffusers import AutoencoderKL

    folder = vae_folder(path, source)
    module = AutoencoderKL.from_pretrained(str(folder), torch_dtype=dtype)
    return SDVAE(module.eval().requires_grad_(False).to(device), micro_batch)


class ComfyVAE:
    """ComfyUI's own ``VAE`` object (VAE Loader with ``vae-ft-ema-560000-ema-pruned`` or ``sdxl_vae``)
    behind the :class:`SDVAE` interface; ComfyUI manages its memory. Its latents are unscaled like
    ours; the DiT scale is the version's (0.18215 SD VAE, 0.13025 SDXL VAE). ComfyUI encodes to the
    posterior mode, so encoding is always deterministic."""

    spatial_factor = 8

    def __init__(self, vae, scaling_factor: float, micro_batch: int = 4):
        if not (callable(getattr(vae, "encode", None)) and callable(getattr(vae, "decode", None))):
            raise InputError("the vae input must be a ComfyUI VAE (from Load VAE).")
        self.vae = vae
        self._scale = float(scaling_factor)
        self.micro_batch = micro_batch

    @property
    def scaling_factor(self) -> float:
        return self._scale

    @torch.no_grad()
    def encode(
        self, frames: torch.Tensor, deterministic: bool = True, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        pixels = ((frames.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
        return self.vae.encode(pixels).float().cpu()

    @torch.no_grad()
    def decode(
        self, latents: torch.Tensor, batch: int = 0, callback: Callable[[int], None] | None = None
    ) -> torch.Tensor:
        out = []
        for chunk in latents.split(batch or self.micro_batch):
            images = self.vae.decode(chunk).float().cpu()
            out.append(images.reshape(-1, *images.shape[-3:]).permute(0, 3, 1, 2) * 2 - 1)
            if callback is not None:
                callback(chunk.shape[0])
        return torch.cat(out)
