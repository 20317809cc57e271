"""Tiny weights for workflows/opensora_v11_t2v: STDiT2 folder, SD-VAE folder, T5 folder."""

from __future__ import annotations

from pathlib import Path

import torch
from opensora_legacy_tiny import write_sd_vae, write_stdit2
from opensora_tiny import write_t5


def prepare(models: Path, inputs: Path) -> None:
    write_stdit2(models / "opensora" / "OpenSora-STDiT-v2-stage3")
    write_sd_vae(models / "opensora" / "sd-vae-ft-ema")
    write_t5(models / "text_encoders" / "t5-v1_1-xxl")


def check_output(frames: torch.Tensor) -> None:
    """The loader's 16 frames at 144p 16:9 (256×144)."""
    assert tuple(frames.shape) == (16, 144, 256, 3), tuple(frames.shape)
