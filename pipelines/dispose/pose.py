"""Body keypoints for DisPose: POSE_KEYPOINT conversion, retargeting to the reference, drawing.

Keypoints travel as DWPose ``bodies`` dicts of the first person: ``candidate`` (18,2) normalised
x,y (-1 where undetected), ``subset`` (1,18) = index or -1 (score <= 0.3), ``score`` (1,18).

Retargeting (``mode="global"``, as upstream): one scale/offset for the whole clip. ``ay, by`` is a
least-squares line from the driving y to the reference y of the stable keypoints (nose, neck,
shoulders, hips, knees, ankles, eyes, ears visible in the reference) over all frames; ``ax`` keeps
the pixel aspect (``ay`` corrected for the frame and reference aspect ratios); ``bx`` is the mean x
offset. ``mode="none"`` keeps the driving coordinates.

Drawing is MimicMotion's confidence-aware pose image (``drawing.py``): the body, then the hands
and the face when the POSE_KEYPOINT frame has them, and every person in the frame. The hands,
faces and other people ride along in the bodies dict (``drawing.EXTRA_KEYS``) and are moved with
the body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..core.errors import InputError
from .drawing import draw_pose, move_extras, pose_dict, pose_extras

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
    # The global fit uses every given coordinate, visible or not, as upstream does; (0,0,0) is
    # comfyui_controlnet_aux's "missing" and is left out of the fit (NaN).
    raw = np.where(((kp == 0).all(1))[:, None], np.nan, xy)
    xy[~visible] = -1.0
    subset = np.where(visible, np.arange(18.0), -1.0)[None]
    bodies = {
        "candidate": xy,
        "subset": subset,
        "score": score[None],
        "raw_candidate": raw,
        **pose_extras(frame),
    }
    return bodies, len(people), (h, w)


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
    det = np.stack([b.get("raw_candidate", b["candidate"])[ids] for b in single])
    ref = np.tile(reference["candidate"][ids], (len(single), 1, 1))
    given = np.isfinite(det).all(-1)
    if given.sum() < 2:
        raise InputError("the driving frames have too few stable body keypoints to fit to the reference.")
    ay, by = np.polyfit(det[..., 1][given], ref[..., 1][given], 1)
    (fh, fw), (rh, rw) = frame_hw, ref_hw
    ax = ay / ((fh / fw) / rh * rw)
    bx = np.mean(ref[..., 0][given] - det[..., 0][given] * ax)
    out = []
    for b in frames:
        moved = dict(b)
        moved["candidate"] = b["candidate"] * [ax, ay] + [bx, by]
        moved.update(move_extras(b, [ax, ay], [bx, by]))
        out.append(moved)
    return out


def draw_body(bodies: Bodies, height: int, width: int, ref_short: int = 2160) -> np.ndarray:
    """(H,W,3) uint8 RGB pose image: body, plus hands, face and other people when present."""
    return draw_pose(pose_dict(bodies), height, width, ref_short)
