"""DisCo-style OpenPose skeleton drawing from keypoints.

DisCo renders the first detected person only, with the 18-joint OpenPose layout and the ControlNet
palette, in this order (which differs from controlnet-aux): joints as filled circles (radius 4) first,
then the first 17 limbs as filled ellipses of half-width 4, each limb blended into the canvas as
``0.4 * canvas + 0.6 * limb_canvas``. The neck is the mean of the shoulders. Black background.

Input keypoints may be COCO-17 (DisCo's JSON) or OpenPose-18 (comfyui_controlnet_aux POSE_KEYPOINT,
``pose_keypoints_2d``, which has its own neck; DisCo still recomputes it from the shoulders).
"""

from __future__ import annotations

import math

import numpy as np

from ..core.errors import InputError

# OpenPose-18 index for each COCO-17 joint (COCO: nose, l-eye, r-eye, l-ear, r-ear, l-sh, r-sh, ...).
COCO_TO_OPENPOSE = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]
# OpenPose limb pairs (1-based, as in the ControlNet annotator); DisCo draws the first 17.
LIMBS = [
    [2, 3],
    [2, 6],
    [3, 4],
    [4, 5],
    [6, 7],
    [7, 8],
    [2, 9],
    [9, 10],
    [10, 11],
    [2, 12],
    [12, 13],
    [13, 14],
    [2, 1],
    [1, 15],
    [15, 17],
    [1, 16],
    [16, 18],
    [3, 17],
    [6, 18],
]
COLORS = [
    [255, 0, 0],
    [255, 85, 0],
    [255, 170, 0],
    [255, 255, 0],
    [170, 255, 0],
    [85, 255, 0],
    [0, 255, 0],
    [0, 255, 85],
    [0, 255, 170],
    [0, 255, 255],
    [0, 170, 255],
    [0, 85, 255],
    [0, 0, 255],
    [85, 0, 255],
    [170, 0, 255],
    [255, 0, 255],
    [255, 0, 170],
    [255, 0, 85],
]
STICK = 4


def coco_to_openpose(coco: np.ndarray) -> np.ndarray:
    """(17,3) COCO keypoints [x,y,conf] (missing = -1) → (18,3) OpenPose order, neck from shoulders."""
    coco = np.asarray(coco, dtype=np.float64).reshape(17, -1)
    out = np.full((18, coco.shape[1]), -1.0)
    for c, o in enumerate(COCO_TO_OPENPOSE):
        out[o] = coco[c]
    out[1] = (coco[5] + coco[6]) / 2  # neck: mean of the shoulders, no validity check (as upstream)
    return out


def _valid(p: np.ndarray) -> bool:
    return bool(p[0] >= 0 and p[1] >= 0 and (len(p) < 3 or p[2] > 0))


def draw_pose(keypoints: np.ndarray, height: int, width: int) -> np.ndarray:
    """Draw one person's OpenPose-18 keypoints (pixels) as DisCo does; returns uint8 (H,W,3) RGB."""
    import cv2

    kp = np.asarray(keypoints, dtype=np.float64).reshape(18, -1)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    for i in range(18):
        if _valid(kp[i]):
            cv2.circle(canvas, (int(kp[i, 0]), int(kp[i, 1])), 4, COLORS[i], thickness=-1)
    for i, (a, b) in enumerate(LIMBS[:17]):
        pa, pb = kp[a - 1], kp[b - 1]
        if not (_valid(pa) and _valid(pb)):
            continue
        limb_canvas = canvas.copy()
        mx, my = (pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2
        length = math.hypot(pa[0] - pb[0], pa[1] - pb[1])
        angle = math.degrees(math.atan2(pa[1] - pb[1], pa[0] - pb[0]))
        polygon = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), STICK), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(limb_canvas, polygon, COLORS[i])
        canvas = cv2.addWeighted(canvas, 0.4, limb_canvas, 0.6, 0)
    return canvas


def draw_pose_keypoint_frames(frames: list[dict]) -> np.ndarray:
    """comfyui_controlnet_aux POSE_KEYPOINT list → (F,H,W,3) float32 in [0,1], first person per frame.

    Coordinates there are normalised to [0,1] when ``canvas_width/height`` are given; a frame with no
    person gives a black image.
    """
    if not frames:
        raise InputError(
            "POSE_KEYPOINT has no frames; connect a pose estimator output with at least one frame."
        )
    images = []
    for frame in frames:
        h, w = int(frame.get("canvas_height", 256)), int(frame.get("canvas_width", 256))
        people = frame.get("people") or []
        if not people or not people[0].get("pose_keypoints_2d"):
            images.append(np.zeros((h, w, 3), dtype=np.uint8))
            continue
        kp = np.asarray(people[0]["pose_keypoints_2d"], dtype=np.float64).reshape(-1, 3)
        if kp.shape[0] != 18:
            raise InputError(f"expected 18 OpenPose body keypoints, got {kp.shape[0]}.")
        if kp[:, :2].max() <= 1.0:
            kp[:, 0] *= w
            kp[:, 1] *= h
        missing = kp[:, 2] <= 0
        kp[missing, :2] = -1
        kp[1] = (kp[2] + kp[5]) / 2  # DisCo recomputes the neck from the shoulders
        images.append(draw_pose(kp, h, w))
    return np.stack(images).astype(np.float32) / 255.0
