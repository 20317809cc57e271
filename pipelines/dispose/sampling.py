"""DisPose denoising loop: Euler (v-prediction, Karras sigmas) over overlapping frame tiles.

Frame 0 of every video is the reference frame (its pose is the reference pose). Every tile is frame 0
plus ``tile - 1`` consecutive frames; tiles advance by ``tile - overlap`` and the last one is
aligned to the end. Each tile's prediction is blended with a triangular weight
``min((k+0.5)*2/T, 2-(k+0.5)*2/T)`` and the sum is divided by the summed weights (frame 0 gets
``1/T`` from every tile). Classifier-free guidance varies linearly per frame from ``min_guidance``
(frame 0) to ``max_guidance`` (last frame); the unconditional branch has zero CLIP embedding, zero
reference latent and zero pose latents but the same motion fields and keypoint features. Guidance
is off (one pass, no unconditional branch) when ``max_guidance <= 1``.

Start noise has period ``tile`` along the frames (one (1,T,4,h,w) draw, repeated), as upstream.
Latents are in the denoiser's scaled space internally; :func:`sample` returns raw VAE latents
(divided by 0.18215), which is ComfyUI's LATENT convention for SVD.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import EulerDiscreteScheduler

from ..core.errors import InputError
from ..core.fp8 import compute_dtype

VAE_SCALING = 0.18215


@dataclass
class Guidance:
    """Everything the denoiser is conditioned on besides the noise (one video, batch 1).

    ``image_embeds`` (1,1,D) CLIP image embedding of the reference; ``image_latent`` (1,4,h,w) VAE
    mode of the (noise-augmented) reference, unscaled; ``pose_latents`` (F,C,h,w) PoseNet output for
    all F frames; ``controlnet_flow``/``traj_flow`` (1,F-1,2,H,W); ``point_list`` F DWPose ``bodies``
    dicts; ``ref_point_emb`` (1,18,E) reference keypoint features.
    """

    image_embeds: torch.Tensor
    image_latent: torch.Tensor
    pose_latents: torch.Tensor
    controlnet_flow: torch.Tensor
    traj_flow: torch.Tensor
    point_list: Sequence[Mapping[str, np.ndarray]]
    ref_point_emb: torch.Tensor


@dataclass
class SamplerSettings:
    steps: int = 25
    min_guidance: float = 2.0
    max_guidance: float = 2.0
    tile: int = 16
    overlap: int = 6
    fps: int = 7
    motion_bucket_id: int = 127
    noise_aug_strength: float = 0.0
    controlnet_scale: float = 1.0
    seed: int = 42
    cfg_batched: bool = True


def tile_indices(num_frames: int, tile: int, overlap: int) -> list[list[int]]:
    """Frame indices of each tile; a video shorter than a tile is one tile of all frames."""
    if tile < 2:
        raise InputError(f"tile size {tile} is too small; use at least 2 (16 is the default).")
    if not 0 <= overlap < tile - 1:
        raise InputError(f"tile overlap {overlap} must be between 0 and tile size - 2 ({tile - 2}).")
    if num_frames <= tile:
        return [list(range(num_frames))]
    stride = tile - overlap
    tiles = [[0, *range(i + 1, min(i + tile, num_frames))] for i in range(0, num_frames - tile + 1, stride)]
    if tiles[-1][-1] < num_frames - 1:
        tiles.append([0, *range(num_frames - tile + 1, num_frames)])
    return tiles


def tile_weights(n: int) -> torch.Tensor:
    """Triangular blending weights of an n-frame tile (position 0 is the reference frame)."""
    ramp = (torch.arange(n, dtype=torch.float64) + 0.5) * 2.0 / n
    return torch.minimum(ramp, 2.0 - ramp)


def make_scheduler(config: Mapping) -> EulerDiscreteScheduler:
    """Euler scheduler from the SVD folder's ``scheduler_config.json``."""
    return EulerDiscreteScheduler.from_config({k: v for k, v in config.items() if not k.startswith("_")})


