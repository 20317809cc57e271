"""Keypoint-derived guidance for DisPose: motion fields and reference keypoint features.

* trajectory field: blurred sparse frame-to-frame keypoint displacements (ControlNet ``traj``);
* dense field: CMP flow from the reference to each frame, driven by the keypoint displacements;
* reference keypoint features: DIFT features sampled at the reference keypoints.

The DIFT feature map of the reference image is resized and sampled at each visible reference
keypoint. The released code resizes to the *transposed* size (W rows, H columns) and indexes row
``int(y*W)``, column ``int(x*H)``; that is sampling the feature map at the normalised keypoint
position through a stretched grid, and is reproduced as is because the ControlNet was trained on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
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


def tracks(
    frames: Sequence[Mapping[str, np.ndarray]], height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """(F,18,2) pixel positions (clamped; undetected stay at (0,0), as upstream) and (F,18) visibility."""
    pos = np.zeros((len(frames), 18, 2))
    vis = np.zeros((len(frames), 18), dtype=bool)
    for f, bodies in enumerate(frames):
        cand, subset = np.asarray(bodies["candidate"]), np.asarray(bodies["subset"])[0]
        for k in range(18):
            if subset[k] != -1:
                pos[f, k] = [
                    min(max(cand[k, 0] * width, 0), width - 1),
                    min(max(cand[k, 1] * height, 0), height - 1),
                ]
                vis[f, k] = True
    return pos, vis


def gaussian_kernel(size: int = 199, sigma: float = 20.0) -> np.ndarray:
    """Normalised isotropic Gaussian (the trajectory blur)."""
    ax = np.arange(-size // 2 + 1.0, size // 2 + 1.0)
    xx, yy = np.meshgrid(ax, ax)
    k = np.exp(-0.5 * (xx**2 + yy**2) / sigma**2)
    return k / k.sum()


def trajectory_field(frames: Sequence[Mapping[str, np.ndarray]], height: int, width: int) -> torch.Tensor:
    """(1,F-1,2,H,W) sparse frame-to-frame keypoint displacements, Gaussian-blurred (199 px, sigma 20).

    Displacement ``p[i+1]-p[i]`` is written at ``p[i]`` when the keypoint is visible in frame i.
    """
    pos, vis = tracks(frames, height, width)
    field = np.zeros((len(frames) - 1, height, width, 2))
    for i in range(len(frames) - 1):
        for k in range(18):
            if vis[i, k]:
                x, y = pos[i, k]
                field[i, int(y), int(x)] = pos[i + 1, k] - pos[i, k]
    kernel = gaussian_kernel()
    for i in range(len(field)):
        field[i] = cv2.filter2D(field[i], -1, kernel)
    return torch.from_numpy(field).permute(0, 3, 1, 2)[None].float()


CMP_SIZE = 384


def cmp_sparse_inputs(
    frames: Sequence[Mapping[str, np.ndarray]], height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(F-1,2,384,384) reference-to-frame displacements at the reference keypoints, and their mask."""
    pos, _ = tracks(frames, height, width)
    pos = torch.from_numpy(pos * [CMP_SIZE / width, CMP_SIZE / height])
    n = len(frames) - 1
    sparse = torch.zeros(n, CMP_SIZE, CMP_SIZE, 2, dtype=torch.float64)
    mask = torch.zeros(n, CMP_SIZE, CMP_SIZE)
    start = pos[0].long()
    xs, ys = start[:, 0].clamp(0, CMP_SIZE - 1), start[:, 1].clamp(0, CMP_SIZE - 1)
    for t in range(n):
        sparse[t, ys, xs] = pos[t + 1] - pos[0]
        mask[t, ys, xs] = 1
    return sparse.permute(0, 3, 1, 2).float(), mask[:, None].repeat(1, 2, 1, 1)


@torch.no_grad()
def dense_flow(cmp, reference01: torch.Tensor, frames: Sequence[Mapping[str, np.ndarray]]) -> torch.Tensor:
    """(1,F-1,2,H,W) CMP flow from the reference to each frame, in pixels of the H x W video.

    ``reference01`` (1,3,H,W) in [0,1]. CMP runs at 384x384 (nearest-resized reference) one frame at
    a time; its flow is nearest-resized back and scaled by W/384, H/384.
    """
    height, width = reference01.shape[-2:]
    sparse, mask = cmp_sparse_inputs(frames, height, width)
    device = next(cmp.parameters()).device
    image = F.interpolate(reference01.float(), size=(CMP_SIZE, CMP_SIZE)).to(device)
    flows = [
        cmp.flow(image, sparse[i : i + 1].to(device), mask[i : i + 1].to(device)).cpu()
        for i in range(len(sparse))
    ]
    flow = F.interpolate(torch.cat(flows), size=(height, width), mode="nearest")
    flow[:, 0] *= width / CMP_SIZE
    flow[:, 1] *= height / CMP_SIZE
    return flow[None]
