"""Batched TPSMM animation: keypoints for every frame, then dense motion + inpainting per batch.

Upstream runs one frame at a time; here the source features are encoded once and every batch of
driving frames shares them, which is what makes CPU and GPU runs faster.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import ConvexHull

from ..core.errors import InputError
from ..core.memory import on_device, run_batched
from ..core.progress import Progress
from ..fomm.fitting import FITS, fit_inputs  # noqa: F401  (FITS: re-exported for nodes/CLI)
from .model import TPSMMModel

MODES = ("relative", "standard", "avd")


def hull_area(kp: torch.Tensor) -> float:
    """Area of the convex hull of one keypoint set (N, 2)."""
    return float(ConvexHull(kp.detach().double().cpu().numpy()).volume)


def relative_keypoints(
    kp_source: torch.Tensor, kp_driving: torch.Tensor, kp_initial: torch.Tensor
) -> torch.Tensor:
    """Move the source keypoints by the driving motion since the initial frame, rescaled by
    sqrt(hull area source / hull area initial) so faces of different sizes move alike."""
    scale = np.sqrt(hull_area(kp_source[0])) / np.sqrt(hull_area(kp_initial[0]))
    return (kp_driving - kp_initial) * float(scale) + kp_source


@torch.no_grad()
def animate_tensors(
    model: TPSMMModel,
    source: torch.Tensor,
    driving: torch.Tensor,
    mode: str = "relative",
    batch_size: int = 8,
    reference_frame: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """source (1,3,S,S), driving (N,3,S,S) at model size in [0,1] -> frames (N,3,S,S) on the CPU.

    ``reference_frame`` is the driving frame whose pose is taken as the source pose in relative mode.
    """
    if mode not in MODES:
        raise InputError(f"unknown TPSMM mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "avd" and model.avd_network is None:
        raise InputError(f"mode 'avd' needs an AVD network, and '{model.name}' has none; use 'relative'.")
    n = driving.shape[0]
    if not 0 <= reference_frame < n:
        raise InputError(f"reference_frame {reference_frame} is outside the {n} driving frames.")
    with on_device(*model.modules()) as device:
        src = source.to(device)
        kp_source = model.kp_detector(src)
        kp_driving = torch.cat(
            run_batched(
                lambda a, b: model.kp_detector(driving[a:b].to(device)), n, batch_size, what="TPSMM keypoints"
            )
        )
        if mode == "relative":
            kp_init = kp_driving[reference_frame : reference_frame + 1]
            kp_norm = relative_keypoints(kp_source, kp_driving, kp_init)
        elif mode == "avd":
            kp_norm = model.avd_network(kp_source, kp_driving)
        else:
            kp_norm = kp_driving
        feats = model.inpainting_network.encode(src)

        def render(a: int, b: int) -> torch.Tensor:
            motion = model.dense_motion_network(src, kp_norm[a:b], kp_source.expand(b - a, -1, -1))
            frames = model.inpainting_network.decode(
                src, feats, motion["deformation"], motion["occlusion_map"]
            )
            return frames.float().cpu()

        def tick(count: int) -> None:
            if progress is not None:
                progress.update(count)

        return torch.cat(run_batched(render, n, batch_size, on_batch=tick, what="TPSMM animation"))



def animate(
    model: TPSMMModel,
    source_image: torch.Tensor,
    driving_frames: torch.Tensor,
    mode: str = "relative",
    fit: str = "crop",
    paste_back: bool = True,
    batch_size: int = 8,
    reference_frame: int = 0,
    find_best_frame: bool = False,
    landmark_detector=None,
) -> torch.Tensor:
    """ComfyUI IMAGEs in and out: the source (first image used) animated by every driving frame.

    ``fit`` brings both inputs to the model's square size ("crop": centre square, "face": square
    around the face, "pad": whole frame padded, "stretch": squashed as the original pack did). With
    ``paste_back`` the animated square is pasted back into the full-size source frame (not for
    stretch). ``find_best_frame`` replaces ``reference_frame`` by the driving frame whose face pose
    is closest to the source's (needs face-alignment, or a ``landmark_detector`` with its API).
    """
    fitted = fit_inputs(source_image, driving_frames, model.config.image_size, fit, batch_size,
                        reference_frame, find_best_frame, landmark_detector)
    with Progress(fitted.driving.shape[0], "TPSMM") as progress:
        frames = animate_tensors(
            model, fitted.source, fitted.driving, mode, batch_size, fitted.reference_frame, progress
        )
    return fitted.finish(frames, paste_back)
