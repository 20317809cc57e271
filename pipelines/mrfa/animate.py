"""Batched MRFA animation: keypoints for every frame, then prior motion + refinement per batch.

Upstream runs one frame at a time and recomputes the source side (feature pyramid, source
structure encoding) for every frame; here the source side is computed once and every batch of
driving frames shares it.

Modes: "relative" moves the source keypoints by the driving motion since the reference frame
(upstream ``normalize_kp`` with relative movement and relative jacobians, as its demo's
``--relative``); "absolute" uses the driving keypoints as they are.

Background motion (celebvhq model): upstream's demo never uses the background predictor at
inference; its training forward feeds ``bg_predictor(source, driving)`` to the dense motion network.
Absolute mode does exactly that. Relative mode uses ``bg_predictor(reference frame, driving)``, the
camera motion since the reference frame, so a still source is not moved by the driving video's
framing.
"""

from __future__ import annotations

import torch

from ...models.fomm.primitives import AntiAliasInterpolation2d
from ..core.errors import InputError
from ..core.memory import on_device, run_batched
from ..core.progress import Progress
from ..fomm.fitting import FITS, fit_inputs  # noqa: F401  (FITS: re-exported for nodes/CLI)
from ..fomm.motion import MotionOptions, movement_scale, normalize_kp
from .model import MRFAModel

MODES = ("relative", "absolute")


@torch.no_grad()
def animate_tensors(
    model: MRFAModel,
    source: torch.Tensor,
    driving: torch.Tensor,
    mode: str = "relative",
    adapt_movement_scale: bool = False,
    background_motion: bool = False,
    batch_size: int = 4,
    reference_frame: int = 0,
    progress: Progress | None = None,
) -> torch.Tensor:
    """source (1,3,S,S), driving (N,3,S,S) at model size in [0,1] -> frames (N,3,S,S) on the CPU."""
    if mode not in MODES:
        raise InputError(f"unknown MRFA mode {mode!r}; choose one of {', '.join(MODES)}")
    if background_motion and model.bg_predictor is None:
        raise InputError(
            f"background_motion needs a background motion predictor, and '{model.name}' has none "
            "(only celebvhq.pth has one); turn background_motion off."
        )
    n = driving.shape[0]
    if not 0 <= reference_frame < n:
        raise InputError(f"reference_frame {reference_frame} is outside the {n} driving frames.")
    with on_device(*model.modules()) as device:
        src = source.to(device)
        kp_source = model.encoder(src)
        parts = run_batched(
            lambda a, b: model.encoder(driving[a:b].to(device)), n, batch_size, what="MRFA keypoints"
        )
        kp_driving = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
        relative = mode == "relative"
        initial = {k: v[reference_frame : reference_frame + 1] for k, v in kp_driving.items()}
        scale = movement_scale(kp_source, initial) if relative and adapt_movement_scale else 1.0
        options = MotionOptions(relative, relative, adapt_movement_scale)
        kp_norm = normalize_kp(kp_source, kp_driving, initial, options, scale=scale)
        source_small = model.dense_motion.down(src) if model.dense_motion.scale_factor != 1 else src
        # the decoder's quarter-size source uses a fresh Gaussian blur, as upstream's demo does,
        # not the dense motion network's stored kernel (the two are equal in the released files)
        quarter = AntiAliasInterpolation2d(src.shape[1], 0.25).to(device=device, dtype=src.dtype).eval()(src)
        prepared = model.decoder.prepare_source(kp_source["value"], quarter, src)
        bg_from = driving[reference_frame : reference_frame + 1].to(device) if relative else src

        def render(a: int, b: int) -> torch.Tensor:
            kp = {k: v[a:b] for k, v in kp_norm.items()}
            bg = model.bg_predictor(bg_from, driving[a:b].to(device)) if background_motion else None
            motion = model.dense_motion(src, kp, kp_source, bg_param=bg, source_small=source_small)
            return model.decoder.render(kp["value"], motion, prepared).float().cpu()

        def tick(count: int) -> None:
            if progress is not None:
                progress.update(count)

        return torch.cat(run_batched(render, n, batch_size, on_batch=tick, what="MRFA animation"))



def animate(
    model: MRFAModel,
    source_image: torch.Tensor,
    driving_frames: torch.Tensor,
    mode: str = "relative",
    adapt_movement_scale: bool = False,
    background_motion: bool = False,
    fit: str = "crop",
    paste_back: bool = True,
    batch_size: int = 4,
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
    with Progress(fitted.driving.shape[0], "MRFA") as progress:
        frames = animate_tensors(
            model,
            fitted.source,
            fitted.driving,
            mode,
            adapt_movement_scale,
            background_motion,
            batch_size,
            fitted.reference_frame,
            progress,
        )
    return fitted.finish(frames, paste_back)
