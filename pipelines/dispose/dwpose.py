"""DWPose whole-body keypoints on onnxruntime, numerically as MimicMotion/DisPose run it.

Two released ONNX graphs from HF ``yzd-v/DWPose``:

- ``yolox_l.onnx``, a YOLOX-L COCO detector. The frame is letterboxed into 640x640 (scaled by
  ``r = min(640/h, 640/w)``, bilinear, top-left aligned, grey 114 padding, raw 0..255 values). Each
  of the 8400 anchors (strides 8/16/32) gives centre offsets, log sizes, objectness and 80 class
  scores. Boxes are decoded against their grid cell and stride, mapped back by ``1/r``, and
  reduced by NMS (IoU 0.45, class score > 0.1). People (class 0) with ``obj*cls > 0.3`` are kept.
  With no person the whole frame is one box.
- ``dw-ll_ucoco_384.onnx``, an RTMPose-L whole-body model (133 COCO-WholeBody keypoints, SimCC
  head). Each box is padded by 1.25, widened to the model's 288:384 aspect, cropped by an affine
  warp, and normalised with the ImageNet mean/std. The coordinate is the arg-max bin of each
  1-D classification vector divided by the split ratio 2.0; the score is the smaller of the two
  maxima (a location is -1 when that score is <= 0). The crop transform is undone.

Body keypoints are then given in OpenPose-18 order. A neck at index 17 is the shoulder midpoint,
and it is visible (score 1) only when both shoulders score > 0.3. Points 18..23 are feet, 24..91
the 68 face points, 92..112 the left and 113..133 the right hand. ``to_pose_keypoint`` writes
one frame as comfyui_controlnet_aux's POSE_KEYPOINT dict, with pixel coordinates and the DWPose
scores as confidences.

No ComfyUI imports. onnxruntime is imported lazily, with an install hint if it is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core import weights
from ..core.errors import InputError
from .pose import bodies_from_pose_keypoint, draw_body

FOLDER = "dwpose"
DETECTOR = weights.WeightSpec(
    filename="yolox_l.onnx",
    folder=FOLDER,
    repo_id="yzd-v/DWPose",
    size="217 MB",
    description="DWPose person detector (YOLOX-L)",
)
POSE = weights.WeightSpec(
    filename="dw-ll_ucoco_384.onnx",
    folder=FOLDER,
    repo_id="yzd-v/DWPose",
    size="134 MB",
    description="DWPose whole-body keypoints (RTMPose-L, 133 points)",
)

DETECTOR_SIZE = 640
STRIDES = (8, 16, 32)
PAD_VALUE = 114
NMS_IOU = 0.45
CLASS_SCORE_MIN = 0.1
PERSON_SCORE_MIN = 0.3
BOX_PADDING = 1.25
SIMCC_SPLIT = 2.0
MEAN = np.array([123.675, 116.28, 103.53])
STD = np.array([58.395, 57.12, 57.375])
VISIBLE = 0.3
# COCO-WholeBody body indices (with the neck inserted at 17) that land at OpenPose indices.
COCO_TO_OPENPOSE = ([17, 6, 8, 10, 7, 9, 12, 14, 16, 13, 15, 2, 1, 4, 3],
                    [1, 2, 3, 4, 6, 7, 8, 9, 10, 12, 13, 14, 15, 16, 17])  # fmt: skip
BODY, FEET, FACE, LEFT_HAND, RIGHT_HAND = (
    slice(0, 18), slice(18, 24), slice(24, 92), slice(92, 113), slice(113, 134)
)  # fmt: skip


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:  # optional dependency: only the built-in DWPose node needs it
        raise RuntimeError(
            "DWPose needs onnxruntime: `pip install onnxruntime` (or onnxruntime-gpu for CUDA), "
            "or feed POSE_KEYPOINT from comfyui_controlnet_aux instead."
        ) from exc
    return onnxruntime


def providers(device: str = "auto") -> list[str]:
    """CUDA first when onnxruntime has it and the device allows, else CPU."""
    available = _onnxruntime().get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


# ----------------------------------------------------------------------------------------------
# Detector (YOLOX)


def letterbox(image: np.ndarray, size: int = DETECTOR_SIZE) -> tuple[np.ndarray, float]:
    """(1,3,size,size) float32 raw-pixel input and the scale ``r`` applied to the frame."""
    h, w = image.shape[:2]
    r = min(size / h, size / w)
    nh, nw = int(h * r), int(w * r)
    canvas = np.full((size, size, 3), PAD_VALUE, dtype=np.uint8)
    canvas[:nh, :nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None], dtype=np.float32), r


def decode_yolox(raw: np.ndarray, size: int = DETECTOR_SIZE) -> np.ndarray:
    """(N, 5+C) raw head output -> (N, 5+C) with pixel centre x, y and width, height (float32)."""
    cells, strides = [], []
    for s in STRIDES:
        n = size // s
        gx, gy = np.meshgrid(np.arange(n), np.arange(n))
        cells.append(np.stack([gx, gy], -1).reshape(-1, 2))
        strides.append(np.full((n * n, 1), s))
    cell, stride = np.concatenate(cells), np.concatenate(strides)
    out = raw.copy()
    # float64 arithmetic, stored back into the float32 array (as the reference decoder does).
    out[:, :2] = (out[:, :2] + cell) * stride
    out[:, 2:4] = np.exp(out[:, 2:4]) * stride
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> list[int]:
    """Greedy NMS on xyxy boxes with the inclusive (+1) pixel area convention; kept indices."""
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[overlap <= iou]
    return keep


def person_boxes(raw: np.ndarray, ratio: float) -> np.ndarray:
    """(K,4) xyxy person boxes in frame pixels from the detector's (1,N,5+C) output, best first.

    NMS is per class; only class 0 survives the final filter, so only class 0 is reduced here.
    """
    pred = decode_yolox(raw[0])
    cx, cy, bw, bh = (pred[:, i] for i in range(4))
    boxes = np.stack([cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0], 1).astype(np.float32)
    boxes /= ratio
    scores = pred[:, 4] * pred[:, 5]
    cand = scores > CLASS_SCORE_MIN
    if not cand.any():
        return np.zeros((0, 4))
    boxes, scores = boxes[cand], scores[cand]
    keep = nms(boxes, scores)
    boxes, scores = boxes[keep], scores[keep]
    # float64 from here on, as the boxes leave the reference NMS (concatenated with class ids).
    return boxes[scores > PERSON_SCORE_MIN].astype(np.float64)


# ----------------------------------------------------------------------------------------------
# Whole-body pose (RTMPose SimCC)


def box_center_scale(box: np.ndarray, aspect: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and (w,h) of a padded xyxy box, enlarged to the model aspect ``w/h``."""
    x1, y1, x2, y2 = box
    center = np.array([x1 + x2, y1 + y2]) * 0.5
    w, h = np.array([x2 - x1, y2 - y1]) * BOX_PADDING
    scale = np.array([w, w / aspect]) if w > h * aspect else np.array([h * aspect, h])
    return center, scale


