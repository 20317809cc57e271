"""Body keypoints for DisPose: POSE_KEYPOINT conversion, retargeting to the reference, drawing.

Keypoints travel as DWPose ``bodies`` dicts of the first person: ``candidate`` (18,2) normalised
x,y (-1 where undetected), ``subset`` (1,18) = index or -1 (score <= 0.3), ``score`` (1,18).

Retargeting (``mode="global"``, as upstream): one scale/offset for the whole clip. ``ay, by`` is a
least-squares line from the driving y to the reference y of the stable keypoints (nose, neck,
shoulders, hips, knees, ankles, eyes, ears visible in the reference) over all frames; ``ax`` keeps
the pixel aspect (``ay`` corrected for the frame and reference aspect ratios); ``bx`` is the mean x
offset. ``mode="none"`` keeps the driving coordinates.

Drawing (MimicMotion's confidence-aware body image): a canvas whose short side is 2160 px; 17
limbs as ellipses of half-width 4 in the OpenPose colours times ``score_a*score_b`` (skipped below
0.3); the canvas times 0.6; joints as radius-4 circles coloured by score; resized to the video size.
Hands and faces are not drawn (POSE_KEYPOINT hands/faces are ignored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from ..core.errors import InputError

LIMBS = [(2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
         (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18)]  # fmt: skip
COLORS = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
          [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
          [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85]]  # fmt: skip
RETARGET_IDS = [0, 1, 2, 5, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
SCORE_THRESHOLD = 0.3
Bodies = dict


def bodies_from_pose_keypoint(frame: Mapping) -> tuple[Bodies | None, int, tuple[int, int]]:
    """(bodies of person 0 or None, number of people, (canvas h, canvas w)) of one POSE_KEYPOINT frame."""
    h, w = int(frame.get("canvas_height", 0) or 0), int(frame.get("canvas_width", 0) or 0)
    people = [p for p in (frame.get("people") or []) if p.get("pose_keypoints_2d")]
    if not people:
        return None, 0, (h, w)
    kp = np.asarray(people[0]["pose_keypoints_2d"], dtype=np.float64).reshape(-1, 3)
    if kp.shape[0] != 18:
        raise InputError(f"expected 18 OpenPose body keypoints per person, got {kp.shape[0]}.")
    xy, score = kp[:, :2].copy(), kp[:, 2].copy()
    if xy.max() > 1.0:
        if not h or not w:
            raise InputError("POSE_KEYPOINT in pixels needs canvas_width/canvas_height.")
        xy /= [w, h]
    visible = score > SCORE_THRESHOLD
    xy[~visible] = -1.0
    subset = np.where(visible, np.arange(18.0), -1.0)[None]
    return {"candidate": xy, "subset": subset, "score": score[None]}, len(people), (h, w)


def retarget(
    reference: Bodies, frames: Sequence[Bodies], people: Sequence[int], frame_hw: tuple[int, int],
    ref_hw: tuple[int, int], mode: str = "global",
) -> list[Bodies]:  # fmt: skip
    """Driving bodies mapped into the reference frame (see module docstring)."""
    if mode == "none":
        return [dict(b) for b in frames]
    ids = [i for i in RETARGET_IDS if reference["subset"][0][i] >= 0]
    single = [b for b, n in zip(frames, people, strict=True) if n == 1]
    if not ids:
        raise InputError(
            "no person found in the reference image (no body keypoints); use a clear full-body photo."
        )
    if not single:
        raise InputError(
            "no driving frame shows exactly one person, so the poses cannot be fitted to the reference. "
            "Use a clip with one dancer or set retarget to 'none'."
        )
    det = np.stack([b["candidate"][ids] for b in single])
    ref = np.tile(reference["candidate"][ids], (len(single), 1, 1))
    ay, by = np.polyfit(det[..., 1].ravel(), ref[..., 1].ravel(), 1)
    (fh, fw), (rh, rw) = frame_hw, ref_hw
    ax = ay / ((fh / fw) / rh * rw)
    bx = np.mean(ref[..., 0] - det[..., 0] * ax)
    out = []
    for b in frames:
        moved = dict(b)
        moved["candidate"] = b["candidate"] * [ax, ay] + [bx, by]
        out.append(moved)
    return out


def _shade(color: Sequence[int], alpha: float) -> list[int]:
    return [int(c * alpha) for c in color]


def draw_body(bodies: Bodies, height: int, width: int, ref_short: int = 2160) -> np.ndarray:
    """(H,W,3) uint8 RGB confidence-aware body drawing."""
    scale = ref_short / min(height, width)
    ch, cw = int(height * scale), int(width * scale)
    canvas = np.zeros((ch, cw, 3), dtype=np.uint8)
    cand, subset, score = bodies["candidate"], bodies["subset"][0], bodies["score"][0]
    for i, (a, b) in enumerate(LIMBS):
        ca, cb = score[a - 1], score[b - 1]
        if ca < SCORE_THRESHOLD or cb < SCORE_THRESHOLD:
            continue
        xs = cand[[int(subset[a - 1]), int(subset[b - 1])], 0] * float(cw)
        ys = cand[[int(subset[a - 1]), int(subset[b - 1])], 1] * float(ch)
        length = math.hypot(xs[0] - xs[1], ys[0] - ys[1])
        angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
        poly = cv2.ellipse2Poly((int(xs.mean()), int(ys.mean())), (int(length / 2), 4), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, _shade(COLORS[i], ca * cb))
    canvas = (canvas * 0.6).astype(np.uint8)
    for i in range(18):
        if subset[i] == -1:
            continue
        x, y = cand[int(subset[i])]
        cv2.circle(canvas, (int(x * cw), int(y * ch)), 4, _shade(COLORS[i], score[i]), thickness=-1)
    # The upstream canvas is BGR and converted to RGB at the end; the colours above are listed in
    # that BGR order, so the channel flip is part of the look.
    return cv2.resize(canvas, (width, height))[..., ::-1].copy()
