"""Input preparation of DisCo, following its TikTok evaluation datasets.

Every image is centre-cropped to a square first (torchvision's ``RandomResizedCrop`` with
scale=ratio=1 is deterministic and does exactly this), then resized:

* reference for CLIP: 224², **bicubic without antialiasing** on the tensor (what
  sd-image-variations was trained with), CLIP mean/std normalisation, then multiplied by the
  foreground mask, so masked-out pixels are 0 *after* normalisation (CLIP-mean grey);
* foreground mask for CLIP: 224², bicubic with antialiasing (PIL path upstream);
* background for the VAE: 256² bilinear (antialiased, PIL path), scaled to [-1, 1], times (1 - mask);
* pose images: 256² bilinear, kept in [0, 1].

All functions take ComfyUI tensors: IMAGE (B,H,W,3) in 0..1 and MASK (B,H,W) in 0..1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..core.errors import InputError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_SIZE = 224


def center_square(bchw: torch.Tensor) -> torch.Tensor:
    """Central square crop (side = shorter edge), the crop upstream applies before every resize."""
    h, w = bchw.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return bchw[..., top : top + side, left : left + side]


def _to_bchw(image: torch.Tensor) -> torch.Tensor:
    if image.ndim != 4 or image.shape[-1] != 3:
        raise InputError(f"expected an IMAGE tensor (B,H,W,3), got shape {tuple(image.shape)}")
    return image.permute(0, 3, 1, 2).float()


def _mask_bchw(mask: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """MASK (B,H,W) or (H,W) → (B,1,H,W) matching ``image`` (B,H,W,3); broadcasts a single mask."""
    if mask.ndim == 2:
        mask = mask[None]
    if mask.ndim != 3:
        raise InputError(f"expected a MASK tensor (B,H,W), got shape {tuple(mask.shape)}")
    if tuple(mask.shape[-2:]) != tuple(image.shape[1:3]):
        raise InputError(
            f"mask size {tuple(mask.shape[-2:])} differs from image size {tuple(image.shape[1:3])}; "
            "make the mask from the same image (or resize it to the image size)."
        )
    if mask.shape[0] not in (1, image.shape[0]):
        raise InputError(
            f"{mask.shape[0]} masks for {image.shape[0]} images; give one mask or one per image."
        )
    return mask[:, None].float().expand(image.shape[0], 1, -1, -1)


def reference_pixels(image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP input (B,3,224,224) of the foreground reference; ``mask=None`` keeps the whole image."""
    x = center_square(_to_bchw(image))
    x = F.interpolate(x, size=(CLIP_SIZE, CLIP_SIZE), mode="bicubic", align_corners=False, antialias=False)
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    if mask is not None:
        m = center_square(_mask_bchw(mask, image))
        m = F.interpolate(m, size=(CLIP_SIZE, CLIP_SIZE), mode="bicubic", align_corners=False, antialias=True)
        x = x * m.clamp(0, 1)
    return x


def background_pixels(image: torch.Tensor, mask: torch.Tensor | None, size: int = 256) -> torch.Tensor:
    """VAE input (B,3,size,size) in [-1,1] with the person (``mask``=1) blanked to 0."""
    x = F.interpolate(
        center_square(_to_bchw(image)),
        size=(size, size),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    x = x * 2 - 1
    if mask is not None:
        m = F.interpolate(
            center_square(_mask_bchw(mask, image)),
            size=(size, size),
            mode="bilinear",
            align_corners=False,
            antialias=True,
        )
        x = x * (1 - m.clamp(0, 1))
    return x


def pose_pixels(poses: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Pose skeleton frames (F,H,W,3) → (F,3,size,size) in [0,1], centre-square-cropped."""
    if poses.shape[0] == 0:
        raise InputError("no pose frames given; connect at least one pose image.")
    x = center_square(_to_bchw(poses))
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1)
