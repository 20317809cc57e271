"""Tiny weights and inputs for workflows/fomm: a small-width FOMM checkpoint in the released layout."""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.pipelines.core import video
from motionsuite.pipelines.fomm.model import build_fomm
from parity_utils import random_state_dict

TINY = {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "kp_detector_params": {
        "temperature": 0.1,
        "block_expansion": 4,
        "max_features": 16,
        "scale_factor": 0.25,
        "num_blocks": 5,
    },
    "generator_params": {
        "block_expansion": 4,
        "max_features": 16,
        "num_down_blocks": 2,
        "num_bottleneck_blocks": 2,
        "estimate_occlusion_map": True,
        "dense_motion_params": {
            "block_expansion": 4,
            "max_features": 16,
            "num_blocks": 5,
            "scale_factor": 0.25,
        },
    },
}
SOURCE_SIZE = (72, 96)  # H, W: not square, so crop and paste-back are exercised
FRAMES = 3


def prepare(models: Path, inputs: Path) -> None:
    generator, kp_detector = build_fomm(TINY)
    ckpt = {
        "generator": random_state_dict(generator, seed=1),
        "kp_detector": random_state_dict(kp_detector, seed=2),
        "discriminator": {"x": torch.zeros(1)},
        "epoch": 99,
    }
    (models / "fomm").mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, models / "fomm" / "vox-adv-cpk.pth.tar")
    gen = torch.Generator().manual_seed(0)
    video.write_image(torch.rand(1, *SOURCE_SIZE, 3, generator=gen), inputs / "source.png")
    video.write_frames(torch.rand(FRAMES, 64, 80, 3, generator=gen), inputs / "driving.mp4", fps=10)


def check_output(frames: torch.Tensor) -> None:
    """paste_back is on: one frame per driving frame, at the source's size."""
    assert tuple(frames.shape) == (FRAMES, *SOURCE_SIZE, 3), tuple(frames.shape)
