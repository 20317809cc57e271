"""Run an API-format workflow through NODE_CLASS_MAPPINGS, with stand-ins for ComfyUI core I/O nodes.

The pack's nodes run for real (tiny weights); core nodes that load or save files are replaced by
small functions that hand over the test's images/frames, so the pack's part of the graph is
exercised end to end exactly as ComfyUI would wire it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from motionsuite.nodes import NODE_CLASS_MAPPINGS
from motionsuite.pipelines.core import video


class StandIns:
    """Core node stand-ins that read the workflow's input files from ``input_dir``."""

    def __init__(self, input_dir: Path, fps: float = 25.0) -> None:
        self.input_dir = input_dir
        self.fps = fps
        self.saved: list[Any] = []

    def _get(self, name: str) -> torch.Tensor:
        path = self.input_dir / name
        if not path.exists():
            raise KeyError(f"the workflow loads {name!r}; its tests/wf_<name>.py must write it")
        return video.read_frames(path)[0]

    def LoadImage(self, image: str, **_: Any) -> tuple:
        img = self._get(image)
        return img, torch.zeros(img.shape[:3])

    def LoadVideo(self, file: str, **_: Any) -> tuple:
        return ({"frames": self._get(file), "fps": self.fps},)

    def GetVideoComponents(self, video: dict) -> tuple:
        return video["frames"], None, video["fps"]

    def CreateVideo(self, images: torch.Tensor, fps: float, audio: Any = None) -> tuple:
        return ({"frames": images, "fps": fps},)

    def SaveVideo(self, video: dict, **_: Any) -> tuple:
        self.saved.append(video)
        return ()

    def PreviewImage(self, images: torch.Tensor, **_: Any) -> tuple:
        self.saved.append(images)
        return ()

    SaveImage = PreviewImage

    def ImageBatch(self, image1: torch.Tensor, image2: torch.Tensor) -> tuple:
        """Core semantics: image2 is resized to image1's size (bilinear), then concatenated."""
        if image2.shape[1:3] != image1.shape[1:3]:
            resized = torch.nn.functional.interpolate(
                image2.movedim(-1, 1), size=image1.shape[1:3], mode="bilinear", align_corners=False
            )
            image2 = resized.movedim(1, -1)
        return (torch.cat([image1, image2], dim=0),)


def run_api_workflow(api: dict[str, dict], stand_ins: StandIns) -> dict[str, tuple]:
    """Execute every node of ``api`` in dependency order; returns each node's outputs by id."""
    results: dict[str, tuple] = {}

    def evaluate(node_id: str, stack: tuple[str, ...] = ()) -> tuple:
        if node_id in results:
            return results[node_id]
        if node_id in stack:
            raise ValueError(f"cycle through node {node_id}")
        node = api[node_id]
        kwargs = {}
        for name, value in node["inputs"].items():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                kwargs[name] = evaluate(value[0], (*stack, node_id))[value[1]]
            else:
                kwargs[name] = value
        cls_name = node["class_type"]
        if cls_name in NODE_CLASS_MAPPINGS:
            cls = NODE_CLASS_MAPPINGS[cls_name]
            out = getattr(cls(), cls.FUNCTION)(**kwargs)
            if isinstance(out, dict):
                out = out.get("result", ())
        elif hasattr(stand_ins, cls_name):
            out = getattr(stand_ins, cls_name)(**kwargs)
        else:
            raise KeyError(f"no stand-in for core node {cls_name}")
        results[node_id] = tuple(out)
        return results[node_id]

    with torch.inference_mode():  # as ComfyUI's executor runs every prompt
        for node_id in api:
            evaluate(node_id)
    return results
