"""Tiny weights and inputs for workflows/fsrt: small-width FSRT checkpoints in the released layout."""

from __future__ import annotations

from pathlib import Path

import torch
from fsrt_tiny import write_checkpoints
from motionsuite.pipelines.core import video

SOURCE_SIZE = (72, 96)  # H, W: not square, so crop and paste-back are exercised
FRAMES = 2


def prepare(models: Path, inputs: Path) -> None:
    write_checkpoints(models / "fsrt")
    gen = torch.Generator().manual_seed(0)
    video.write_image(torch.rand(1, *SOURCE_SIZE, 3, generator=gen), inputs / "source.png")
    video.write_frames(torch.rand(FRAMES, 64, 80, 3, generator=gen), inputs / "driving.mp4", fps=10)


def check_output(frames: torch.Tensor) -> None:
    """paste_back is on: one frame per driving frame, at the source's size."""
    assert tuple(frames.shape) == (FRAMES, *SOURCE_SIZE, 3), tuple(frames.shape)
