"""FSRT animation: render every driving frame from the latent of one or more source images.

The algorithm box (upstream ``demo.py:make_animation``, batched):
1. bring the source images and driving frames to the model's square size (crop / face crop / pad);
2. keypoints + expression vector of every source image; encode all sources once into the latent z
   and project z to the decoder's keys/values once;
3. keypoints + expression of every driving frame (in batches); relative mode moves the first
   source's keypoints by the driving motion since the reference frame (optionally rescaled by the
   keypoint hull sizes), absolute mode uses the driving keypoints as they are;
4. every (frame, pixel) pair is one independent query ray; the rays of all frames are decoded in
   chunks of ``max_num_pixels`` (this bounds memory: attention, MLP activations), clamped to [0, 1];
5. optionally paste the animated square back into the full-size first source image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.spatial import ConvexHull

from ..core import images
from ..core.errors import InputError
from ..core.memory import on_device, run_batched
from ..core.progress import Progress
from ..fomm import faces
from .model import FSRTModel

FITS = ("crop", "face", "pad", "stretch")


def pixel_grid(size: int, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
               ) -> torch.Tensor:
    """(size, size, 2) pixel-centre coordinates (x = column, y = row) in (-1, 1): (i + 0.5 - s/2) / (s/2)."""
    c = (torch.arange(size, dtype=dtype, device=device) + 0.5 - size / 2) / (size / 2)
    return torch.stack([c.view(1, size).expand(size, size), c.view(size, 1).expand(size, size)], dim=-1)


def hull_area(kp: torch.Tensor) -> float:
    """Area of the convex hull of one keypoint set (K, 2)."""
    return float(ConvexHull(kp.detach().double().cpu().numpy()).volume)


def transfer_keypoints(kp_source: torch.Tensor, kp_driving: torch.Tensor, kp_reference: torch.Tensor,
                       relative: bool, adapt_scale: bool) -> torch.Tensor:
    """Driving keypoints (N, K, 2) expressed for the source.

    Relative: the first source's keypoints plus the driving displacement since the reference frame,
    times sqrt(hull area source / hull area reference) when ``adapt_scale``. Absolute: unchanged.
    """
    if not relative:
        return kp_driving
    scale = 1.0
    if adapt_scale:
        scale = float(np.sqrt(hull_area(kp_source[0])) / np.sqrt(hull_area(kp_reference[0])))
    return (kp_driving - kp_reference) * scale + kp_source[:1]


def detect(model: FSRTModel, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (B, K, 2) and expression vectors (B, E) of frames (B, 3, S, S)."""
    kp, features, heatmap = model.kp_detector(frames)
    return kp, model.expression_encoder(features, heatmap)


@torch.no_grad()
def animate_tensors(
    model: FSRTModel,
    sources: torch.Tensor,
    driving: torch.Tensor,
    relative: bool = False,
    adapt_scale: bool = False,
    max_num_pixels: int = 65536,
    batch_size: int = 8,
    reference_frame: int = 0,
    progress: Callable[[int], None] | None = None,
    device: torch.device | None = None,
    keep_loaded: bool = False,
) -> torch.Tensor:
    """sources (S,3,R,R), driving (N,3,R,R) in [0,1] at model size -> frames (N,3,R,R) on the CPU.

    ``max_num_pixels`` is the number of query rays decoded at once (across frames); ``progress``
    is called with the number of rays done after every chunk.
    """
    n, size = driving.shape[0], driving.shape[-1]
    if not 0 <= reference_frame < n:
        raise InputError(f"reference_frame {reference_frame} is outside the {n} driving frames.")
    if max_num_pixels < 1 or batch_size < 1:
        raise InputError(f"max_num_pixels and batch_size must be at least 1; got {max_num_pixels}, "
                         f"{batch_size}.")
    with on_device(*model.modules(), device=device, keep_loaded=keep_loaded) as dev:
        dtype = next(model.decoder.parameters()).dtype
        src = sources.to(dev, torch.float32)
        kp_src, expr_src = detect(model, src)
        grid = pixel_grid(size, torch.float32, dev)
        z = model.encoder(src.to(dtype), kp_src, grid, expr_src)
        decoder = model.decoder
        kvs = decoder.latent_keys_values(z)
        pix_enc = decoder.encode_pixels(grid.reshape(-1, 2))
        found = run_batched(lambda a, b: detect(model, driving[a:b].to(dev, torch.float32)), n, batch_size,
                            what="FSRT keypoints")
        kp_drv = torch.cat([k for k, _ in found])
        expr_drv = torch.cat([e for _, e in found])
        kp_norm = transfer_keypoints(kp_src, kp_drv, kp_drv[reference_frame:reference_frame + 1],
                                     relative, adapt_scale)
        kp_enc = decoder.encode_keypoints(kp_norm)
        rays = size * size

        def render(a: int, b: int) -> torch.Tensor:
            idx = torch.arange(a, b, device=dev)
            frame, pixel = idx // rays, idx % rays
            queries = decoder.queries(kp_enc[frame], pix_enc[pixel], expr_drv[frame]).to(dtype)
            return decoder(queries[None], kvs=kvs)[0].float().cpu()

        colours = torch.cat(run_batched(render, n * rays, max_num_pixels, on_batch=progress,
                                        what="FSRT rendering"))
    frames = colours.view(n, size, size, 3).permute(0, 3, 1, 2)
    return frames.clamp(0, 1).contiguous()


