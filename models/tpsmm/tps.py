"""Thin-plate-spline warps fitted to keypoint groups (paper Eq. 2).

Each of the K transforms maps driving-frame coordinates to source-frame coordinates so that the
5 driving keypoints p_i of its group land on the matching source keypoints q_i:

    T(z) = A z + b + sum_i w_i U(|z - p_i|^2),   U(r2) = r2 * log(r2)

with [w; A^T; b] the solution of  (L + 0.01 I) [w; a] = [q; 0],  L = [[U(|p_i - p_j|^2), P], [P^T, 0]],
P = [p, 1]. The 0.01 ridge term is the released models' regulariser (keep it for parity).
"""

from __future__ import annotations

import torch

EPS = 1e-9
RIDGE = 0.01


def _radial(r2: torch.Tensor) -> torch.Tensor:
    return r2 * torch.log(r2 + EPS)


def fit_tps(kp_driving: torch.Tensor, kp_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit K TPS transforms; kp_* are (B, K, n, 2). Returns (w (B,K,n,2), affine (B,K,3,2))."""
    b, k, n, _ = kp_driving.shape
    r2 = ((kp_driving[:, :, :, None] - kp_driving[:, :, None, :]) ** 2).sum(-1)
    ones = kp_driving.new_ones(b, k, n, 1)
    p = torch.cat([kp_driving, ones], dim=-1)  # (B,K,n,3)
    top = torch.cat([_radial(r2), p], dim=-1)
    bottom = torch.cat([p.transpose(-1, -2), p.new_zeros(b, k, 3, 3)], dim=-1)
    lhs = torch.cat([top, bottom], dim=-2)
    lhs = lhs + RIDGE * torch.eye(n + 3, dtype=lhs.dtype, device=lhs.device)
    rhs = torch.cat([kp_source, kp_source.new_zeros(b, k, 3, 2)], dim=-2)
    # explicit inverse (not solve) reproduces the released models' numerics most closely
    params = torch.linalg.inv(lhs) @ rhs
    return params[:, :, :n], params[:, :, n:]


def apply_tps(
    coords: torch.Tensor, control: torch.Tensor, w: torch.Tensor, affine: torch.Tensor
) -> torch.Tensor:
    """Evaluate the transforms at coords (P, 2): returns (B, K, P, 2)."""
    r2 = ((coords[None, None, :, None, :] - control[:, :, None, :, :]) ** 2).sum(-1)  # (B,K,P,n)
    return coords @ affine[:, :, :2] + affine[:, :, 2:] + _radial(r2) @ w