def initial_noise(
    frames: int,
    tile: int,
    latent_hw: tuple[int, int],
    seed: int,
    noise_aug_shape: tuple[int, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(1,F,4,h,w) periodic start noise (unit variance) and the reference-augmentation noise.

    Draw order as upstream (CPU generator): augmentation noise first, then one tile of latents.
    """
    gen = torch.Generator().manual_seed(int(seed))
    aug = torch.randn(noise_aug_shape, generator=gen) if noise_aug_shape is not None else None
    one_tile = torch.randn(1, tile, 4, *latent_hw, generator=gen)
    return one_tile.repeat(1, frames // tile + 1, 1, 1, 1)[:, :frames], aug


def _denoise_tile(unet, controlnet, x, t, ctx, ids, lat, pose, flow, traj, points, emb, scale):
    down, mid = controlnet(
        torch.cat([x, lat], dim=2), t, ctx, ids, flow, traj, points, emb, conditioning_scale=scale
    )
    return unet(
        torch.cat([x, lat], dim=2),
        t,
        ctx,
        ids,
        pose_latents=pose,
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
        return_dict=False,
    )[0]


@torch.no_grad()
def sample(
    unet: torch.nn.Module,
    controlnet: torch.nn.Module,
    scheduler_config: Mapping,
    guidance: Guidance,
    settings: SamplerSettings,
    noise: torch.Tensor | None = None,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Denoise all frames; returns raw VAE latents (1,F,4,h,w) in fp32 on the CPU.

    ``noise``: unit-variance start noise (1,F,4,h,w), else drawn from ``settings.seed``.
    ``callback(done, total, latents)`` runs after every tile pass (progress, previews, interrupt).
    """
    frames = guidance.pose_latents.shape[0]
    if frames < 2:
        raise InputError("DisPose needs the reference frame and at least one driving frame (2 frames).")
    h, w = guidance.image_latent.shape[-2:]
    device, dtype = unet.device, compute_dtype(unet)
    tiles = tile_indices(frames, settings.tile, settings.overlap)
    if noise is None:
        noise, _ = initial_noise(frames, settings.tile, (h, w), settings.seed)
    scheduler = make_scheduler(scheduler_config)
    scheduler.set_timesteps(settings.steps, device=device)
    latents = noise.to(device, torch.float32) * scheduler.init_noise_sigma

    do_cfg = settings.max_guidance > 1.0
    cast = {"device": device, "dtype": dtype}
    ids = torch.tensor([[settings.fps - 1, settings.motion_bucket_id, settings.noise_aug_strength]], **cast)
    branches = [
        (
            guidance.image_embeds.to(**cast),
            guidance.image_latent.to(**cast)[:, None].expand(1, frames, -1, -1, -1),
            guidance.pose_latents.to(**cast),
        )
    ]
    if do_cfg:
        branches.insert(0, tuple(torch.zeros_like(b) for b in branches[0]))  # uncond first
    flow, traj = guidance.controlnet_flow.to(**cast), guidance.traj_flow.to(**cast)
    emb = guidance.ref_point_emb.to(**cast)
    scale = torch.linspace(settings.min_guidance, settings.max_guidance, frames, dtype=torch.float32)
    scale = scale.to(device).view(1, frames, 1, 1, 1)
    total, done = len(scheduler.timesteps) * len(tiles), 0

    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(latents, t).to(dtype)
        preds = torch.zeros(len(branches), frames, 4, h, w, device=device, dtype=torch.float32)
        counts = torch.zeros(frames, device=device, dtype=torch.float32)
        for idx in tiles:
            weight = tile_weights(len(idx)).to(device, torch.float32).view(1, -1, 1, 1, 1)
            fidx = [i - 1 for i in idx[1:]]
            points = [guidance.point_list[i] for i in idx]
            per_branch = []
            groups = [branches] if settings.cfg_batched else [[b] for b in branches]
            for group in groups:
                n = len(group)
                v = _denoise_tile(
                    unet,
                    controlnet,
                    x_in[:, idx].expand(n, -1, -1, -1, -1),
                    t,
                    torch.cat([g[0] for g in group]),
                    ids.expand(n, -1),
                    torch.cat([g[1][:, idx] for g in group]),
                    torch.cat([g[2][idx] for g in group]),
                    flow[:, fidx].expand(n, -1, -1, -1, -1),
                    traj[:, fidx].expand(n, -1, -1, -1, -1),
                    points,
                    emb,
                    settings.controlnet_scale,
                )
                per_branch.append(v.float())
            preds[:, idx] += torch.cat(per_branch) * weight
            counts[idx] += weight.view(-1)
            done += 1
            if callback is not None:
                callback(done, total, latents[0] / VAE_SCALING)
        v = preds / counts.view(1, -1, 1, 1, 1)
        v = v[:1] + scale * (v[1:] - v[:1]) if do_cfg else v
        latents = scheduler.step(v, t, latents, return_dict=False)[0]
    return (latents / VAE_SCALING).cpu()
