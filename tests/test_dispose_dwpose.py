"""DWPose (onnxruntime) and the MimicMotion/DisPose pose drawing against upstream.

How the fixtures were made (generator scripts kept outside the repository):
- ``parity_dwpose.npz``: the tiny stand-in graphs of ``dispose_dwpose_tiny.py`` (detector seed
  0, pose seed 1) were written to disk. Upstream's ``mimicmotion/dwpose`` then ran on three
  frames: two ``synthetic_frame`` images (seed 0 with two blobs, seed 3 with one) and a flat dark
  72x96 frame in which nothing is detected. That code is identical in lihxxx/DisPose @ c38ab13
  and Tencent/MimicMotion @ 62f91e1; it ran with onnxruntime 1.32 on CPU, in a scratch venv.
  Stored per frame: the frame; ``onnxdet.inference_detector`` boxes; ``Wholebody`` keypoints
  and scores; ``DWposeDetector`` ``bodies``/``hands``/``faces``; and ``util.draw_pose`` of that
  result at the frame size.
- ``parity_video_pose.npz``: see ``test_video_pose_images_match_upstream``.
- ``parity_drawing.npz``: upstream ``util.draw_pose`` on a hand-made two-person pose (numpy seed
  7), with hands and faces, scores from -0.1 to 1, a score exactly at the 0.3 limb threshold,
  points at x=0 and off the canvas. Drawn at 64x48, 96x128 and 256x192.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from dispose_dwpose_tiny import synthetic_frame, write_dwpose
from motionsuite.nodes import dispose_pose as nodes
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError
from motionsuite.pipelines.dispose import drawing, dwpose, pose

FIXTURES = Path(__file__).parent / "fixtures" / "dispose"


@pytest.fixture(scope="module")
def fixture():
    return dict(np.load(FIXTURES / "parity_dwpose.npz"))


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory, fixture):
    folder = tmp_path_factory.mktemp("dwpose")
    write_dwpose(folder, int(fixture["det_seed"]), int(fixture["pose_seed"]))
    return folder


@pytest.fixture(scope="module")
def model(onnx_dir):
    return dwpose.DWPose(onnx_dir / "yolox_l.onnx", onnx_dir / "dw-ll_ucoco_384.onnx", device="cpu")


def _run(cls, **kwargs):
    """Call a node as ComfyUI does: defaults from INPUT_TYPES, then the FUNCTION."""
    spec = cls.INPUT_TYPES()["required"]
    args = {k: v[1]["default"] for k, v in spec.items() if len(v) > 1 and "default" in v[1]}
    args.update(kwargs)
    return getattr(cls(), cls.FUNCTION)(**args)


def test_dwpose_matches_upstream(model, fixture):
    """Boxes, 134 OpenPose-ordered keypoints and scores equal upstream's (here: bit for bit)."""
    for i in range(3):
        frame = fixture[f"frame{i}"]
        boxes = fixture[f"boxes{i}"]
        got = model.detect(frame)
        if len(boxes):
            np.testing.assert_allclose(got, boxes, atol=1e-4)
        else:  # nothing found: the whole frame is the box
            assert got.tolist() == [[0, 0, frame.shape[1], frame.shape[0]]]
        result = model(frame)
        h, w = frame.shape[:2]
        ref_kp = fixture[f"keypoints{i}"]
        assert result.keypoints.shape == ref_kp.shape == (max(len(boxes), 1), 134, 2)
        assert np.abs((result.keypoints - ref_kp) / [w, h]).max() <= 1e-4
        assert np.abs(result.scores - fixture[f"scores{i}"]).max() <= 1e-5
    assert len(fixture["boxes0"]) > 1  # the stand-in exercises NMS with several people


def test_pose_keypoint_matches_upstream_detector(model, fixture):
    """POSE_KEYPOINT read back gives upstream's normalised bodies, hands and faces."""
    frames = np.stack([fixture["frame0"]]).astype(np.float32) / 255.0
    (frame,), previews = dwpose.estimate(model, frames)
    bodies, people, hw = pose.bodies_from_pose_keypoint(frame)
    assert people == len(fixture["boxes0"]) and hw == fixture["frame0"].shape[:2]
    cand, subset = fixture["candidate0"], fixture["subset0"]
    visible = subset[0] >= 0
    np.testing.assert_array_equal(bodies["subset"][0] >= 0, visible)
    assert np.abs(bodies["candidate"][visible] - cand[:18][visible]).max() <= 1e-4
    assert np.abs(bodies["others"] - cand[18:].reshape(-1, 18, 2)).max() <= 1e-4
    assert np.abs(bodies["hands"] - fixture["hands0"]).max() <= 1e-4
    assert np.abs(bodies["faces"] - fixture["faces0"]).max() <= 1e-4
    # the preview is the pose image upstream feeds PoseNet for this frame, pixel for pixel
    np.testing.assert_array_equal(previews[0], fixture["draw0"])
    face = np.asarray(frame["people"][0]["face_keypoints_2d"]).reshape(-1, 3)
    assert face.shape == (70, 3)  # OpenPose face layout: 68 landmarks + the two eyes


