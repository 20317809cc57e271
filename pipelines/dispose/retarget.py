"""Per-limb-length retargeting: the driving motion on the reference person's body proportions.

Upstream DisPose fits the driving poses to the reference with one scale and offset for the whole
clip (``pose.retarget``, mode "global"). That matches the overall size and position, but a dancer
with longer legs or a wider shoulder line than the reference keeps those proportions, and the
generated person is stretched to them.

Mode "per-limb" starts from that global fit (it supplies the position of the body in each frame)
and then rebuilds every frame along the OpenPose skeleton tree, from the neck outwards: each joint
is put at its parent's new position plus the driving limb's *direction* times the *reference*
limb's length. Angles come from the driving frame, lengths from the reference image.

Missing data:
- a joint missing in a driving frame stays missing (subset -1, coordinates untouched);
- a joint whose parent is missing keeps its globally fitted offset from the nearest placed ancestor
  (it moves with that ancestor); with no placed ancestor (e.g. no neck) it keeps its fitted position;
- a limb not visible in the reference takes the length of its mirror limb (left/right) when that
  one is visible, otherwise its globally fitted length.

Hands and faces of the person (the ``hands``/``faces`` extras of ``drawing.pose_extras``,
normalised, NaN or <= 0 for missing points) are not rescaled: each hand moves with the body wrist
nearest to its own wrist point, the face with the nose. Other people stay where the global fit put
them.

Lengths and angles are measured in pixels of the video (normalised x times width, y times height),
so a non-square video does not skew them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import InputError
from . import pose as pose_mod

#: (parent, child) limbs of the OpenPose-18 body, breadth-first from the neck (index 1).
TREE = [(1, 0), (1, 2), (1, 5), (1, 8), (1, 11), (0, 14), (0, 15), (2, 3), (5, 6), (8, 9), (11, 12),
        (14, 16), (15, 17), (3, 4), (6, 7), (9, 10), (12, 13)]  # fmt: skip
PARENT = {child: parent for parent, child in TREE}
#: left/right counterpart of each joint (used for a limb the reference does not show).
MIRROR = {2: 5, 3: 6, 4: 7, 8: 11, 9: 12, 10: 13, 14: 15, 16: 17}
MIRROR.update({v: k for k, v in list(MIRROR.items())})
NOSE, RIGHT_WRIST, LEFT_WRIST = 0, 4, 7
MODES = ("global", "per-limb", "none")


def _visible(bodies: dict) -> np.ndarray:
    return np.asarray(bodies["subset"])[0] != -1


def _pixels(bodies: dict, hw: tuple[int, int]) -> np.ndarray:
    return np.asarray(bodies["candidate"], dtype=np.float64)[:18] * [hw[1], hw[0]]


def limb_lengths(bodies: dict, hw: tuple[int, int]) -> dict[int, float]:
    """Pixel length of every limb (keyed by its child joint) whose two ends are visible."""
    vis, xy = _visible(bodies), _pixels(bodies, hw)
    return {c: float(np.linalg.norm(xy[c] - xy[p])) for p, c in TREE if vis[p] and vis[c]}


def reference_lengths(reference: dict, hw: tuple[int, int]) -> dict[int, float]:
    """Reference limb lengths, a missing limb filled from its mirror limb where that one is visible."""
    own = limb_lengths(reference, hw)
    out = dict(own)
    for child, twin in MIRROR.items():
        if child not in out and twin in own:
            out[child] = own[twin]
    return out


def _move_points(points: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Shift normalised points by ``shift``; points at or below 0 (missing) are kept as they are."""
    points = np.asarray(points, dtype=np.float64)
    ok = (np.isfinite(points) & (points > 0)).all(axis=-1, keepdims=True)
    return np.where(ok, points + shift, points)


