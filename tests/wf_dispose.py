"""Tiny weights and inputs for workflows/dispose: DisPose files, a tiny SD-1.5 and DWPose stand-ins.

The frames are dark with one small bright blob, which the tiny detector stand-in finds as exactly
one person, so the global retargeting has single-person frames to fit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from dispose_dwpose_tiny import write_dwpose
from dispose_tiny import write_sd15, write_weights
from motionsuite.pipelines.core import video

FRAMES = 2
SIZE = (128, 64)  # the example's height/width


def _frame(x: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 30, (128, 96, 3))
    img[50:66, x : x + 10] += 190
    return torch.from_numpy(np.clip(img, 0, 255).round() / 255).float()


def prepare(models: Path, inputs: Path) -> None:
    write_weights(models / "dispose")
    write_sd15(models / "dispose" / "stable-diffusion-v1-5")
    write_dwpose(models / "dwpose")
    video.write_image(_frame(40, 0)[None], inputs / "reference.png")
    driving = torch.stack([_frame(30 + 6 * i, i + 1) for i in range(FRAMES)])
    video.write_frames(driving, inputs / "driving.mp4", fps=8)


def check_output(frames: torch.Tensor) -> None:
    """The video has one frame per driving frame; the pose preview also shows the reference pose."""
    assert tuple(frames.shape) in ((FRAMES, *SIZE, 3), (FRAMES + 1, *SIZE, 3)), tuple(frames.shape)