def test_draw_pose_matches_upstream():
    """Bodies of two people, hands (HSV edges, score-shaded points) and faces, pixel-exact."""
    fx = np.load(FIXTURES / "parity_drawing.npz")
    pose_in = {
        "bodies": {"candidate": fx["candidate"], "subset": fx["subset"], "score": fx["score"]},
        **{k: fx[k] for k in ("hands", "hands_score", "faces", "faces_score")},
    }
    for name in (k for k in fx.files if k.startswith("img_")):
        h, w = (int(v) for v in name[4:].split("x"))
        got = drawing.draw_pose(pose_in, h, w)
        np.testing.assert_array_equal(got, fx[name], err_msg=name)
    assert fx["img_256x192"].any()


def test_controlnet_aux_keypoints_are_drawn_without_missing_points():
    """c=1 / (0,0,0) lists (comfyui_controlnet_aux): missing hand/face points are not drawn, even moved."""
    body = [v for k in range(18) for v in ((20.0 + 5 * k, 30.0 + 6 * k, 1.0) if k < 14 else (0, 0, 0))]
    hand = [v for k in range(21) for v in ((40.0 + k, 60.0 + k, 1.0) if k % 2 else (0.0, 0.0, 0.0))]
    frame = {
        "people": [{"pose_keypoints_2d": body, "hand_left_keypoints_2d": hand, "face_keypoints_2d": None}],
        "canvas_height": 160,
        "canvas_width": 120,
    }
    bodies, _, _ = pose.bodies_from_pose_keypoint(frame)
    assert bodies["hands"].shape == (2, 21, 2) and bodies["faces"].shape == (0, 68, 2)
    assert np.isnan(bodies["hands"][0, ::2]).all() and np.isnan(bodies["hands"][1]).all()
    np.testing.assert_allclose(bodies["hands"][0, 1], [41 / 120, 61 / 160])
    moved = pose.retarget(bodies, [bodies], [1], (160, 120), (160, 120))[0]
    assert np.isnan(moved["hands"][0, ::2]).all()
    np.testing.assert_allclose(moved["hands"][0, 1::2], bodies["hands"][0, 1::2], atol=1e-6)
    # drawn at the 2160-px canvas itself (no resize), so 4-px points are visible
    with_hands = pose.draw_body(bodies, 2880, 2160)
    no_hands = pose.draw_body({k: bodies[k] for k in ("candidate", "subset", "score")}, 2880, 2160)
    ys, xs = np.nonzero((with_hands != no_hands).any(-1))
    given = np.array([(41 + 2 * j, 61 + 2 * j) for j in range(10)]) * 18  # odd points, in canvas px
    dist = np.abs(np.stack([xs, ys], 1)[:, None] - given[None]).max(-1).min(1)
    assert len(xs) and dist.max() <= 5  # only the given points were drawn (no edges: each lacks an end)
    # hand points are BGR (0,0,score) flipped to RGB: red
    assert with_hands[61 * 18, 41 * 18].tolist() == [255, 0, 0]


@pytest.fixture()
def weights_dir(onnx_dir):
    weights.add_search_dir(dwpose.FOLDER, onnx_dir)
    return onnx_dir


def test_node(weights_dir, fixture):
    frames = torch.from_numpy(np.stack([fixture["frame1"], synthetic_frame(5, people=1)])).float() / 255
    keypoints, preview = _run(nodes.DisPoseDWPose, images=frames, device="cpu")
    assert len(keypoints) == 2 and preview.shape == frames.shape and preview.dtype == torch.float32
    person = keypoints[0]["people"][0]
    assert len(person["pose_keypoints_2d"]) == 54 and len(person["hand_right_keypoints_2d"]) == 63
    body = np.asarray(person["pose_keypoints_2d"]).reshape(18, 3)
    np.testing.assert_allclose(body[:, :2], fixture["keypoints1"][0, :18], atol=1e-6)
    assert keypoints[0]["canvas_height"] == 200 and keypoints[0]["canvas_width"] == 150
    np.testing.assert_array_equal((preview[0].numpy() * 255).round().astype(np.uint8), fixture["draw1"])
    again = _run(nodes.DisPoseDWPose, images=frames.clone(), device="cpu")
    assert again[0] is keypoints  # cached: identical frames and settings do not run DWPose again
    body_only, _ = _run(
        nodes.DisPoseDWPose, images=frames, device="cpu", detect_hands=False, detect_face=False
    )
    assert set(body_only[0]["people"][0]) == {"pose_keypoints_2d"}
    assert not dwpose._LOADED  # sessions dropped after the run (keep_model_loaded off)
    _run(nodes.DisPoseDWPose, images=frames[:1], device="cpu", keep_model_loaded=True)
    assert len(dwpose._LOADED) == 1
    dwpose.unload()


def test_node_bad_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="IMAGE batch"):
        _run(nodes.DisPoseDWPose, images=torch.rand(8, 8, 3))
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setitem(weights._extra_dirs, dwpose.FOLDER, [empty])
    with pytest.raises(MissingWeightsError, match=r"yolox_l\.onnx.*yzd-v/DWPose"):
        _run(nodes.DisPoseDWPose, images=torch.rand(1, 32, 32, 3) + 0.001)


