"""Tiny weights for workflows/opensora_t2v: STDiT3 + VAE folders and a T5 folder."""

from __future__ import annotations

from pathlib import Path

import torch
from opensora_tiny import write_all

FRAMES, HEIGHT, WIDTH = 17, 144, 256  # 144p 16:9


def prepare(models: Path, inputs: Path) -> None:
    write_all(models)


def check_output(frames: torch.Tensor) -> None:
    """Exactly the loader's 17 frames at the 144p 16:9 size."""
    assert tuple(frames.shape) == (FRAMES, HEIGHT, WIDTH, 3), tuple(frames.shape)
