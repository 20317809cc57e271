"""Keypoint normalisation for FOMM animation (paper Sec. 3.4, "relative motion transfer").

Relative mode moves the *source* keypoints by the driving keypoints' displacement since the first
(or best-matching) driving frame, instead of copying the driving keypoints, so the source's face
shape is kept. The displacement is optionally rescaled by the ratio of the keypoint convex-hull
sizes (source vs. initial driving frame), and jacobians are transferred as J_d J_d0^-1 J_s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class MotionOptions:
    """How driving keypoints are mapped onto the source (upstream demo ties both relative flags)."""

    relative_movement: bool = True
    relative_jacobian: bool = True
    adapt_movement_scale: bool = True


def hull_area(points: torch.Tensor) -> float:
    """Area of the convex hull of (K, 2) keypoints (scipy's ``volume`` of a 2-D hull is its area)."""
    from scipy.spatial import ConvexHull

    return float(ConvexHull(points.detach().double().cpu().numpy()).volume)


def movement_scale(kp_source: dict, kp_driving_initial: dict) -> float:
    """sqrt(hull area of source kp) / sqrt(hull area of initial driving kp), on batch element 0."""
    source_area = hull_area(kp_source["value"][0])
    driving_area = hull_area(kp_driving_initial["value"][0])
    return float(np.sqrt(source_area) / np.sqrt(driving_area))


def normalize_kp(kp_source: dict, kp_driving: dict, kp_driving_initial: dict,
                 options: MotionOptions = MotionOptions(), scale: float | None = None) -> dict:
    """Driving keypoints (batch B) expressed relative to the source; absolute mode returns them as is.

    ``scale`` may be passed in when it was computed once for the whole video (it only depends on
    the source and the initial driving frame).
    """
    out = dict(kp_driving)
    if not options.relative_movement:
        return out
    if scale is None:
        scale = movement_scale(kp_source, kp_driving_initial) if options.adapt_movement_scale else 1.0
    out["value"] = (kp_driving["value"] - kp_driving_initial["value"]) * scale + kp_source["value"]
    if options.relative_jacobian and "jacobian" in kp_driving:
        change = torch.matmul(kp_driving["jacobian"], torch.inverse(kp_driving_initial["jacobian"]))
        out["jacobian"] = torch.matmul(change, kp_source["jacobian"])
    return out
