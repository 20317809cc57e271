"""Per-limb-length retargeting (pipelines/dispose/retarget.py): lengths, angles, missing joints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from dispose_tiny import person
from motionsuite.nodes import dispose as nodes
from motionsuite.pipelines.core.errors import InputError
from motionsuite.pipelines.dispose import generate
from motionsuite.pipelines.dispose.pose import bodies_from_pose_keypoint
from motionsuite.pipelines.dispose.retarget import TREE, limb_lengths, retarget_poses

REF_HW = (64, 128)  # video size (h, w): not square, so pixel lengths differ from normalised ones
FRAME_HW = (120, 90)  # driving frame size


def _bodies(frame: dict) -> dict:
    return bodies_from_pose_keypoint(frame)[0]


def _driving(scale_arms: float = 1.4, scale_legs: float = 0.7, bend: float = 0.0) -> dict:
    """A dancer with other proportions than ``person()``: longer arms, shorter legs, a raised arm."""
    frame = person(h=FRAME_HW[0], w=FRAME_HW[1])
    kp = np.asarray(frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    for parent, child in TREE:
        factor = scale_arms if child in (3, 4, 6, 7) else scale_legs if child in (9, 10, 12, 13) else 1.0
        if factor != 1.0:
            # rebuild from the (already moved) parent so the whole chain keeps its direction
            base = np.asarray(person(h=FRAME_HW[0], w=FRAME_HW[1])["people"][0]["pose_keypoints_2d"])
            base = base.reshape(18, 3)
            kp[child, :2] = kp[parent, :2] + (base[child, :2] - base[parent, :2]) * factor
    if bend:
        kp[4, :2] = kp[3, :2] + [math.cos(bend) * 20, -math.sin(bend) * 20]
    frame["people"][0]["pose_keypoints_2d"] = kp.ravel().tolist()
    return frame


def _angles(bodies: dict, hw: tuple[int, int]) -> dict[int, float]:
    xy = np.asarray(bodies["candidate"])[:18] * [hw[1], hw[0]]
    vis = np.asarray(bodies["subset"])[0] != -1
    return {c: math.atan2(*(xy[c] - xy[p])[::-1]) for p, c in TREE if vis[p] and vis[c]}


def _retarget(frames: list[dict], mode: str = "per-limb", reference: dict | None = None) -> list[dict]:
    ref = reference or _bodies(person())
    return retarget_poses(ref, [_bodies(f) for f in frames], [1] * len(frames), FRAME_HW, REF_HW, mode)


def test_limb_lengths_match_reference_and_angles_are_kept():
    frames = [_driving(), _driving(bend=0.8), _driving(1.2, 0.9, bend=-0.4)]
    out = _retarget(frames)
    ref_len = limb_lengths(_bodies(person()), REF_HW)
    assert len(ref_len) == 17
    for frame, moved in zip(frames, out, strict=True):
        got = limb_lengths(moved, REF_HW)
        assert got.keys() == ref_len.keys()
        for child, length in ref_len.items():
            assert got[child] == pytest.approx(length, abs=1e-9)
        # driving angles, measured in pixels of the driving frame, are unchanged
        raw, new = _angles(_bodies(frame), FRAME_HW), _angles(moved, REF_HW)
        for child in raw:
            assert math.isclose(math.cos(raw[child] - new[child]), 1.0, abs_tol=1e-9), child
    # the global fit alone keeps the driving proportions: the arm is too long there
    glob = _retarget(frames, "global")
    assert limb_lengths(glob[0], REF_HW)[4] > 1.2 * ref_len[4]


def test_neck_stays_where_the_global_fit_puts_it():
    frames = [_driving(), _driving(bend=0.5)]
    per_limb, glob = _retarget(frames), _retarget(frames, "global")
    for a, b in zip(per_limb, glob, strict=True):
        np.testing.assert_allclose(a["candidate"][1], b["candidate"][1])


def test_missing_joints_stay_missing_and_orphans_follow_their_ancestor():
    frame = _driving(bend=0.6)
    kp = np.asarray(frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    kp[3, 2] = 0.0  # right elbow not detected: the wrist has no parent
    kp[13, 2] = 0.1  # left ankle below the score threshold
    frame["people"][0]["pose_keypoints_2d"] = kp.ravel().tolist()
    (glob,) = _retarget([frame], "global")
    (moved,) = _retarget([frame])
    for k in (3, 13):
        assert moved["subset"][0][k] == -1
        np.testing.assert_array_equal(moved["candidate"][k], glob["candidate"][k])
    # the wrist keeps its fitted offset from the shoulder, moving with the rescaled shoulder
    shift = moved["candidate"][2] - glob["candidate"][2]
    assert np.abs(shift).max() > 1e-3
    np.testing.assert_allclose(moved["candidate"][4], glob["candidate"][4] + shift, atol=1e-12)
    # the knee still gets the reference length
    assert limb_lengths(moved, REF_HW)[12] == pytest.approx(limb_lengths(_bodies(person()), REF_HW)[12])


def test_no_neck_keeps_fitted_positions_and_subtrees_still_rescaled():
    frame = _driving()
    kp = np.asarray(frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    kp[1, 2] = 0.0
    frame["people"][0]["pose_keypoints_2d"] = kp.ravel().tolist()
    (glob,) = _retarget([frame], "global")
    (moved,) = _retarget([frame])
    for root in (0, 2, 5, 8, 11):  # children of the missing neck root their own subtrees
        np.testing.assert_allclose(moved["candidate"][root], glob["candidate"][root])
    ref_len = limb_lengths(_bodies(person()), REF_HW)
    got = limb_lengths(moved, REF_HW)
    for child in (3, 4, 6, 7, 9, 10, 12, 13):
        assert got[child] == pytest.approx(ref_len[child])


def test_reference_limb_missing_uses_the_mirror_limb_or_the_fitted_length():
    ref_frame = person()
    kp = np.asarray(ref_frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    kp[[4, 7], 2] = 0.0  # no wrists in the reference at all
    kp[10, 2] = 0.0  # right ankle hidden: the left shin is the stand-in
    ref_frame["people"][0]["pose_keypoints_2d"] = kp.ravel().tolist()
    ref = _bodies(ref_frame)
    frames = [_driving()]
    (moved,) = _retarget(frames, reference=ref)
    (glob,) = _retarget(frames, "global", reference=ref)
    got, ref_len = limb_lengths(moved, REF_HW), limb_lengths(ref, REF_HW)
    assert got[10] == pytest.approx(ref_len[13])
    assert got[4] == pytest.approx(limb_lengths(glob, REF_HW)[4])  # no reference forearm: fitted length


def _with_hands_face_and_bystander(frame: dict) -> dict:
    """POSE_KEYPOINT frame plus hands and face around person 0's wrists and nose, and a 2nd person."""
    kp = np.asarray(frame["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    rng = np.random.default_rng(5)

    def cloud(center, n, spread):
        pts = center + rng.uniform(-spread, spread, (n, 2))
        pts[0] = center
        return np.concatenate([pts, np.full((n, 1), 0.9)], 1)

    left, right, face = cloud(kp[7, :2], 21, 4), cloud(kp[4, :2], 21, 4), cloud(kp[0, :2], 68, 3)
    right[5] = 0.0  # a point controlnet_aux marks as not detected
    person0 = {
        "pose_keypoints_2d": kp.ravel().tolist(),
        "hand_left_keypoints_2d": left.ravel().tolist(),
        "hand_right_keypoints_2d": right.ravel().tolist(),
        "face_keypoints_2d": face.ravel().tolist(),
    }
    other = np.asarray(person(dx=0.3, h=FRAME_HW[0], w=FRAME_HW[1])["people"][0]["pose_keypoints_2d"])
    other = other.reshape(18, 3)
    bystander = {
        "pose_keypoints_2d": other.ravel().tolist(),
        "hand_left_keypoints_2d": cloud(other[7, :2], 21, 4).ravel().tolist(),
        "hand_right_keypoints_2d": cloud(other[4, :2], 21, 4).ravel().tolist(),
        "face_keypoints_2d": cloud(other[0, :2], 68, 3).ravel().tolist(),
    }
    return {**frame, "people": [person0, bystander]}


def test_hands_and_face_move_with_wrist_and_nose():
    frames = [_with_hands_face_and_bystander(_driving(bend=0.3))]
    bodies = [_bodies(f) for f in frames]
    assert bodies[0]["hands"].shape == (4, 21, 2) and bodies[0]["faces"].shape == (2, 68, 2)
    args = (_bodies(person()), bodies, [1], FRAME_HW, REF_HW)
    (glob,), (moved,) = retarget_poses(*args, "global"), retarget_poses(*args, "per-limb")
    shift = moved["candidate"] - glob["candidate"]
    for hand, wrist in ((0, 7), (2, 4)):  # person 0's left hand (index 0) and right hand (index P=2)
        assert np.abs(shift[wrist]).max() > 1e-3
        np.testing.assert_allclose(moved["hands"][hand], glob["hands"][hand] + shift[wrist])
    assert np.isnan(moved["hands"][2, 5]).all()  # missing stays missing
    np.testing.assert_allclose(moved["faces"][0], glob["faces"][0] + shift[0])
    # the bystander keeps the global fit: body, hands and face
    np.testing.assert_array_equal(moved["others"], glob["others"])
    np.testing.assert_array_equal(moved["hands"][[1, 3]], glob["hands"][[1, 3]])
    np.testing.assert_array_equal(moved["faces"][1], glob["faces"][1])


def test_bad_mode():
    with pytest.raises(InputError, match="retarget must be one of"):
        _retarget([_driving()], "stretch")


class _StillCMP(torch.nn.Module):
    """Stand-in CMP (zero flow): these tests are about the poses, CMP has its own parity test."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def flow(self, image, sparse, mask):
        return torch.zeros(1, 2, *image.shape[-2:])


class _Model:
    cmp = _StillCMP()
    dift = None

    class controlnet:  # noqa: N801 - mimics model.controlnet.point_adapter.embedding_channels
        class point_adapter:  # noqa: N801
            embedding_channels = 8


MODEL = _Model()
REFERENCE = torch.rand(1, 64, 128, 3, generator=torch.Generator().manual_seed(0))


def _encode(retarget: str):
    return getattr(nodes.DisPoseMotionEncoder(), nodes.DisPoseMotionEncoder.FUNCTION)(
        model=MODEL,
        reference=REFERENCE,
        reference_pose=[person()],
        driving_pose=[_driving(), _driving(bend=0.5)],
        width=128,
        height=64,
        fit="crop",
        retarget=retarget,
    )


def test_motion_encoder_node_per_limb():
    spec = nodes.DisPoseMotionEncoder.INPUT_TYPES()["required"]["retarget"]
    assert "per-limb" in spec[0] and "per-limb" in spec[1]["tooltip"]
    assert generate.RETARGET_MODES == ("global", "per-limb", "none")
    per_limb, preview = _encode("per-limb")
    glob, _ = _encode("global")
    assert per_limb is not glob  # the mode is part of the motion cache key
    assert _encode("per-limb")[0] is per_limb
    ref_len = limb_lengths(per_limb.point_list[0], REF_HW)
    for bodies in per_limb.point_list[1:]:
        got = limb_lengths(bodies, REF_HW)
        assert all(got[c] == pytest.approx(v) for c, v in ref_len.items())
    assert not torch.equal(per_limb.pose_pixels, glob.pose_pixels)
    assert preview.shape == (3, 64, 128, 3)
