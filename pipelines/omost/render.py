"""Pictures of a canvas: the coarse colour layout and one mask per entry, at any size.

Omost paints the layout on its 90x90 grid: the global colour everywhere, then each region from far to
near blended as ``0.7 * region + 0.3 * below`` and stored as uint8. Masks are 1 inside an entry's
rectangle. For other sizes the rectangle edges are scaled by ``size / 90`` and rounded, so the
layout stays sharp at any resolution instead of being an upscaled 90x90 bitmap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .canvas import CANVAS_SIZE, validate_canvas


def _scaled_rect(rect: list[int], height: int, width: int) -> tuple[int, int, int, int]:
    top, bottom, left, right = rect
    sy, sx = height / CANVAS_SIZE, width / CANVAS_SIZE
    return round(top * sy), round(bottom * sy), round(left * sx), round(right * sx)


def _check_size(height: int, width: int) -> None:
    if not (isinstance(height, int) and isinstance(width, int)) or height < 1 or width < 1:
        raise ValueError(f"Render size must be positive integers, got {height}x{width}.")


def render_layout(entries: list[dict], height: int = CANVAS_SIZE, width: int = CANVAS_SIZE) -> torch.Tensor:
    """Colour layout as uint8 tensor (H, W, 3); at 90x90 it equals Omost's ``initial_latent``."""
    _check_size(height, width)
    entries = validate_canvas(entries)
    img = torch.zeros(height, width, 3, dtype=torch.float32)
    img += torch.tensor(entries[0]["color"], dtype=torch.float32)
    for entry in entries[1:]:
        a, b, c, d = _scaled_rect(entry["rect"], height, width)
        color = torch.tensor(entry["color"], dtype=torch.float32)
        img[a:b, c:d] = 0.7 * color + 0.3 * img[a:b, c:d]
    # Omost computes this in float32 and truncates with astype(uint8); .to(uint8) truncates the same way.
    return img.clamp(0, 255).to(torch.uint8)


def render_layout_image(entries: list[dict], height: int, width: int, blur: bool = False) -> torch.Tensor:
    """ComfyUI IMAGE (1, H, W, 3) in 0..1; ``blur`` gives Omost's blurred initial-latent variant.

    The blurred variant follows Omost's diffusion app: the 90x90 layout, reflect-padded by 40 and
    box-filtered with an 81x81 window, then resized to the requested size.
    """
    if blur:
        small = render_layout(entries).float().permute(2, 0, 1)[None] / 255.0
        small = F.avg_pool2d(F.pad(small, (40, 40, 40, 40), mode="reflect"), kernel_size=81, stride=1)
        _check_size(height, width)
        out = F.interpolate(small, size=(height, width), mode="bilinear", align_corners=False)
        return out.permute(0, 2, 3, 1).clamp(0, 1)
    return (render_layout(entries, height, width).float() / 255.0)[None]


def render_masks(entries: list[dict], height: int = CANVAS_SIZE, width: int = CANVAS_SIZE) -> torch.Tensor:
    """MASK batch (N, H, W): entry 0 (global) is all ones, each region is 1 inside its rectangle."""
    _check_size(height, width)
    entries = validate_canvas(entries)
    masks = torch.zeros(len(entries), height, width, dtype=torch.float32)
    for i, entry in enumerate(entries):
        a, b, c, d = _scaled_rect(entry["rect"], height, width)
        masks[i, a:b, c:d] = 1.0
    return masks
