"""Face landmarks through the optional ``face-alignment`` package (best-frame search, face crops).

Imported lazily: the pack works without it, and only these two features ask for it.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import InputError

INSTALL_HINT = "Install it with `pip install face-alignment`, or switch the option off."


def landmark_detector(device: torch.device | str = "cpu"):
    """A ``face_alignment.FaceAlignment`` for 2-D landmarks (68 points), with a clear error if missing."""
    try:
        import face_alignment
    except ImportError as exc:
        raise InputError(f"This option needs the optional package 'face-alignment'. {INSTALL_HINT}") from exc
    kind = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
    return face_alignment.FaceAlignment(kind, flip_input=True, device=str(device))


def landmarks(detector, image: torch.Tensor) -> np.ndarray | None:
    """(68, 2) landmarks (x, y in pixels) of the first face in a (3, H, W) 0..1 image, or None."""
    found = detector.get_landmarks(255 * image.permute(1, 2, 0).cpu().numpy())
    if not found:
        return None
    return np.asarray(found[0], dtype=np.float64)[:, :2]


def _normalised(points: np.ndarray) -> np.ndarray:
    """Centre the landmarks and divide by sqrt(hull area), so the comparison ignores face size."""
    from scipy.spatial import ConvexHull

    pts = points - points.mean(axis=0, keepdims=True)
    return pts / np.sqrt(ConvexHull(pts).volume)


def best_frame(detector, source: torch.Tensor, driving: torch.Tensor) -> int:
    """Index of the driving frame whose face pose is closest to the source's (upstream demo.py rule:
    least squared distance of normalised landmarks). Frames without a face are skipped."""
    src = landmarks(detector, source[0])
    if src is None:
        raise InputError("find_best_frame: no face was found in the source image; crop it to a face "
                         "or switch find_best_frame off.")
    src = _normalised(src)
    best, best_norm = None, float("inf")
    for i in range(driving.shape[0]):
        pts = landmarks(detector, driving[i])
        if pts is None:
            continue
        norm = float(((src - _normalised(pts)) ** 2).sum())
        if norm < best_norm:
            best, best_norm = i, norm
    if best is None:
        raise InputError("find_best_frame: no face was found in any driving frame; use a driving video "
                         "showing a face or switch find_best_frame off.")
    return best


def face_center_and_side(detector, image: torch.Tensor, what: str) -> tuple[tuple[float, float], int]:
    """Centre (y, x) and side of a square around the face of a (3, H, W) image, with margin."""
    pts = landmarks(detector, image)
    if pts is None:
        raise InputError(f"crop 'face': no face was found in the {what}; use crop 'center' or 'pad'.")
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    side = int(round(max(x1 - x0, y1 - y0) * 1.8))
    return ((y0 + y1) / 2, (x0 + x1) / 2), side
