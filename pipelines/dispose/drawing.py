"""MimicMotion/DisPose pose images: body, hands and face, as the PoseNet saw them in training.

``draw_pose`` reproduces the reference drawer pixel for pixel. Its input is a DWPose pose dict:
``bodies`` (``candidate`` (n*18,2), ``subset`` (n,18) = 18*i+j or -1, ``score`` (n,18)),
``hands`` (2n,21,2) with all left hands first, then all right hands, ``hands_score``, ``faces``
(n,68,2) and ``faces_score``. Coordinates are normalised; NaN marks a point that was not given.

The drawing steps:
- The canvas's short side is 2160 px.
- Each body limb is an ellipse of half-width 4 in its OpenPose colour, times ``score_a*score_b``.
  A limb is skipped when either score is < 0.3. All limbs of all people come first.
- The canvas is multiplied by 0.6.
- Joints are radius-4 circles in the limb colours, times the score. A joint is skipped when its
  subset entry is -1.
- Each hand edge is a 2-px line in the HSV rainbow, times ``int(255*score_a*score_b)``. Hand
  points are radius-4 circles in (0,0,int(255*score)).
- Face points are radius-3 grey circles of value ``int(255*score)``. Hand and face points at
  integer pixel 0 (or off the top/left edge) are skipped.
- The canvas is resized bilinearly to the video size.

The colours are written in the canvas's BGR order and flipped to RGB at the end, as upstream
does, so the flip is part of the look.

The ``bodies`` dicts used by the motion code carry person 0 only. ``pose_extras`` adds the other
people, the hands and the faces of a POSE_KEYPOINT frame under the keys listed in ``EXTRA_KEYS``.
``move_extras`` applies the same affine map to them that the body goes through (reference fit,
retargeting). ``pose_dict`` assembles the drawer's input from such a bodies dict.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

LIMBS = [(2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10), (10, 11), (2, 12), (12, 13),
         (13, 14), (2, 1), (1, 15), (15, 17), (1, 16), (16, 18)]  # fmt: skip
COLORS = [[255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0], [0, 255, 0],
          [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255], [0, 0, 255], [85, 0, 255],
          [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85]]  # fmt: skip
HAND_EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
              (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19),
              (19, 20)]  # fmt: skip
HAND_COLORS = [np.array(colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0)) for i in range(len(HAND_EDGES))]
LIMB_THRESHOLD = 0.3
REF_SHORT_SIDE = 2160
EXTRA_KEYS = ("others", "others_score", "hands", "hands_score", "faces", "faces_score")


def _shade(color: Sequence[int], alpha: float) -> list[int]:
    return [int(c * alpha) for c in color]


def _draw_bodies(canvas: np.ndarray, candidate: np.ndarray, subset: np.ndarray, score) -> np.ndarray:
    h, w = canvas.shape[:2]
    for i, (a, b) in enumerate(LIMBS):
        for n in range(len(subset)):
            ca, cb = score[n][a - 1], score[n][b - 1]
            if ca < LIMB_THRESHOLD or cb < LIMB_THRESHOLD:
                continue
            ends = candidate[[int(subset[n][a - 1]), int(subset[n][b - 1])]]
            xs, ys = ends[:, 0] * float(w), ends[:, 1] * float(h)
            length = ((xs[0] - xs[1]) ** 2 + (ys[0] - ys[1]) ** 2) ** 0.5
            angle = math.degrees(math.atan2(ys[0] - ys[1], xs[0] - xs[1]))
            center = (int(np.mean(xs)), int(np.mean(ys)))
            poly = cv2.ellipse2Poly(center, (int(length / 2), 4), int(angle), 0, 360, 1)
            cv2.fillConvexPoly(canvas, poly, _shade(COLORS[i], ca * cb))
    canvas = (canvas * 0.6).astype(np.uint8)
    for j in range(18):
        for n in range(len(subset)):
            if subset[n][j] == -1:
                continue
            x, y = candidate[int(subset[n][j])][:2]
            cv2.circle(canvas, (int(x * w), int(y * h)), 4, _shade(COLORS[j], score[n][j]), thickness=-1)
    return canvas


def _pixel(point: np.ndarray, w: int, h: int) -> tuple[int, int] | None:
    """Integer canvas pixel of a normalised point, or None when missing or at/over the top-left edge."""
    if not np.all(np.isfinite(point)):
        return None
    x, y = int(point[0] * w), int(point[1] * h)
    return (x, y) if x > 0 and y > 0 else None


def _draw_hands(canvas: np.ndarray, hands: np.ndarray, scores: np.ndarray) -> None:
    h, w = canvas.shape[:2]
    for peaks, sc in zip(hands, scores, strict=False):
        pixels = [_pixel(p, w, h) for p in peaks]
        for e, (a, b) in enumerate(HAND_EDGES):
            if pixels[a] is not None and pixels[b] is not None:
                value = int(sc[a] * sc[b] * 255)
                cv2.line(canvas, pixels[a], pixels[b], (HAND_COLORS[e] * value).tolist(), thickness=2)
        for p, s in zip(pixels, sc, strict=False):
            if p is not None:
                cv2.circle(canvas, p, 4, (0, 0, int(s * 255)), thickness=-1)


def _draw_faces(canvas: np.ndarray, faces: np.ndarray, scores: np.ndarray) -> None:
    h, w = canvas.shape[:2]
    for points, sc in zip(faces, scores, strict=False):
        for p, s in zip(points, sc, strict=False):
            pix = _pixel(p, w, h)
            if pix is not None:
                value = int(s * 255)
                cv2.circle(canvas, pix, 3, (value, value, value), thickness=-1)


def draw_pose(pose: Mapping, height: int, width: int, ref_short: int = REF_SHORT_SIDE) -> np.ndarray:
    """(H,W,3) uint8 RGB pose image of a DWPose pose dict (see the module docstring)."""
    sz = min(height, width)
    sr = ref_short / sz if sz != ref_short else 1
    canvas = np.zeros((int(height * sr), int(width * sr), 3), dtype=np.uint8)
    bodies = pose["bodies"]
    cand, subset = np.asarray(bodies["candidate"]), np.asarray(bodies["subset"])
    canvas = _draw_bodies(canvas, cand, subset, bodies["score"])
    if pose.get("hands") is not None and len(pose["hands"]):
        _draw_hands(canvas, np.asarray(pose["hands"]), np.asarray(pose["hands_score"]))
    if pose.get("faces") is not None and len(pose["faces"]):
        _draw_faces(canvas, np.asarray(pose["faces"]), np.asarray(pose["faces_score"]))
    return cv2.resize(canvas, (width, height))[..., ::-1].copy()


# ----------------------------------------------------------------------------------------------
# POSE_KEYPOINT extras (other people, hands, faces) carried next to person 0's bodies dict


def _points(values: Sequence[float] | None, count: int, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(count,2) normalised points (NaN where not given) and (count,) scores of a flat x,y,c list."""
    pts, sc = np.full((count, 2), np.nan), np.zeros(count)
    if values:
        kp = np.asarray(values, dtype=np.float64).reshape(-1, 3)[:count]
        given = ~((kp[:, 2] == 0) & (kp[:, 0] == 0) & (kp[:, 1] == 0))  # controlnet_aux's "None"
        pts[: len(kp)][given] = kp[given, :2] / scale
        sc[: len(kp)] = kp[:, 2]
    return pts, sc