def crop_matrix(center: np.ndarray, scale: np.ndarray, out_wh: tuple[int, int]) -> np.ndarray:
    """2x3 affine taking the box (centre, width) onto the model input, from three point pairs.

    The points are the centre, the top-middle point and that point turned 90 degrees about the
    top; they are stored in float32, as the reference does, so the matrix matches it bit for bit.
    """
    ow, oh = out_wh

    def triangle(c: np.ndarray, half_w: float) -> np.ndarray:
        a = np.asarray(c, np.float32)
        b = (np.asarray(c, np.float64) + np.array([0.0, -half_w])).astype(np.float32)
        d = a - b
        return np.stack([a, b, b + np.array([-d[1], d[0]], np.float32)])

    src = triangle(center, scale[0] * 0.5)
    dst = triangle(np.array([ow * 0.5, oh * 0.5]), ow * 0.5)
    return cv2.getAffineTransform(src, dst)


def simcc_decode(simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K,2) input-pixel locations (-1 where the score is <= 0) and (K,) scores from SimCC vectors."""
    locs = np.stack([simcc_x.argmax(-1), simcc_y.argmax(-1)], -1).astype(np.float32)
    scores = np.minimum(simcc_x.max(-1), simcc_y.max(-1))
    locs[scores <= 0] = -1
    return locs / SIMCC_SPLIT, scores


def to_openpose_order(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n,133,·) COCO-WholeBody -> (n,134,·) with the neck at 17 and OpenPose-18 body order."""
    info = np.concatenate([keypoints, scores[..., None]], -1)
    neck = info[:, [5, 6]].mean(1)
    neck[:, 2] = ((info[:, 5, 2] > VISIBLE) & (info[:, 6, 2] > VISIBLE)).astype(int)
    info = np.insert(info, 17, neck, axis=1)
    src, dst = COCO_TO_OPENPOSE
    info[:, dst] = info[:, src]
    return info[..., :2], info[..., 2]