def _box(x: torch.Tensor, fit: str, detector, what: str) -> images.CropBox:
    h, w = x.shape[-2:]
    if fit == "pad":
        return images.pad_box(h, w)
    if fit == "face":
        center, side = faces.face_center_and_side(detector, x[0], what)
        return images.square_box(h, w, center=center, side=side)
    return images.square_box(h, w)


def _in_slices(frames: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], step: int = 16
               ) -> torch.Tensor:
    """``fn`` over IMAGE slices converted to BCHW one at a time, so a long full-resolution video is
    never copied whole (only its model-size squares are kept)."""
    return torch.cat([fn(images.to_bchw(frames[i:i + step], "driving_frames"))
                      for i in range(0, frames.shape[0], step)])


def animate(
    model: FSRTModel,
    source_images: torch.Tensor,
    driving_frames: torch.Tensor,
    relative: bool = False,
    adapt_scale: bool = False,
    fit: str = "crop",
    paste_back: bool = True,
    max_num_pixels: int = 65536,
    batch_size: int = 8,
    reference_frame: int = 0,
    find_best_frame: bool = False,
    landmark_detector=None,
    max_sources: int = 8,
    keep_loaded: bool = False,
) -> torch.Tensor:
    """ComfyUI IMAGEs in and out: every source image (the batch, up to ``max_sources``) conditions the
    rendering of every driving frame; output frames follow the driving frames.

    ``fit`` brings the inputs to the model's square ("crop": centre square, "face": square around
    each face, "pad": whole frame padded, "stretch": squashed as the seed pack did); with
    ``paste_back`` the result is pasted into the full-size first source image (not for stretch).
    ``find_best_frame`` replaces ``reference_frame`` by the driving frame whose face pose is closest
    to the first source's (needs face-alignment, or a ``landmark_detector`` with its API).
    """
    if fit not in FITS:
        raise InputError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}")
    src = images.to_bchw(source_images, "source_images")
    drv = images.to_bchw(driving_frames[:1], "driving_frames")  # checked here, converted in slices
    if src.shape[0] > max_sources:
        raise InputError(f"{src.shape[0]} source images given; at most {max_sources} are used at once "
                         "(the released models were trained with 1 or 2). Pick fewer with an image batch "
                         "node.")
    size = model.config.image_size
    if (fit == "face" or find_best_frame) and landmark_detector is None:
        landmark_detector = faces.landmark_detector("cpu")
    if fit == "stretch":
        src_box = None
        src_in = images.resize(src, (size, size))
        drv_in = _in_slices(driving_frames, lambda x: images.resize(x, (size, size)))
    else:
        boxes = [_box(src[i:i + 1], fit, landmark_detector, f"source image {i}") for i in range(src.shape[0])]
        src_box = boxes[0]
        src_in = torch.cat([images.crop_resize(src[i:i + 1], b, size) for i, b in enumerate(boxes)])
        drv_box = _box(drv[:1], fit, landmark_detector, "first driving frame")
        drv_in = _in_slices(driving_frames, lambda x: images.crop_resize(x, drv_box, size))
    if find_best_frame:
        reference_frame = faces.best_frame(landmark_detector, src_in[:1], lambda i: drv_in[i],
                                           drv_in.shape[0])
    rays = drv_in.shape[0] * size * size
    with Progress(rays, "FSRT") as progress:
        frames = animate_tensors(model, src_in, drv_in, relative, adapt_scale, max_num_pixels, batch_size,
                                 reference_frame, progress.update, keep_loaded=keep_loaded)
    if paste_back and src_box is not None:
        frames = images.paste_back(frames, src[:1], src_box)
    return images.to_bhwc(frames)