def test_estimate_bad_frames(model):
    with pytest.raises(InputError, match="too small"):
        dwpose.estimate(model, np.zeros((1, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        model(np.zeros((16, 16), np.uint8))


def test_cli_poses_run_dwpose(onnx_dir, tmp_path, fixture):
    """--driving VIDEO without pose files: DWPose on the reference and on every driving frame."""
    import argparse
    import json

    from motionsuite.pipelines.core import video

    frames = torch.from_numpy(np.stack([fixture["frame1"]] * 2)).float() / 255
    video.write_frames(frames, tmp_path / "drv", fps=8)  # a folder of PNG frames (lossless)
    ref_json = tmp_path / "ref.json"
    ref_json.write_text(json.dumps([{"people": [], "canvas_width": 8, "canvas_height": 8}]))
    args = argparse.Namespace(
        reference_pose=None, driving_pose=None, driving=str(tmp_path / "drv"), weights_dir=str(onnx_dir)
    )
    ref_pose, drv_pose = dwpose.cli_poses(args, frames[:1], lambda p: json.loads(Path(p).read_text()))
    assert len(ref_pose) == 1 and len(drv_pose) == 2
    body = np.asarray(drv_pose[1]["people"][0]["pose_keypoints_2d"]).reshape(18, 3)
    np.testing.assert_allclose(body[:, :2], fixture["keypoints1"][0, :18], atol=1e-6)
    args.reference_pose = str(ref_json)
    ref_pose, _ = dwpose.cli_poses(args, frames[:1], lambda p: json.loads(Path(p).read_text()))
    assert ref_pose[0]["people"] == []  # a given JSON file is used as it is
    args.driving = None
    with pytest.raises(InputError, match="--driving VIDEO"):
        dwpose.cli_poses(args, frames[:1], lambda p: [])


def test_missing_onnxruntime_is_a_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RuntimeError, match="pip install onnxruntime"):
        dwpose.providers()


def test_video_pose_images_match_upstream(model):
    """DWPose -> POSE_KEYPOINT -> global retarget -> drawing gives upstream's PoseNet images.

    Fixture ``parity_video_pose.npz``: upstream ``get_image_pose`` and ``get_video_pose``
    (DisPose @ c38ab13) on the same stand-in graphs. The reference is 96x128 and the three
    one-person driving frames are 120x160 (decord replaced by an in-memory reader).
    """
    fx = np.load(FIXTURES / "parity_video_pose.npz")
    ref_kp, ref_preview = dwpose.estimate(model, fx["reference"][None] / 255.0)
    drv_kp, _ = dwpose.estimate(model, fx["driving"] / 255.0)
    np.testing.assert_array_equal(ref_preview[0], fx["ref_draw"])
    reference, _, ref_hw = pose.bodies_from_pose_keypoint(ref_kp[0])
    parsed = [pose.bodies_from_pose_keypoint(f) for f in drv_kp]
    frames = [p[0] for p in parsed]
    moved = pose.retarget(reference, frames, [p[1] for p in parsed], parsed[0][2], ref_hw, "global")
    for i, bodies in enumerate(moved):
        np.testing.assert_array_equal(
            pose.draw_body(bodies, *ref_hw), fx["video_draw"][i], err_msg=f"frame {i}"
        )


def test_global_retarget_fits_raw_coordinates_as_upstream():
    """Stable keypoints below 0.3 in a driving frame still enter upstream's fit with their raw
    coordinates. POSE_KEYPOINT keeps them (c = score), so the fit and drawings match.

    Fixture ``parity_retarget.npz``: upstream ``get_video_pose`` (DisPose @ c38ab13), with a fake
    detector returning hand-made 134-point poses (numpy seed 11) for a 96x128 reference and three
    120x160 driving frames; some stable driving keypoints score 0.05-0.29.
    """
    fx = np.load(FIXTURES / "parity_retarget.npz")
    (h, w), (fh, fw) = fx["ref_hw"].tolist(), fx["frame_hw"].tolist()

    def frame(kp, sc, fh, fw):
        return dwpose.WholeBody(kp[None] * [fw, fh], sc[None], fh, fw).to_pose_keypoint()

    reference, _, _ = pose.bodies_from_pose_keypoint(frame(fx["ref_kp"], fx["ref_sc"], h, w))
    frames = [
        pose.bodies_from_pose_keypoint(frame(k, s, fh, fw))[0] for k, s in zip(fx["drv_kp"], fx["drv_sc"])
    ]
    assert any((f["subset"][0][pose.RETARGET_IDS] < 0).any() for f in frames)
    moved = pose.retarget(reference, frames, [1] * len(frames), (fh, fw), (h, w), "global")
    for i, bodies in enumerate(moved):
        np.testing.assert_array_equal(pose.draw_body(bodies, h, w), fx["video_draw"][i], err_msg=f"frame {i}")
    assert fx["video_draw"].any()