def pose_extras(frame: Mapping) -> dict:
    """Other people's bodies, all hands and faces of a POSE_KEYPOINT frame, normalised.

    The units follow person 0's body: pixels (divided by the canvas size) when any of its
    coordinates is > 1, else already normalised, as in ``pose.bodies_from_pose_keypoint``.
    """
    people = [p for p in (frame.get("people") or []) if p.get("pose_keypoints_2d")]
    scale = np.ones(2)
    if people:
        body0 = np.asarray(people[0]["pose_keypoints_2d"], dtype=np.float64).reshape(-1, 3)
        if body0[:, :2].max() > 1.0:
            scale = np.array([frame.get("canvas_width") or 1, frame.get("canvas_height") or 1], np.float64)
    bodies = [_points(p["pose_keypoints_2d"], 18, scale) for p in people[1:]]
    left = [_points(p.get("hand_left_keypoints_2d"), 21, scale) for p in people]
    right = [_points(p.get("hand_right_keypoints_2d"), 21, scale) for p in people]
    faces = [_points(p.get("face_keypoints_2d"), 68, scale) for p in people]
    has_hands = any(p.get("hand_left_keypoints_2d") or p.get("hand_right_keypoints_2d") for p in people)
    has_faces = any(p.get("face_keypoints_2d") for p in people)

    def stack(items: list, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if not items:
            return np.zeros((0, *shape)), np.zeros((0, shape[0]))
        return np.stack([i[0] for i in items]), np.stack([i[1] for i in items])

    others, others_score = stack(bodies, (18, 2))
    hands, hands_score = stack(left + right if has_hands else [], (21, 2))
    face, face_score = stack(faces if has_faces else [], (68, 2))
    return dict(zip(EXTRA_KEYS, (others, others_score, hands, hands_score, face, face_score), strict=True))


def move_extras(bodies: Mapping, scale: Sequence[float], offset: Sequence[float]) -> dict:
    """The extras of ``bodies`` mapped by ``p * scale + offset`` (empty when it has none)."""
    if "hands" not in bodies:
        return {}
    moved = {k: bodies[k] for k in EXTRA_KEYS}
    for k in ("others", "hands", "faces"):
        moved[k] = np.asarray(bodies[k]) * np.asarray(scale) + np.asarray(offset)
    return moved


def pose_dict(bodies: Mapping) -> dict:
    """Drawer input from a bodies dict (person 0) plus its extras (other people, hands, faces)."""
    cand = [np.asarray(bodies["candidate"], dtype=np.float64)[:18]]
    subset = [np.asarray(bodies["subset"], dtype=np.float64)[0]]
    score = [np.asarray(bodies["score"], dtype=np.float64)[0]]
    for i, (pts, sc) in enumerate(zip(bodies.get("others", []), bodies.get("others_score", [])), start=1):
        visible = (sc > LIMB_THRESHOLD) & np.isfinite(pts).all(1)
        cand.append(np.where(np.isfinite(pts), pts, -1.0))
        subset.append(np.where(visible, 18 * i + np.arange(18.0), -1.0))
        score.append(sc)
    return {
        "bodies": {"candidate": np.concatenate(cand), "subset": np.stack(subset), "score": np.stack(score)},
        "hands": bodies.get("hands"),
        "hands_score": bodies.get("hands_score"),
        "faces": bodies.get("faces"),
        "faces_score": bodies.get("faces_score"),
    }