def _anchor_point(hand: np.ndarray) -> np.ndarray | None:
    """The hand's wrist point, else the mean of its valid points, else None."""
    valid = np.isfinite(hand).all(-1) & (hand > 0).all(-1)
    if valid[0]:
        return hand[0]
    return hand[valid].mean(0) if valid.any() else None


def _follow(fitted: dict, moved: np.ndarray, vis: np.ndarray, hw: tuple[int, int]) -> dict:
    """Person 0's hands and face, translated with the wrist (hands) and nose (face) they belong to.

    Extras as ``drawing.pose_extras`` gives them: ``hands`` (2P,21,2) = left hands of the P people,
    then their right hands; ``faces`` (P,68,2); P = 1 + number of ``others``. Other people are
    kept where the global fit put them.
    """
    extra = {}
    scale = np.array([hw[1], hw[0]], dtype=np.float64)
    fit_xy = _pixels(fitted, hw)
    shift = (moved - fit_xy) / scale  # per body joint, normalised
    people = 1 + len(fitted.get("others", []) if fitted.get("others") is not None else [])
    faces = fitted.get("faces")
    if faces is not None and len(faces) and vis[NOSE]:
        faces = np.asarray(faces, dtype=np.float64).copy()
        faces[0] = _move_points(faces[0], shift[NOSE])
        extra["faces"] = faces
    hands = fitted.get("hands")
    wrists = [w for w in (RIGHT_WRIST, LEFT_WRIST) if vis[w]]
    if hands is not None and len(hands) and wrists:
        hands = np.asarray(hands, dtype=np.float64).copy()
        for i in {0, people} & set(range(len(hands))):  # person 0's left and right hand
            anchor = _anchor_point(hands[i])
            if anchor is not None:
                nearest = min(wrists, key=lambda w: np.linalg.norm(anchor * scale - fit_xy[w]))
                hands[i] = _move_points(hands[i], shift[nearest])
        extra["hands"] = hands
    return extra


def rescale_limbs(reference: dict, fitted: Sequence[dict], hw: tuple[int, int]) -> list[dict]:
    """Globally fitted driving bodies rebuilt with the reference's limb lengths (module docstring)."""
    lengths = reference_lengths(reference, hw)
    scale = np.array([hw[1], hw[0]], dtype=np.float64)
    out = []
    for bodies in fitted:
        vis, fit_xy = _visible(bodies), _pixels(bodies, hw)
        moved = fit_xy.copy()
        placed = np.zeros(18, dtype=bool)
        placed[1] = vis[1]
        for parent, child in TREE:
            if not vis[child]:
                continue
            anchor = parent
            while anchor in PARENT and not placed[anchor]:
                anchor = PARENT[anchor]
            if not placed[anchor]:  # no placed ancestor: the joint roots its own subtree
                placed[child] = True
                continue
            offset = fit_xy[child] - fit_xy[anchor]
            norm = float(np.linalg.norm(offset))
            if anchor == parent and child in lengths and norm > 1e-9:
                offset = offset / norm * lengths[child]
            moved[child] = moved[anchor] + offset
            placed[child] = True
        cand = np.asarray(bodies["candidate"], dtype=np.float64).copy()
        cand[:18][vis] = moved[vis] / scale
        out.append({**bodies, "candidate": cand, **_follow(bodies, moved, vis, hw)})
    return out


def retarget_poses(
    reference: dict, frames: Sequence[dict], people: Sequence[int], frame_hw: tuple[int, int],
    ref_hw: tuple[int, int], mode: str = "global",
) -> list[dict]:  # fmt: skip
    """Driving bodies in the reference frame: 'global' (upstream), 'per-limb' or 'none'."""
    if mode not in MODES:
        raise InputError(f"retarget must be one of {MODES}, got '{mode}'.")
    fit_mode = "none" if mode == "none" else "global"
    fitted = pose_mod.retarget(reference, frames, people, frame_hw, ref_hw, fit_mode)
    return rescale_limbs(reference, fitted, ref_hw) if mode == "per-limb" else fitted
