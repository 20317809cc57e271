"""Tiny weights and inputs for workflows/partswap: a small-width vox-10segments checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.pipelines.core import video
from partswap_tiny import segments_checkpoint

SOURCE_SIZE = (72, 96)
DRIVING_SIZE = (64, 80)  # H, W: not square, so crop and paste-back are exercised
FRAMES = 2
MODEL_SIZE = 256  # the loader's default image_size


def prepare(models: Path, inputs: Path) -> None:
    (models / "partswap").mkdir(parents=True, exist_ok=True)
    segments_checkpoint(models / "partswap" / "vox-10segments.pth.tar", 10)
    gen = torch.Generator().manual_seed(0)
    video.write_image(torch.rand(1, *SOURCE_SIZE, 3, generator=gen), inputs / "source.png")
    video.write_frames(torch.rand(FRAMES, *DRIVING_SIZE, 3, generator=gen), inputs / "driving.mp4", fps=10)


def check_output(frames: torch.Tensor) -> None:
    """Swapped frames at the driving size (paste_back), or the part pictures at the model size."""
    shapes = {(FRAMES, *DRIVING_SIZE, 3), (1, MODEL_SIZE, MODEL_SIZE, 3), (FRAMES, MODEL_SIZE, MODEL_SIZE, 3)}
    assert tuple(frames.shape) in shapes, tuple(frames.shape)
