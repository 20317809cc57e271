"""Keypoint-derived guidance for DisPose: reference keypoint features (DIFT) per body keypoint.

The DIFT feature map of the reference image is resized and sampled at each visible reference
keypoint. The released code resizes to the *transposed* size (W rows, H columns) and indexes row
``int(y*W)``, column ``int(x*H)``; that is sampling the feature map at the normalised keypoint
position through a stretched grid, and is reproduced as is because the ControlNet was trained on it.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F


def reference_point_embedding(
    dift: torch.Tensor, bodies: Mapping[str, np.ndarray], height: int, width: int, num_points: int = 18
) -> torch.Tensor:
    """(1,18,C) features of the reference's body keypoints; zero rows for invisible keypoints.

    ``dift`` (1,C,h,w) is the SD-1.5 up-block-1 feature of the reference, ``bodies`` its DWPose
    ``bodies`` dict (normalised ``candidate`` (18,2), ``subset`` (1,18)), ``height``/``width`` the
    video size in pixels.
    """
    feats = F.interpolate(dift.float(), size=(width, height), mode="bilinear", align_corners=False)[0]
    out = torch.zeros(1, num_points, feats.shape[0], dtype=feats.dtype, device=feats.device)
    cand = np.asarray(bodies["candidate"], dtype=np.float64)
    subset = np.asarray(bodies["subset"])[0]
    for k, (point, sub) in enumerate(zip(cand[:num_points], subset[:num_points], strict=False)):
        if sub == -1:
            continue
        col = min(max(int(point[0] * height), 0), height - 1)
        row = min(max(int(point[1] * width), 0), width - 1)
        out[0, k] = feats[:, row, col]
    return out
