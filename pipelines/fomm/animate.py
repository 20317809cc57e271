"""FOMM animation: move the source image with the motion of a driving video.

The algorithm box (upstream demo.py:make_animation, batched):
1. bring source and driving frames to the model's 256x256 square (centre/face crop or pad);
2. detect the source keypoints once and encode the source once;
3. pick the reference driving frame: the first, or the one whose face pose best matches the source
   (upstream runs backwards from it to the start and forwards to the end, each half relative to
   it; since every frame only depends on the reference, one pass relative to it is the same);
4. for each batch of driving frames: keypoints -> normalize_kp -> generator;
5. optionally paste the animated square back into the full-size source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..core import images
from ..core.errors import InputError
from ..core.memory import on_device, run_batched
from . import faces
from .model import FommModel
from .motion import MotionOptions, movement_scale, normalize_kp

CROP_MODES = ("center", "face", "pad")


@dataclass(frozen=True)
class AnimateOptions:
    """Everything the user chooses besides the model and the images."""

    motion: MotionOptions = field(default_factory=MotionOptions)
    crop: str = "center"
    paste_back: bool = False
    find_best_frame: bool = False
    keep_loaded: bool = False  # leave the networks on the GPU for the next run


def _box(x: torch.Tensor, mode: str, detector, what: str) -> images.CropBox:
    h, w = x.shape[-2:]
    if mode == "pad":
        return images.pad_box(h, w)
    if mode == "face":
        center, side = faces.face_center_and_side(detector, x[0], what)
        return images.square_box(h, w, center=center, side=side)
    return images.square_box(h, w)


def animate(model: FommModel, source: torch.Tensor, driving: torch.Tensor,
            options: AnimateOptions = AnimateOptions(), batch_size: int = 8,
            progress: Callable[[int], None] | None = None, device: torch.device | None = None,
            landmark_detector=None) -> torch.Tensor:
    """Animate ``source`` (1, 3, H, W) by ``driving`` (N, 3, h, w), both 0..1; returns (N, 3, S, S) at the
    model size, or (N, 3, H, W) when ``options.paste_back``. ``landmark_detector`` defaults to
    face-alignment when a face option is on."""
    if source.ndim != 4 or source.shape[0] != 1 or source.shape[1] != 3:
        raise InputError(f"source must be one RGB image (1, 3, H, W); got {tuple(source.shape)}. "
                         "Pass a single image, not a batch.")
    if driving.ndim != 4 or driving.shape[0] < 1 or driving.shape[1] != 3:
        raise InputError(f"driving must be RGB frames (N, 3, H, W) with N >= 1; got {tuple(driving.shape)}.")
    if options.crop not in CROP_MODES:
        raise InputError(f"crop must be one of {CROP_MODES}; got {options.crop!r}.")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1; got {batch_size}.")
    needs_faces = options.crop == "face" or options.find_best_frame
    if needs_faces and landmark_detector is None:
        landmark_detector = faces.landmark_detector(device or "cpu")

    size = model.size
    source_box = _box(source, options.crop, landmark_detector, "source image")
    driving_box = _box(driving[:1], options.crop, landmark_detector, "first driving frame")
    source_sq = images.crop_resize(source.float(), source_box, size)

    def driving_sq(start: int, stop: int) -> torch.Tensor:
        return images.crop_resize(driving[start:stop].float(), driving_box, size)

    reference = 0
    if options.find_best_frame:
        reference = faces.best_frame(landmark_detector, source_sq, lambda i: driving_sq(i, i + 1)[0],
                                     driving.shape[0])

    gen, kpd = model.generator, model.kp_detector
    with torch.no_grad(), on_device(gen, kpd, device=device, keep_loaded=options.keep_loaded) as dev:
        src = source_sq.to(dev)
        kp_source = kpd(src)
        kp_initial = kpd(driving_sq(reference, reference + 1).to(dev))
        source_features = gen.encode(src)
        dm = gen.dense_motion_network
        source_small = dm.down(src) if dm is not None and dm.scale_factor != 1 else None
        scale = 1.0
        if options.motion.relative_movement and options.motion.adapt_movement_scale:
            scale = movement_scale(kp_source, kp_initial)

        def run(start: int, stop: int) -> torch.Tensor:
            kp_driving = kpd(driving_sq(start, stop).to(dev))
            kp_norm = normalize_kp(kp_source, kp_driving, kp_initial, options.motion, scale=scale)
            out = gen(src, kp_norm, kp_source, source_features=source_features, source_small=source_small)
            return out["prediction"].float().cpu()

        frames = torch.cat(run_batched(run, driving.shape[0], batch_size, on_batch=progress,
                                       what="animating frames with FOMM"))
    if options.paste_back:
        frames = images.paste_back(frames, source.float().cpu(), source_box)
    return frames


def animate_frame_by_frame(model: FommModel, source: torch.Tensor, driving: torch.Tensor,
                           options: MotionOptions | None = None) -> torch.Tensor:
    """The upstream loop (one frame at a time, source re-encoded each frame) on 256x256 inputs;
    kept as the reference for the benchmark."""
    options = options or MotionOptions()
    gen, kpd = model.generator, model.kp_detector
    with torch.no_grad():
        kp_source = kpd(source)
        kp_initial = kpd(driving[:1])
        out = []
        for i in range(driving.shape[0]):
            kp_norm = normalize_kp(kp_source, kpd(driving[i:i + 1]), kp_initial, options)
            out.append(gen(source, kp_norm, kp_source)["prediction"])
    return torch.cat(out)
