"""Image tensor helpers: ComfyUI IMAGE ↔ BCHW, antialiased resize, square crop/pad and paste-back.

Motion models work on fixed square inputs (e.g. 256²); users bring any size. ``CropBox`` records
the square taken from the user's frame so the animated square can be pasted back at full size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import InputError


def to_bchw(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """ComfyUI IMAGE (B,H,W,C in 0..1) → float (B,3,H,W); drops alpha, expands grey."""
    if not isinstance(image, torch.Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"{name} must be an IMAGE batch of shape (B, H, W, C); got {shape}.")
    if image.shape[0] == 0:
        raise InputError(f"{name} holds no frames; connect at least one image.")
    c = image.shape[-1]
    if c not in (1, 3, 4):
        raise InputError(f"{name} must have 1, 3 or 4 channels (last dimension); got {c}.")
    x = image.float().permute(0, 3, 1, 2)
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    return x[:, :3].contiguous()


def to_bhwc(x: torch.Tensor) -> torch.Tensor:
    """(B,C,H,W) → ComfyUI IMAGE (B,H,W,C) float32 on the CPU, clamped to 0..1."""
    return x.detach().clamp(0, 1).permute(0, 2, 3, 1).float().cpu().contiguous()


def resize(x: torch.Tensor, size: tuple[int, int], antialias: bool = True) -> torch.Tensor:
    """Bilinear resize of (B,C,H,W) to ``size`` = (h, w); antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)


@dataclass(frozen=True)
class CropBox:
    """A square (or rectangle) in source pixels; may reach outside the image (that part is padding)."""

    top: int
    left: int
    height: int
    width: int


def square_box(h: int, w: int, center: tuple[float, float] | None = None, side: int | None = None) -> CropBox:
    """The largest (or ``side``-sized) square inside an h×w image, centred on ``center`` = (y, x).

    The square is shifted to stay inside the image, so nothing is padded.
    """
    side = min(h, w) if side is None else max(1, min(int(side), h, w))
    cy, cx = center if center is not None else (h / 2, w / 2)
    top = int(round(cy - side / 2))
    left = int(round(cx - side / 2))
    top = min(max(top, 0), h - side)
    left = min(max(left, 0), w - side)
    return CropBox(top, left, side, side)


def pad_box(h: int, w: int) -> CropBox:
    """The square of side max(h, w) centred on the image: the whole frame, padded to square."""
    side = max(h, w)
    return CropBox((h - side) // 2, (w - side) // 2, side, side)


def crop(x: torch.Tensor, box: CropBox, fill: float = 0.0) -> torch.Tensor:
    """Cut ``box`` out of (B,C,H,W); parts outside the image are filled with ``fill``."""
    h, w = x.shape[-2:]
    out = x.new_full((*x.shape[:-2], box.height, box.width), fill)
    y0, x0 = max(box.top, 0), max(box.left, 0)
    y1, x1 = min(box.top + box.height, h), min(box.left + box.width, w)
    if y1 > y0 and x1 > x0:
        out[..., y0 - box.top : y1 - box.top, x0 - box.left : x1 - box.left] = x[..., y0:y1, x0:x1]
    return out


def crop_resize(
    x: torch.Tensor, box: CropBox, size: int | tuple[int, int], fill: float = 0.0
) -> torch.Tensor:
    """``crop`` then antialiased ``resize`` to ``size``."""
    size = (size, size) if isinstance(size, int) else size
    return resize(crop(x, box, fill), size)


def paste_back(frames: torch.Tensor, original: torch.Tensor, box: CropBox) -> torch.Tensor:
    """Put (N,C,s,s) ``frames`` back into ``box`` of ``original`` (1 or N,C,H,W) at full size."""
    n = frames.shape[0]
    h, w = original.shape[-2:]
    base = original.expand(n, -1, -1, -1).clone() if original.shape[0] == 1 else original.clone()
    patch = resize(frames.to(base.dtype), (box.height, box.width))
    y0, x0 = max(box.top, 0), max(box.left, 0)
    y1, x1 = min(box.top + box.height, h), min(box.left + box.width, w)
    base[..., y0:y1, x0:x1] = patch[..., y0 - box.top : y1 - box.top, x0 - box.left : x1 - box.left]
    return base


def fit(x: torch.Tensor, size: tuple[int, int], mode: str = "crop") -> torch.Tensor:
    """Bring (B,C,H,W) to ``size`` = (h, w): "crop" covers then centre-crops, "pad" fits then pads
    with black, "stretch" ignores the aspect ratio."""
    th, tw = size
    h, w = x.shape[-2:]
    if mode == "stretch":
        return resize(x, size)
    if mode not in ("crop", "pad"):
        raise InputError(f"unknown fit mode {mode!r}; use 'crop', 'pad' or 'stretch'")
    scale = max(th / h, tw / w) if mode == "crop" else min(th / h, tw / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    y = resize(x, (nh, nw))
    box = CropBox((nh - th) // 2, (nw - tw) // 2, th, tw)
    return crop(y, box)
