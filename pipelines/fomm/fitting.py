"""Bringing arbitrary source/driving IMAGEs to a FOMM-family model's square size, and back.

Every family (TPSMM, MRAA, MRFA, ...) animates square model-size tensors; users bring any size.
This is the one place that validates the ``fit`` choice, crops/pads/stretches both inputs the same
way, optionally picks the best-matching driving frame, and pastes the result back into the
full-size source frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import images
from ..core.errors import InputError
from . import faces

FITS = ("crop", "face", "pad", "stretch")


def fit_box(x: torch.Tensor, fit: str, detector, what: str) -> images.CropBox:
    """The square region of ``x`` (B,C,H,W; first image used) that ``fit`` selects."""
    h, w = x.shape[-2:]
    if fit == "pad":
        return images.pad_box(h, w)
    if fit == "face":
        center, side = faces.face_center_and_side(detector, x[0], what)
        return images.square_box(h, w, center=center, side=side)
    return images.square_box(h, w)


@dataclass
class FittedInputs:
    """Model-size inputs plus what is needed to put the result back into the user's frame."""

    source: torch.Tensor  # (1,3,S,S)
    driving: torch.Tensor  # (N,3,S,S)
    source_full: torch.Tensor  # (1,3,H,W) as given
    source_box: images.CropBox | None  # None for "stretch": nothing to paste back into
    reference_frame: int

    def finish(self, frames: torch.Tensor, paste_back: bool) -> torch.Tensor:
        """Animated (N,3,S,S) frames -> ComfyUI IMAGE, pasted into the full source frame if asked."""
        if paste_back and self.source_box is not None:
            frames = images.paste_back(frames, self.source_full, self.source_box)
        return images.to_bhwc(frames)


def fit_inputs(
    source_image: torch.Tensor,
    driving_frames: torch.Tensor,
    size: int,
    fit: str = "crop",
    batch_size: int = 1,
    reference_frame: int = 0,
    find_best_frame: bool = False,
    landmark_detector=None,
) -> FittedInputs:
    """Validate and fit ComfyUI IMAGEs (first source image used) to the model's ``size``.

    ``find_best_frame`` replaces ``reference_frame`` by the driving frame whose face pose is
    closest to the source's (needs face-alignment, or a ``landmark_detector`` with its API).
    """
    if fit not in FITS:
        raise InputError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}.")
    src = images.to_bchw(source_image, "source_image")[:1]
    drv = images.to_bchw(driving_frames, "driving_frames")
    if (fit == "face" or find_best_frame) and landmark_detector is None:
        landmark_detector = faces.landmark_detector("cpu")
    if fit == "stretch":
        src_box = None
        src_in = images.resize(src, (size, size))
        drv_in = images.resize(drv, (size, size))
    else:
        src_box = fit_box(src, fit, landmark_detector, "source image")
        src_in = images.crop_resize(src, src_box, size)
        drv_box = fit_box(drv[:1], fit, landmark_detector, "first driving frame")
        drv_in = images.crop_resize(drv, drv_box, size)
    if find_best_frame:
        reference_frame = faces.best_frame(landmark_detector, src_in, lambda i: drv_in[i], drv_in.shape[0])
    return FittedInputs(src_in, drv_in, src, src_box, reference_frame)
