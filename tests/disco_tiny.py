"""Tiny DisCo configs and files in the released layouts, shared by the DisCo tests.

Widths are small (32/64 channels, 2-layer CLIP) but the structure is SD-1.x / ViT-L-like, so key
names match the released ``mp_rank_00_model_states.pt`` files.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

UNET = {
    "sample_size": 32,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": [32, 64, 64, 64],
    "layers_per_block": 1,
    "cross_attention_dim": 32,
    "attention_head_dim": 8,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
VAE = {
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "block_out_channels": [32, 32, 32, 32],
    "layers_per_block": 1,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "sample_size": 256,
}
CLIP = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 32,
}
SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "clip_sample": False,
}


def write_base_folder(root: Path) -> Path:
    """Write the config files of a tiny sd-image-variations folder (no weights needed)."""
    for sub, name, cfg in (
        ("unet", "config.json", UNET),
        ("vae", "config.json", VAE),
        ("image_encoder", "config.json", CLIP),
        ("scheduler", "scheduler_config.json", SCHEDULER),
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
        (root / sub / name).write_text(json.dumps(cfg))
    return root


def tiny_model(seed: int = 0, temporal: bool = False):
    """Tiny DisCo (image or temporal) with seeded random weights everywhere (zero-init layers included)."""
    from motionsuite.pipelines.disco import loading
    from parity_utils import random_state_dict

    root_cfg = {"unet": UNET, "vae": VAE, "scheduler": SCHEDULER}
    from transformers import CLIPVisionConfig

    model = loading.build_model({**root_cfg, "clip": CLIPVisionConfig(**CLIP)}, temporal=temporal)
    flat = loading.released_state_dict(model)
    loading.load_weights(model, random_state_dict(flat, seed, gain=0.5))
    return model


def write_deepspeed_checkpoint(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """Save like DeepSpeed's engine: module dict plus a few bookkeeping entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "module": state,
            "global_steps": 100,
            "buffer_names": [],
            "optimizer": None,
            "dp_world_size": 8,
            "mp_world_size": 1,
            "ds_version": "0.6.3",
        },
        path,
    )
    return path
