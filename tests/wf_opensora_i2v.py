"""Tiny weights and a first-frame image for workflows/opensora_i2v."""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.pipelines.core import video
from wf_opensora_t2v import check_output
from wf_opensora_t2v import prepare as prepare_weights

__all__ = ["check_output", "prepare"]


def prepare(models: Path, inputs: Path) -> None:
    prepare_weights(models, inputs)
    gen = torch.Generator().manual_seed(0)
    video.write_image(torch.rand(1, 90, 160, 3, generator=gen), inputs / "first_frame.png")
