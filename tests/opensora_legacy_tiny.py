"""Tiny Open-Sora 1.1 / 1.0 / PixArt weights in the released layouts, plus a tiny SD-VAE folder.

* v1.1: ``OpenSora-STDiT-v2-stage3/`` with config.json + model.safetensors (HF layout);
* v1.0: ``OpenSora-v1-HQ-16x512x512.pth`` (training format: bare state dict incl. the stored
  positional tables) with a same-named ``.json`` giving the tiny widths;
* PixArt-α/Σ: ``PixArt-XL-2-512x512.pth`` / ``PixArt-Sigma-XL-2-512-MS.pth`` (``{"state_dict": ...}``,
  2-D patch kernel) with a same-named ``.json``;
* ``sd-vae-ft-ema/`` and ``sdxl-vae/``: diffusers AutoencoderKL folders (8× downsampling).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from motionsuite.models.opensora.legacy_loading import save_pretrained
from motionsuite.models.opensora.pixart import PixArt, PixArtConfig
from motionsuite.models.opensora.stdit import STDiT, STDiTConfig, sincos_1d, sincos_2d
from motionsuite.models.opensora.stdit2 import STDiT2, STDiT2Config
from opensora_tiny import T5_DIM, write_t5
from parity_utils import random_state_dict

TINY = dict(depth=1, hidden_size=24, num_heads=2, caption_channels=T5_DIM)
VAE = dict(
    block_out_channels=[8, 8, 8, 8], layers_per_block=1, latent_channels=4, norm_num_groups=4,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
)  # fmt: skip


def _randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    sd = random_state_dict(model, seed, gain=0.5)
    if "rope.freqs" in sd:
        sd["rope.freqs"] = model.state_dict()["rope.freqs"]
    return sd


def write_stdit2(folder: Path, seed: int = 1) -> Path:
    model = STDiT2(STDiT2Config(**TINY, model_max_length=200))
    model.load_state_dict(_randomised(model, seed))
    return save_pretrained(model, folder)


def write_stdit(path: Path, seed: int = 2) -> Path:
    config = STDiTConfig(**TINY, model_max_length=120)
    sd = _randomised(STDiT(config), seed)
    sd["pos_embed"] = sincos_2d(32, 32, 24, 1.0)[None]  # stored tables, dropped by the loader
    sd["pos_embed_temporal"] = sincos_1d(torch.arange(16), 24).float()[None]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    path.with_suffix(".json").write_text(json.dumps(config.to_dict()))
    return path


def write_pixart(path: Path, sigma: bool = False, seed: int = 3) -> Path:
    config = PixArtConfig(**TINY, model_max_length=300 if sigma else 120, input_size=(64, 64))
    sd = _randomised(PixArt(config), seed)
    sd["x_embedder.proj.weight"] = sd["x_embedder.proj.weight"][:, :, 0]  # released 2-D kernel
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": sd}, path)
    path.with_suffix(".json").write_text(json.dumps(config.to_dict()))
    return path


def write_sd_vae(folder: Path, scaling_factor: float = 0.18215, seed: int = 4) -> Path:
    from diffusers import AutoencoderKL

    vae = AutoencoderKL(**VAE, scaling_factor=scaling_factor)
    vae.load_state_dict(random_state_dict(vae, seed, gain=0.5))
    vae.save_pretrained(folder)
    return folder


def write_all(root: Path) -> tuple[Path, Path]:
    """models/opensora/{every legacy checkpoint, sd-vae-ft-ema, sdxl-vae} and models/text_encoders/t5."""
    models = root / "opensora"
    write_stdit2(models / "OpenSora-STDiT-v2-stage3")
    write_stdit(models / "OpenSora-v1-HQ-16x512x512.pth")
    write_pixart(models / "PixArt-XL-2-512x512.pth")
    write_pixart(models / "PixArt-Sigma-XL-2-512-MS.pth", sigma=True)
    write_sd_vae(models / "sd-vae-ft-ema")
    write_sd_vae(models / "sdxl-vae", scaling_factor=0.13025)
    write_t5(root / "text_encoders" / "t5-v1_1-xxl")
    return models, root / "text_encoders"
