"""Tiny weights and inputs for workflows/tpsmm: a small-width TPSMM checkpoint in the released layout."""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.models.tpsmm.config import TPSMMConfig, build_networks
from motionsuite.pipelines.core import video
from parity_utils import random_state_dict

TINY = TPSMMConfig(
    num_tps=3,
    gen_block_expansion=4,
    gen_max_features=16,
    dm_block_expansion=4,
    dm_max_features=16,
    dm_num_blocks=5,
    id_bottle_size=8,
    pose_bottle_size=8,
)
SOURCE_SIZE = (72, 96)  # H, W: not square, so crop and paste-back are exercised
FRAMES = 2


def prepare(models: Path, inputs: Path) -> None:
    nets = build_networks(TINY)
    ckpt = {key: random_state_dict(net, seed=i) for i, (key, net) in enumerate(sorted(nets.items()))}
    ckpt["epoch"] = 1
    (models / "tpsmm").mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, models / "tpsmm" / "vox.pth.tar")
    gen = torch.Generator().manual_seed(0)
    video.write_image(torch.rand(1, *SOURCE_SIZE, 3, generator=gen), inputs / "source.png")
    video.write_frames(torch.rand(FRAMES, 64, 80, 3, generator=gen), inputs / "driving.mp4", fps=10)


def check_output(frames: torch.Tensor) -> None:
    """paste_back is on: one frame per driving frame, at the source's size."""
    assert tuple(frames.shape) == (FRAMES, *SOURCE_SIZE, 3), tuple(frames.shape)
