"""Tiny weights and inputs for workflows/disco: a tiny base folder and a DeepSpeed-layout checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch
from disco_tiny import tiny_model, write_base_folder, write_deepspeed_checkpoint
from motionsuite.pipelines.core import video
from motionsuite.pipelines.disco import loading

FRAMES = 2


def prepare(models: Path, inputs: Path) -> None:
    folder = models / "disco"
    write_base_folder(folder / "sd-image-variations-diffusers")
    state = loading.released_state_dict(tiny_model(seed=3))
    write_deepspeed_checkpoint(folder / "moretiktok_cfg" / "mp_rank_00_model_states.pt", state)
    gen = torch.Generator().manual_seed(0)
    video.write_image(torch.rand(1, 80, 64, 3, generator=gen), inputs / "reference.png")
    video.write_frames(torch.rand(FRAMES, 64, 64, 3, generator=gen), inputs / "poses.mp4", fps=8)


def check_output(frames: torch.Tensor) -> None:
    """One 256² frame per pose frame."""
    assert tuple(frames.shape) == (FRAMES, 256, 256, 3), tuple(frames.shape)
