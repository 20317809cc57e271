"""Inputs for workflows/omost_canvas: none needed (the canvas text is in the graph, nothing is loaded)."""

from __future__ import annotations

from pathlib import Path

import torch


def prepare(models: Path, inputs: Path) -> None:
    """The graph pastes an Omost reply into Canvas from Text; no weights or files are read."""


def check_output(frames: torch.Tensor) -> None:
    """Render at 1024x768: one layout picture."""
    assert tuple(frames.shape) == (1, 768, 1024, 3), tuple(frames.shape)
