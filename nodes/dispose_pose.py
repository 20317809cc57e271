"""Built-in DWPose for DisPose: IMAGE frames -> POSE_KEYPOINT + pose preview.

The POSE_KEYPOINT output has the format of comfyui_controlnet_aux's DWPose node: pixel
coordinates, and body, face (70 points) and hand lists per person. Unlike that node, each ``c``
is the real DWPose score, which DisPose's confidence-aware drawing needs. Results are cached
for identical frames and settings, so re-queuing does not run the detector again.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import torch

from ..pipelines.core import weights
from ..pipelines.core.errors import InputError
from ..pipelines.core.progress import Progress
from ..pipelines.dispose import dwpose

CATEGORY = "MotionSuite/DisPose"
weights.register_folder(dwpose.FOLDER)
_CACHE: OrderedDict[str, tuple] = OrderedDict()
_CACHE_SIZE = 4


def _files(default: str) -> list[str]:
    return sorted(set(weights.list_files(dwpose.FOLDER, (".onnx",))) | {default})


class DisPoseDWPose:
    """DWPose (YOLOX-L + RTMPose-L whole body) on onnxruntime, exactly as MimicMotion/DisPose run it."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "images": ("IMAGE", {"tooltip": "Frames to estimate poses on (the reference or a video)."}),
                "detector": (
                    _files(dwpose.DETECTOR.filename),
                    {
                        "default": dwpose.DETECTOR.filename,
                        "tooltip": "Person detector in models/dwpose (yolox_l.onnx from HF yzd-v/DWPose).",
                    },
                ),
                "pose_model": (
                    _files(dwpose.POSE.filename),
                    {
                        "default": dwpose.POSE.filename,
                        "tooltip": "Whole-body model in models/dwpose (dw-ll_ucoco_384.onnx, yzd-v/DWPose).",
                    },
                ),
                "detect_hands": (
                    "BOOLEAN",
                    {"default": True, "tooltip": "Output (and draw) the 21 keypoints of each hand."},
                ),
                "detect_face": (
                    "BOOLEAN",
                    {"default": True, "tooltip": "Output (and draw) the 68 face landmarks."},
                ),
                "keep_model_loaded": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Keep the ONNX sessions (and their GPU memory) for the next run.",
                    },
                ),
                "device": (
                    ["auto", "cpu"],
                    {
                        "default": "auto",
                        "tooltip": "auto: CUDA when onnxruntime-gpu is installed, else CPU.",
                    },
                ),
            }
        }

    RETURN_TYPES = ("POSE_KEYPOINT", "IMAGE")
    RETURN_NAMES = ("pose_keypoint", "pose_preview")
    FUNCTION = "estimate"
    CATEGORY = CATEGORY

    def estimate(
        self,
        images,
        detector=dwpose.DETECTOR.filename,
        pose_model=dwpose.POSE.filename,
        detect_hands=True,
        detect_face=True,
        keep_model_loaded=False,
        device="auto",
    ):
        if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[-1] != 3:
            raise InputError("images must be an IMAGE batch (N,H,W,3); connect a LoadImage/video node.")
        frames = images.detach().float().cpu().numpy()
        h = hashlib.sha1(frames.tobytes())
        h.update(repr((frames.shape, detector, pose_model, detect_hands, detect_face, device)).encode())
        key = h.hexdigest()
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
        model = dwpose.load(detector, pose_model, device)
        try:
            with Progress(len(frames), desc="DWPose") as progress:
                keypoints, previews = dwpose.estimate(
                    model, frames, detect_hands, detect_face, on_frame=lambda _: progress.update(1)
                )
        finally:
            if not keep_model_loaded:
                dwpose.unload()
        result = (keypoints, torch.from_numpy(previews).float() / 255.0)
        _CACHE[key] = result
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
        return result


NODE_CLASS_MAPPINGS = {"MotionSuite_DisPose_DWPose": DisPoseDWPose}
NODE_DISPLAY_NAME_MAPPINGS = {"MotionSuite_DisPose_DWPose": "DWPose (DisPose)"}
