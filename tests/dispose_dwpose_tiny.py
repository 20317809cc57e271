"""Tiny stand-ins for the DWPose ONNX graphs, built from a seed with ``onnx.helper``.

They have the released graphs' input/output names and shapes:
- ``yolox_l.onnx``: ``images`` (1,3,640,640) raw pixels -> ``output`` (1,8400,85). Each stride
  (8/16/32) average-pools the frame to its grid and applies a 1x1 conv. The objectness and class
  scores go through a sigmoid, as in the release, whose head already applies it. The objectness
  and person weights follow brightness, so bright blobs become people and NMS has overlapping
  boxes to reduce.
- ``dw-ll_ucoco_384.onnx``: ``input`` (1,3,384,288) normalised pixels -> ``simcc_x`` (1,133,576)
  and ``simcc_y`` (1,133,768). Each is a column (row) mean profile, upsampled by a random matrix,
  mixed per keypoint, plus a random bias and a per-keypoint offset. Some keypoints score <= 0
  (location -1), some are below and some above the 0.3 visibility threshold.

The graphs are a few MB, so the tests rebuild them instead of storing them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _const(name: str, value: np.ndarray):
    from onnx import numpy_helper

    return numpy_helper.from_array(np.ascontiguousarray(value), name)


def detector_graph(seed: int = 0):
    """ONNX ModelProto standing in for yolox_l.onnx."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes, inits, flat = [], [_const("inv255", np.array(1 / 255, np.float32))], []
    nodes.append(helper.make_node("Mul", ["images", "inv255"], ["x01"]))
    for s in (8, 16, 32):
        w = (rng.standard_normal((85, 3, 1, 1)) * 0.5).astype(np.float32)
        b = (rng.standard_normal(85) * 0.3).astype(np.float32)
        w[4], b[4] = 2.0, -3.0  # objectness: bright cells
        w[5], b[5] = 1.0, -1.0  # person class: bright cells
        w[:4] *= 0.1  # small, consistent offsets: large overlapping boxes for NMS to merge
        b[:2] *= 0.3
        b[2:4] = b[2:4] * 0.2 + np.log(np.array([200, 350]) / s)  # boxes about 200x350 px
        inits += [_const(f"w{s}", w), _const(f"b{s}", b), _const(f"shape{s}", np.array([1, 85, -1]))]
        nodes += [
            helper.make_node("AveragePool", ["x01"], [f"p{s}"], kernel_shape=[s, s], strides=[s, s]),
            helper.make_node("Conv", [f"p{s}", f"w{s}", f"b{s}"], [f"c{s}"]),
            helper.make_node("Reshape", [f"c{s}", f"shape{s}"], [f"f{s}"]),
        ]
        flat.append(f"f{s}")
    inits.append(_const("split", np.array([4, 81], np.int64)))
    nodes += [
        helper.make_node("Concat", flat, ["all"], axis=2),
        helper.make_node("Transpose", ["all"], ["pred"], perm=[0, 2, 1]),
        helper.make_node("Split", ["pred", "split"], ["box", "logits"], axis=2),
        helper.make_node("Sigmoid", ["logits"], ["probs"]),
        helper.make_node("Concat", ["box", "probs"], ["output"], axis=2),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yolox",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def pose_graph(seed: int = 1, keypoints: int = 133):
    """ONNX ModelProto standing in for dw-ll_ucoco_384.onnx."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    for axis, (length, bins, reduce_axis) in {"x": (288, 576, 2), "y": (384, 768, 3)}.items():
        up = (rng.standard_normal((length, bins)) * 3 / np.sqrt(length)).astype(np.float32)
        mix = rng.standard_normal((keypoints, 3)).astype(np.float32)
        offset = rng.uniform(-3.5, 0.5, (keypoints, 1))
        bias = (rng.standard_normal((keypoints, bins)) * 0.3 + offset).astype(np.float32)
        inits += [_const(f"up_{axis}", up), _const(f"mix_{axis}", mix), _const(f"bias_{axis}", bias)]
        nodes += [
            helper.make_node("ReduceMean", ["input"], [f"prof_{axis}"], axes=[reduce_axis], keepdims=0),
            helper.make_node("MatMul", [f"prof_{axis}", f"up_{axis}"], [f"bins_{axis}"]),
            helper.make_node("MatMul", [f"mix_{axis}", f"bins_{axis}"], [f"mixed_{axis}"]),
            helper.make_node("Add", [f"mixed_{axis}", f"bias_{axis}"], [f"simcc_{axis}"]),
        ]
    graph = helper.make_graph(
        nodes,
        "tiny_rtmpose",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 384, 288])],
        [
            helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, keypoints, 576]),
            helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, keypoints, 768]),
        ],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def write_dwpose(folder: Path, det_seed: int = 0, pose_seed: int = 1) -> tuple[Path, Path]:
    """Writes yolox_l.onnx and dw-ll_ucoco_384.onnx stand-ins into ``folder``."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    det, pose = folder / "yolox_l.onnx", folder / "dw-ll_ucoco_384.onnx"
    onnx.save(detector_graph(det_seed), str(det))
    onnx.save(pose_graph(pose_seed), str(pose))
    return det, pose


def synthetic_frame(seed: int = 0, height: int = 200, width: int = 150, people: int = 2) -> np.ndarray:
    """(H,W,3) uint8 RGB: dark noise with bright blobs (people) and a colour gradient."""
    rng = np.random.default_rng(seed)
    img = rng.uniform(0, 40, (height, width, 3))
    img += np.linspace(0, 30, width)[None, :, None] * np.array([1.0, 0.5, 0.0])
    for _ in range(people):
        bh, bw = int(rng.integers(height // 3, height // 2)), int(rng.integers(width // 5, width // 3))
        y, x = int(rng.integers(0, height - bh)), int(rng.integers(0, width - bw))
        img[y : y + bh, x : x + bw] += rng.uniform(150, 210, 3)
    return np.clip(img, 0, 255).astype(np.uint8)
