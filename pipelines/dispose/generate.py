"""DisPose end to end: reference fitting, pose/motion conditioning (cached), sampling, chunked decoding.

Frame 0 is always the reference (its own pose); the driving frames follow. ``encode_motion`` gives
everything that depends only on the inputs and CMP, so re-running the sampler with other settings
reuses it (a small in-memory cache keyed by the inputs).
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.device import get_torch_device
from ..core.errors import InputError
from ..core.memory import on_device
from . import pose as pose_mod
from . import retarget as retarget_mod
from .drawing import move_extras
from .loading import DisPoseModel
from .motion import dense_flow, reference_point_embedding, trajectory_field
from .sampling import Guidance, SamplerSettings, initial_noise, sample

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
FIT_MODES = ("crop", "pad")
RETARGET_MODES = retarget_mod.MODES


@dataclass
class MotionConditioning:
    """Inputs of the sampler that depend on the reference, the poses and CMP only."""

    reference: torch.Tensor  # (1,3,H,W) in [0,1], fitted
    pose_pixels: torch.Tensor  # (F,3,H,W) in [-1,1], frame 0 = reference pose
    point_list: list[dict]
    controlnet_flow: torch.Tensor  # (1,F-1,2,H,W)
    traj_flow: torch.Tensor  # (1,F-1,2,H,W)
    ref_point_emb: torch.Tensor  # (1,18,E)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.reference.shape[-2:])


def fit_transform(src_hw: tuple[int, int], dst_hw: tuple[int, int], mode: str) -> tuple[float, float, float]:
    """(scale, x offset, y offset) from source to target pixels: cover ('crop') or contain ('pad')."""
    (sh, sw), (dh, dw) = src_hw, dst_hw
    scale = max(dh / sh, dw / sw) if mode == "crop" else min(dh / sh, dw / sw)
    return scale, (dw - sw * scale) / 2, (dh - sh * scale) / 2


def fit_image(image: torch.Tensor, dst_hw: tuple[int, int], mode: str) -> torch.Tensor:
    """IMAGE (1,H,W,3) -> (1,3,h,w) in [0,1], centred crop or pad (black) to the target size."""
    if mode not in FIT_MODES:
        raise InputError(f"fit must be one of {FIT_MODES}, got '{mode}'.")
    src = image[:1].permute(0, 3, 1, 2).float()
    scale, ox, oy = fit_transform(tuple(src.shape[-2:]), dst_hw, mode)
    nh, nw = max(1, round(src.shape[2] * scale)), max(1, round(src.shape[3] * scale))
    resized = F.interpolate(src, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    out = torch.zeros(1, 3, *dst_hw)
    x0, y0 = round(ox), round(oy)
    sx, sy = max(0, -x0), max(0, -y0)
    dx, dy = max(0, x0), max(0, y0)
    w, h = min(nw - sx, dst_hw[1] - dx), min(nh - sy, dst_hw[0] - dy)
    out[:, :, dy : dy + h, dx : dx + w] = resized[:, :, sy : sy + h, sx : sx + w]
    return out.clamp(0, 1)


def _move_bodies(bodies: dict, src_hw: tuple[int, int], dst_hw: tuple[int, int], mode: str) -> dict:
    scale, ox, oy = fit_transform(src_hw, dst_hw, mode)
    cand = bodies["candidate"].copy()
    ok = cand.min(axis=1) >= 0
    cand[ok, 0] = (cand[ok, 0] * src_hw[1] * scale + ox) / dst_hw[1]
    cand[ok, 1] = (cand[ok, 1] * src_hw[0] * scale + oy) / dst_hw[0]
    sx, sy = src_hw[1] * scale / dst_hw[1], src_hw[0] * scale / dst_hw[0]
    return {**bodies, "candidate": cand, **move_extras(bodies, (sx, sy), (ox / dst_hw[1], oy / dst_hw[0]))}


def _empty_bodies() -> dict:
    return {"candidate": -np.ones((18, 2)), "subset": -np.ones((1, 18)), "score": np.zeros((1, 18))}


_CACHE: OrderedDict[str, MotionConditioning] = OrderedDict()
_CACHE_SIZE = 2


def _cache_key(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, torch.Tensor):
            h.update(p.detach().float().cpu().numpy().tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


def encode_motion(
    model: DisPoseModel,
    reference: torch.Tensor,
    reference_pose: Sequence[dict],
    driving_pose: Sequence[dict],
    height: int,
    width: int,
    fit: str = "crop",
    retarget: str = "global",
) -> MotionConditioning:
    """Poses, drawings, trajectory field and CMP flow for a reference IMAGE and POSE_KEYPOINT lists."""
    if height % 64 or width % 64 or height < 64 or width < 64:
        raise InputError(f"size {width}x{height} must be multiples of 64 (e.g. 576x1024).")
    if not reference_pose:
        raise InputError("reference_pose is empty; run a pose estimator (DWPose) on the reference image.")
    if len(driving_pose) < 1:
        raise InputError("driving_pose has no frames; at least one driving frame is needed.")
    if retarget not in RETARGET_MODES:
        raise InputError(f"retarget must be one of {RETARGET_MODES}, got '{retarget}'.")
    if model.cmp is None:
        raise InputError("the loaded model has no CMP network; pick ckpt_iter_42000.pth.tar in the loader.")
    key = _cache_key(
        reference, list(reference_pose[:1]), list(driving_pose), height, width, fit, retarget, id(model)
    )
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]

    ref_img = fit_image(reference, (height, width), fit)
    ref_bodies, n_ref, _ = pose_mod.bodies_from_pose_keypoint(reference_pose[0])
    if ref_bodies is None or n_ref == 0:
        raise InputError("no person found in the reference pose; use a clear full-body reference image.")
    ref_bodies = _move_bodies(ref_bodies, tuple(reference.shape[1:3]), (height, width), fit)
    frames, people, frame_hw = [], [], None
    for frame in driving_pose:
        bodies, n, hw = pose_mod.bodies_from_pose_keypoint(frame)
        frames.append(bodies if bodies is not None else _empty_bodies())
        people.append(n)
        frame_hw = frame_hw or hw
    if not frame_hw or not all(frame_hw):
        frame_hw = (height, width)
    driving = retarget_mod.retarget_poses(ref_bodies, frames, people, frame_hw, (height, width), retarget)
    point_list = [ref_bodies, *driving]
    drawings = np.stack([pose_mod.draw_body(b, height, width) for b in point_list])
    pose_pixels = torch.from_numpy(drawings).permute(0, 3, 1, 2).float() / 127.5 - 1
    traj = trajectory_field(point_list, height, width)
    with on_device(model.cmp, dtype=torch.float32):
        flow = dense_flow(model.cmp, ref_img, point_list)
    if model.dift is not None:
        with on_device(*model.dift.modules):
            feats = model.dift(ref_img * 2 - 1)
        ref_emb = reference_point_embedding(feats, ref_bodies, height, width)
    else:  # no SD-1.5 folder: keypoint positions only (weaker identity transfer)
        ref_emb = torch.zeros(1, 18, model.controlnet.point_adapter.embedding_channels)
    cond = MotionConditioning(ref_img, pose_pixels, point_list, flow, traj, ref_emb)
    _CACHE[key] = cond
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return cond


@torch.no_grad()
def clip_embedding(model: DisPoseModel, reference01: torch.Tensor) -> torch.Tensor:
    """(1,1,D) CLIP image embedding of the reference (224 px, antialiased, CLIP normalisation)."""
    x = F.interpolate(
        reference01.float(), size=(224, 224), mode="bicubic", align_corners=True, antialias=True
    )
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    x = ((x.clamp(0, 1) - mean) / std).to(model.image_encoder.device, model.image_encoder.dtype)
    return model.image_encoder(pixel_values=x).image_embeds[:, None].float().cpu()


@torch.no_grad()
def generate_latents(
    model: DisPoseModel,
    cond: MotionConditioning,
    settings: SamplerSettings,
    include_reference: bool = False,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
    keep_loaded: bool = False,
) -> torch.Tensor:
    """Raw SVD latents (F,4,h,w) of the generated frames (without frame 0 unless asked)."""
    height, width = cond.size
    frames = cond.pose_pixels.shape[0]
    noise, aug = initial_noise(
        frames, settings.tile, (height // 8, width // 8), settings.seed, (1, 3, height, width)
    )
    device = get_torch_device()
    with on_device(model.image_encoder, model.vae, device=device, keep_loaded=keep_loaded):
        embeds = clip_embedding(model, cond.reference)
        image = cond.reference * 2 - 1 + settings.noise_aug_strength * aug
        latent = model.vae.encode(image.to(device, model.vae.dtype)).latent_dist.mode().float().cpu()
    with on_device(model.pose_net, model.unet, model.controlnet, device=device, keep_loaded=keep_loaded):
        pose_latents = model.pose_net(cond.pose_pixels.to(device, model.pose_net.final_proj.weight.dtype))
        guidance = Guidance(
            embeds,
            latent,
            pose_latents,
            cond.controlnet_flow,
            cond.traj_flow,
            cond.point_list,
            cond.ref_point_emb,
        )
        latents = sample(
            model.unet, model.controlnet, model.scheduler_config, guidance, settings, noise, callback
        )
    latents = latents[0]
    return latents if include_reference else latents[1:]


@torch.no_grad()
def decode_latents(
    model: DisPoseModel, latents: torch.Tensor, chunk: int = 8, overlap: int = 2
) -> torch.Tensor:
    """Raw latents (F,4,h,w) -> IMAGE (F,H,W,3) in [0,1]; chunks overlap and are cross-faded linearly."""
    total = latents.shape[0]
    if total == 0:
        raise InputError("the latent has no frames to decode.")
    chunk = max(1, min(chunk, total))
    overlap = max(0, min(overlap, chunk - 1))
    device = get_torch_device()
    out = None
    weight = torch.zeros(total, 1, 1, 1)
    with on_device(model.vae, device=device):
        start = 0
        while True:
            stop = min(start + chunk, total)
            z = latents[start:stop].to(device, model.vae.dtype)
            frames = model.vae.decode(z, num_frames=stop - start).sample.float().cpu()
            if out is None:
                out = torch.zeros(total, *frames.shape[1:])
            ramp = torch.ones(stop - start)
            if start > 0 and overlap:
                ramp[:overlap] = torch.arange(1, overlap + 1) / (overlap + 1)
            if stop < total and overlap:
                ramp[-overlap:] = torch.minimum(ramp[-overlap:], torch.arange(overlap, 0, -1) / (overlap + 1))
            out[start:stop] += frames * ramp.view(-1, 1, 1, 1)
            weight[start:stop] += ramp.view(-1, 1, 1, 1)
            if stop == total:
                break
            start = stop - overlap
    return ((out / weight + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)