@dataclass
class WholeBody:
    """DWPose result of one frame: pixel keypoints (n,134,2) and scores (n,134), OpenPose order."""

    keypoints: np.ndarray
    scores: np.ndarray
    height: int
    width: int

    def to_pose_keypoint(self, hands: bool = True, face: bool = True) -> dict:
        """comfyui_controlnet_aux POSE_KEYPOINT frame (pixels; c = DWPose score)."""

        def flat(points: np.ndarray, scores: np.ndarray) -> list[float]:
            return np.concatenate([points, scores[:, None]], 1).astype(float).ravel().tolist()

        people = []
        for kp, sc in zip(self.keypoints, self.scores, strict=True):
            person = {"pose_keypoints_2d": flat(kp[BODY], sc[BODY])}
            if face:  # OpenPose faces have 70 points: the 68 landmarks, then the two eyes
                person["face_keypoints_2d"] = flat(
                    np.concatenate([kp[FACE], kp[[14, 15]]]), np.concatenate([sc[FACE], sc[[14, 15]]])
                )
            if hands:
                person["hand_left_keypoints_2d"] = flat(kp[LEFT_HAND], sc[LEFT_HAND])
                person["hand_right_keypoints_2d"] = flat(kp[RIGHT_HAND], sc[RIGHT_HAND])
            people.append(person)
        return {"people": people, "canvas_height": self.height, "canvas_width": self.width}


