"""Batched MRAA animation: region parameters for every frame, then flow + generator per batch.

Upstream (``demo.py:make_animation``) runs one frame at a time and re-encodes the source for each;
here the source's region parameters, downscaled copy and encoder features are computed once and
shared by every batch of driving frames.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.errors import InputError
from ..core.memory import on_device, run_batched
from ..core.progress import Progress
from ..fomm.fitting import FITS, fit_inputs  # noqa: F401  (FITS: re-exported for nodes/CLI)
from ..fomm.motion import hull_area
from .model import MRAAModel

MODES = ("avd", "relative", "standard")
PARAM_KEYS = ("shift", "covar", "affine")


def _take(params: dict, a: int, b: int) -> dict:
    return {k: v[a:b] for k, v in params.items()}


def relative_region_params(source: dict, driving: dict, initial: dict) -> dict:
    """Source regions moved by the driving motion since the reference frame (paper Sec. 3.3).

    shift = (shift_d - shift_ref) * sqrt(hull area source / hull area ref) + shift_s;
    affine = A_d A_ref^-1 A_s. As upstream, ``covar`` (used only for the heatmaps) stays the
    driving frame's.
    """
    scale = float(np.sqrt(hull_area(source["shift"][0])) / np.sqrt(hull_area(initial["shift"][0])))
    out = dict(driving)
    out["shift"] = (driving["shift"] - initial["shift"]) * scale + source["shift"]
    change = driving["affine"] @ torch.inverse(initial["affine"])
    out["affine"] = change @ source["affine"]
    return out


def region_params(model: MRAAModel, frames: torch.Tensor, batch_size: int, device: torch.device) -> dict:
    """Region parameters (shift, covar, affine) of every frame, in batches."""

    def detect(a: int, b: int) -> dict:
        out = model.region_predictor(frames[a:b].to(device))
        return {k: out[k] for k in PARAM_KEYS}

    parts = run_batched(detect, frames.shape[0], batch_size, what="MRAA region prediction")
    return {k: torch.cat([p[k] for p in parts]) for k in PARAM_KEYS}


def transfer_params(model: MRAAModel, mode: str, source: dict, driving: dict, reference_frame: int) -> dict:
    """Region parameters that drive the source in ``mode`` (avd / relative / standard)."""
    if mode == "relative":
        return relative_region_params(source, driving, _take(driving, reference_frame, reference_frame + 1))
    if mode == "avd":
        return model.avd_network(source, driving)
    return driving


@torch.no_grad()
def animate_tensors(
    model: MRAAModel,
    source: torch.Tensor,
    driving: torch.Tensor,
    mode: str = "avd",
    batch_size: int = 8,
    reference_frame: int = 0,
    background_motion: bool = False,
    progress: Progress | None = None,
) -> torch.Tensor:
    """source (1,3,S,S), driving (N,3,S,S) at model size in [0,1] -> frames (N,3,S,S) on the CPU.

    ``reference_frame`` is the driving frame taken as the source pose in relative mode.
    ``background_motion`` adds the background predictor's camera motion (upstream uses it only in
    training; it needs a checkpoint with a non-"zero" ``bg_predictor``).
    """
    if mode not in MODES:
        raise InputError(f"unknown MRAA mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "avd" and model.avd_network is None:
        raise InputError(f"mode 'avd' needs an AVD network, and '{model.name}' has none; use 'relative'.")
    if background_motion and (model.bg_predictor is None or model.config.bg_type == "zero"):
        raise InputError(f"'{model.name}' has no background motion predictor; switch background_motion off.")
    n = driving.shape[0]
    if not 0 <= reference_frame < n:
        raise InputError(f"reference_frame {reference_frame} is outside the {n} driving frames.")
    gen = model.generator
    with on_device(*model.modules()) as device:
        src = source.to(device)
        src_params = region_params(model, src, 1, device)
        params = transfer_params(
            model, mode, src_params, region_params(model, driving, batch_size, device), reference_frame
        )
        feats = gen.encode(src)
        flow_net = gen.pixelwise_flow_predictor
        src_small = flow_net.down(src) if flow_net.scale_factor != 1 else src

        def render(a: int, b: int) -> torch.Tensor:
            bg = model.bg_predictor(src, driving[a:b].to(device)) if background_motion else None
            out = gen(src, _take(params, a, b), src_params, bg, source_features=feats, source_small=src_small)
            return out["prediction"].float().cpu()

        def tick(count: int) -> None:
            if progress is not None:
                progress.update(count)

        return torch.cat(run_batched(render, n, batch_size, on_batch=tick, what="MRAA animation"))



def animate(
    model: MRAAModel,
    source_image: torch.Tensor,
    driving_frames: torch.Tensor,
    mode: str = "avd",
    fit: str = "crop",
    paste_back: bool = True,
    batch_size: int = 8,
    reference_frame: int = 0,
    background_motion: bool = False,
    landmark_detector=None,
) -> torch.Tensor:
    """ComfyUI IMAGEs in and out: the source (first image used) animated by every driving frame.

    ``fit`` brings both inputs to the model's square size ("crop": centre square, "face": square
    around the face (vox model; needs face-alignment), "pad": whole frame padded, "stretch": squashed
    as the original pack did). With ``paste_back`` the animated square is pasted back into the
    full-size source frame (not for stretch).
    """
    if mode not in MODES:
        raise InputError(f"unknown MRAA mode {mode!r}; choose one of {', '.join(MODES)}")
    fitted = fit_inputs(source_image, driving_frames, model.config.image_size, fit, batch_size,
                        reference_frame, landmark_detector=landmark_detector)
    with Progress(fitted.driving.shape[0], "MRAA") as progress:
        frames = animate_tensors(
            model, fitted.source, fitted.driving, mode, batch_size, fitted.reference_frame, background_motion,
            progress,
        )
    return fitted.finish(frames, paste_back)
