"""Segmentation pictures drawn with torch: hard labels coloured and laid over the image.

The upstream notebook (and the FirstOrderMM seed pack) rendered these with matplotlib figures; the
seed's ``canvas.tostring_rgb`` call no longer exists in matplotlib >= 3.10. Here the colours are a
table lookup, so the picture has the model's size and one picture per frame.
"""

from __future__ import annotations

import numpy as np
import torch

# matplotlib's "gist_rainbow" colour map as (position, r, g, b) anchors (linear in between), the
# palette upstream used; background (label 0) is black.
_GIST_RAINBOW = np.array(
    [
        (0.000, 1.00, 0.00, 0.16),
        (0.030, 1.00, 0.00, 0.00),
        (0.215, 1.00, 1.00, 0.00),
        (0.400, 0.00, 1.00, 0.00),
        (0.586, 0.00, 1.00, 1.00),
        (0.770, 0.00, 0.00, 1.00),
        (0.954, 1.00, 0.00, 1.00),
        (1.000, 1.00, 0.00, 0.75),
    ]
)


def palette(num_labels: int) -> torch.Tensor:
    """(num_labels, 3) colours: black for the background, gist_rainbow((i - 1) / (n - 2)) for parts."""
    parts = max(num_labels - 1, 1)
    t = np.arange(parts) / max(parts - 1, 1)
    rgb = np.stack([np.interp(t, _GIST_RAINBOW[:, 0], _GIST_RAINBOW[:, c]) for c in (1, 2, 3)], axis=1)
    return torch.from_numpy(np.concatenate([np.zeros((1, 3)), rgb])[:num_labels]).float()


def overlay(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_labels: int,
    alpha: float = 0.6,
    highlight: list[int] | None = None,
) -> torch.Tensor:
    """images (N, 3, H, W) in 0..1, labels (N, H, W) int -> (N, 3, H, W) = (1 - a) image + a colour.

    With ``highlight``, parts outside it are drawn grey, so the swapped parts stand out.
    """
    colours = palette(num_labels).to(images.device)
    if highlight is not None:
        keep = torch.zeros(num_labels, dtype=torch.bool)
        keep[[i for i in highlight if 0 <= i < num_labels]] = True
        grey = colours.mean(dim=1, keepdim=True).expand(-1, 3) * 0.4
        colours = torch.where(keep.to(images.device)[:, None], colours, grey)
    picture = colours[labels.long()].permute(0, 3, 1, 2)
    return (1 - alpha) * images + alpha * picture
