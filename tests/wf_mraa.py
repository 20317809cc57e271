"""Tiny weights and inputs for workflows/mraa: a small-width MRAA checkpoint in the released layout."""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.pipelines.core import video
from mraa_tiny import TINY, write_checkpoint

SOURCE_SIZE = (72, 96)  # H, W: not square, so crop and paste-back are exercised
FRAMES = 2


def prepare(models: Path, inputs: Path) -> None:
    (models / "mraa").mkdir(parents=True, exist_ok=True)
    write_checkpoint(models / "mraa" / "vox256.pth", TINY)
    gen = torch.Generator().manual_seed(0)
    video.write_image(torch.rand(1, *SOURCE_SIZE, 3, generator=gen), inputs / "source.png")
    video.write_frames(torch.rand(FRAMES, 64, 80, 3, generator=gen), inputs / "driving.mp4", fps=10)


def check_output(frames: torch.Tensor) -> None:
    """paste_back is on: one frame per driving frame, at the source's size."""
    assert tuple(frames.shape) == (FRAMES, *SOURCE_SIZE, 3), tuple(frames.shape)
