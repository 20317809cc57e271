"""Frame windows for the temporal DisCo model: where windows start and how overlapping ones blend.

DisCo's temporal model was trained on 16-frame clips. Upstream makes a long video from windows that
do not overlap (frames 1–16, 17–32, …, plus a last window aligned to the end that overwrites the
frames it shares with the previous one), each sampled on its own, which leaves a visible seam
every 16 frames. With ``overlap > 0`` the windows share frames and, at every denoising step, each
frame's noise prediction is the weighted mean over the windows that contain it. Weights ramp
linearly over the overlapping frames (a trapezoid per window), so one window hands over to the next
gradually instead of at a cut.
"""

from __future__ import annotations

import torch

from ..core.errors import InputError


def window_starts(frames: int, window: int, overlap: int = 0) -> list[int]:
    """First frame of every window covering ``frames`` frames; the last window ends at the last frame.

    A video no longer than one window is a single (shorter) window.
    """
    if window < 1:
        raise InputError(f"frames per window must be at least 1, got {window}.")
    if not 0 <= overlap < window:
        raise InputError(
            f"overlap must be between 0 and frames per window - 1 ({window - 1}), got {overlap}."
        )
    if frames <= window:
        return [0]
    stride = window - overlap
    starts = list(range(0, frames - window + 1, stride))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return starts


def blend_weights(length: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """Per-frame weights (length,) of one window: linear ramps of ``overlap`` frames at inner edges.

    Edges at the start or end of the video keep weight 1 (no other window covers those frames).
    """
    idx = torch.arange(length, dtype=torch.float64)
    weight = torch.ones(length, dtype=torch.float64)
    if overlap > 0:
        ramp = overlap + 1
        if not at_start:
            weight = torch.minimum(weight, (idx + 1) / ramp)
        if not at_end:
            weight = torch.minimum(weight, (length - idx) / ramp)
    return weight.float()


def temporal_noise(frames: int, window: int, latent_hw: tuple[int, int], seed: int) -> torch.Tensor:
    """Independent start noise per frame, (F,4,h,w), drawn on the CPU.

    Drawn window by window in upstream's ``(1,4,f,h,w)`` layout from one seeded generator, so the
    first window gets exactly the noise upstream draws for a clip with the same seed.
    """
    g = torch.Generator().manual_seed(seed)
    chunk = min(window, frames)
    pieces = []
    for _ in range(0, frames, chunk):
        pieces.append(torch.randn((1, 4, chunk, *latent_hw), generator=g, dtype=torch.float32))
    noise = torch.cat(pieces, dim=2)[:, :, :frames]
    return noise[0].transpose(0, 1).contiguous()