class DWPose:
    """The two onnxruntime sessions; ``__call__`` takes an (H,W,3) uint8 RGB frame."""

    def __init__(self, detector: str | Path, pose: str | Path, device: str = "auto") -> None:
        ort = _onnxruntime()
        chosen = providers(device)
        self.detector = ort.InferenceSession(str(detector), providers=chosen)
        self.pose = ort.InferenceSession(str(pose), providers=chosen)
        in_h, in_w = self.pose.get_inputs()[0].shape[2:]
        self.input_wh = (int(in_w), int(in_h))

    def detect(self, image: np.ndarray) -> np.ndarray:
        """(K,4) xyxy person boxes; the whole frame when nobody is found."""
        x, r = letterbox(image)
        raw = self.detector.run(None, {self.detector.get_inputs()[0].name: x})[0]
        boxes = person_boxes(raw, r)
        if len(boxes) == 0:
            h, w = image.shape[:2]
            return np.array([[0, 0, w, h]])
        return boxes

    def estimate(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(n,133,2) frame-pixel keypoints and (n,133) scores, one person per box."""
        w, h = self.input_wh
        name = self.pose.get_inputs()[0].name
        all_kp, all_sc = [], []
        for box in boxes:
            center, scale = box_center_scale(np.asarray(box), w / h)
            crop = cv2.warpAffine(image, crop_matrix(center, scale, (w, h)), (w, h), flags=cv2.INTER_LINEAR)
            x = ((crop - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)
            simcc_x, simcc_y = self.pose.run(None, {name: x})[:2]
            locs, scores = simcc_decode(simcc_x[0], simcc_y[0])
            all_kp.append(locs / np.array(self.input_wh) * scale + center - scale / 2)
            all_sc.append(scores)
        return np.stack(all_kp), np.stack(all_sc)

    def __call__(self, image: np.ndarray) -> WholeBody:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"DWPose takes an (H,W,3) uint8 RGB frame, got {image.shape} {image.dtype}.")
        keypoints, scores = self.estimate(image, self.detect(image))
        keypoints, scores = to_openpose_order(keypoints, scores)
        return WholeBody(keypoints, scores, image.shape[0], image.shape[1])


_LOADED: dict[tuple[str, str, str], DWPose] = {}


def load(detector: str = DETECTOR.filename, pose: str = POSE.filename, device: str = "auto") -> DWPose:
    """Sessions for the two files (found in models/dwpose or pretrained_weights/dwpose, else
    downloaded from HF yzd-v/DWPose, else an error naming the file and folder). The last pair is kept."""
    det_path, pose_path = weights.resolve(DETECTOR, detector), weights.resolve(POSE, pose)
    key = (str(det_path), str(pose_path), device)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = DWPose(det_path, pose_path, device)
    return _LOADED[key]


def unload() -> None:
    """Drop the kept sessions (onnxruntime's memory is outside ComfyUI's model management)."""
    _LOADED.clear()


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """(N,H,W,3) float 0..1 -> uint8, rounded (so 8-bit frames come back exactly)."""
    return np.clip(np.round(np.asarray(frames, np.float64) * 255.0), 0, 255).astype(np.uint8)


def estimate(
    model: DWPose,
    frames: np.ndarray,
    hands: bool = True,
    face: bool = True,
    on_frame: Callable[[int], None] | None = None,
) -> tuple[list[dict], np.ndarray]:
    """POSE_KEYPOINT frames and (N,H,W,3) uint8 previews (the pose images DisPose draws)."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
        raise InputError(f"DWPose takes IMAGE frames (N,H,W,3), got shape {tuple(frames.shape)}.")
    if min(frames.shape[1:3]) < 8:
        raise InputError(f"frames of {frames.shape[2]}x{frames.shape[1]} px are too small for DWPose.")
    keypoints, previews = [], []
    for i, frame in enumerate(to_uint8(frames)):
        result = model(frame).to_pose_keypoint(hands=hands, face=face)
        keypoints.append(result)
        previews.append(preview(result))
        if on_frame is not None:
            on_frame(i)
    return keypoints, np.stack(previews)


def preview(frame: dict) -> np.ndarray:
    """(H,W,3) uint8 pose image of one POSE_KEYPOINT frame, drawn as the motion encoder draws it."""
    h, w = int(frame["canvas_height"]), int(frame["canvas_width"])
    bodies, _, _ = bodies_from_pose_keypoint(frame)
    if bodies is None:
        return np.zeros((h, w, 3), np.uint8)
    return draw_body(bodies, h, w)


def cli_poses(args, reference, read_json: Callable[[str], list[dict]]) -> tuple[list[dict], list[dict]]:
    """POSE_KEYPOINT lists for the command line: the JSON files given, else DWPose on the
    reference image (IMAGE tensor) and on the ``--driving`` video."""
    if not args.driving_pose and not args.driving:
        raise InputError("give the driving motion: --driving VIDEO (DWPose runs) or --driving-pose JSON.")
    model = None
    if args.weights_dir:
        weights.add_search_dir(FOLDER, args.weights_dir)

    def run_dwpose(frames) -> list[dict]:
        nonlocal model
        model = model or load()
        return estimate(model, frames.float().numpy())[0]

    ref_pose = read_json(args.reference_pose) if args.reference_pose else run_dwpose(reference)
    if args.driving_pose:
        return ref_pose, read_json(args.driving_pose)
    from ..core import video

    return ref_pose, run_dwpose(video.read_frames(args.driving)[0])
