"""DisCo sampling: CLIP reference tokens, background latent, two ControlNets, DDIM with CFG.

Algorithm (DisCo ``forward_sample_multicontrol``):

    tokens  = refer_clip_proj(post_layernorm(CLIP(reference)))          all 257 tokens
    uncond  = same of an all-zero normalised image  (``*_cfg`` checkpoints, guidance 1.5)
            | zeros_like(tokens)                     (``*_nocfg`` checkpoints, guidance 3)
    for t in DDIM timesteps:
        x_in = [x, x] when CFG else x;   emb = [uncond, tokens]
        pose residuals  = ControlNet_pose(x_in, t, emb, pose_image)      × pose scale
        bg residuals    = ControlNet_bg(x_in, t, emb, 0.18215·bg_latent) × background scale
        ε = UNet(x_in, t, emb, residuals summed);  ε = ε_u + g (ε_c − ε_u)
        x = DDIM step (eta 0, no clipping)

The temporal model runs the same loop on windows of ``settings.window`` frames (16 in training),
with its temporal layers told the window length; see ``windows.py`` for how windows are placed and
blended.

Latents returned here follow ComfyUI's convention: raw VAE latents, i.e. divided by 0.18215.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler

from ...models.disco import DiscoModel
from ...models.disco.disco_model import VAE_SCALING
from ..core.errors import InputError
from . import windows

CFG_MODES = ("zero_image", "zero_embedding")


def default_guidance(checkpoint_name: str) -> tuple[float, str]:
    """Guidance and unconditional mode the authors used for a checkpoint name."""
    if "nocfg" in checkpoint_name.lower():
        return 3.0, "zero_embedding"
    return 1.5, "zero_image"


@torch.no_grad()
def clip_tokens(model: DiscoModel, pixels: torch.Tensor) -> torch.Tensor:
    """All 257 post-layernorm CLIP tokens projected by ``refer_clip_proj`` → (B,257,cross_dim)."""
    clip = model.clip
    hidden = clip(pixels.to(clip.device, clip.dtype)).last_hidden_state
    hidden = clip.vision_model.post_layernorm(hidden)
    proj = model.refer_clip_proj
    return proj(hidden.to(proj.weight.dtype))


@torch.no_grad()
def encode_reference(model: DiscoModel, pixels: torch.Tensor, cfg_mode: str = "zero_image"):
    """Conditional and unconditional tokens for a reference batch (B,3,224,224, CLIP-normalised)."""
    if cfg_mode not in CFG_MODES:
        raise InputError(f"cfg_mode must be one of {CFG_MODES}, got {cfg_mode!r}")
    cond = clip_tokens(model, pixels)
    uncond = (
        clip_tokens(model, torch.zeros_like(pixels)) if cfg_mode == "zero_image" else torch.zeros_like(cond)
    )
    return cond, uncond


@torch.no_grad()
def encode_background(model: DiscoModel, pixels: torch.Tensor, generator: torch.Generator | None = None):
    """Raw VAE latent of the background (B,3,H,W in [-1,1]); posterior mean unless a generator is given
    (upstream samples with the unseeded global RNG; the mean makes runs reproducible)."""
    vae = model.vae
    dist = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    if generator is None:
        return dist.mean
    noise = torch.randn(dist.mean.shape, generator=generator, dtype=torch.float32).to(dist.mean)
    return dist.mean + dist.std * noise


@torch.no_grad()
def decode_latents(model: DiscoModel, latents: torch.Tensor) -> torch.Tensor:
    """Raw latents (B,4,h,w) → images (B,3,H,W) in [0,1]."""
    vae = model.vae
    image = vae.decode(latents.to(vae.device, vae.dtype)).sample
    return (image.float() / 2 + 0.5).clamp(0, 1)


# Linear map from SD-1 latents to approximate RGB, for cheap per-step previews (ComfyUI's SD15 factors).
_LATENT_RGB = torch.tensor(
    [
        [0.3512, 0.2297, 0.3227],
        [0.3250, 0.4974, 0.2350],
        [-0.2829, 0.1762, 0.2721],
        [-0.2120, -0.2616, -0.7177],
    ]
)


def latent_preview(raw_latent: torch.Tensor) -> torch.Tensor:
    """Rough RGB (h,w,3) in [0,1] of one raw latent (4,h,w) without running the VAE."""
    scaled = raw_latent.detach().float().cpu() * VAE_SCALING
    rgb = torch.einsum("chw,cr->hwr", scaled, _LATENT_RGB)
    return ((rgb + 1) / 2).clamp(0, 1)


@dataclass
class SamplerSettings:
    steps: int = 50
    guidance: float = 1.5
    eta: float = 0.0
    pose_scale: float = 1.0
    background_scale: float = 1.0
    seed: int = 42
    batch_size: int = 8  # image model: frames per UNet call
    window: int = 16  # temporal model: frames per window (clip length of the temporal layers)
    overlap: int = 0  # temporal model: frames shared by neighbouring windows (0 = upstream)


def make_scheduler(model: DiscoModel) -> DDIMScheduler:
    """DDIM from the base folder's scheduler config, with ``clip_sample`` off as DisCo forces."""
    config = {k: v for k, v in model.scheduler_config.items() if not k.startswith("_")}
    config.update(clip_sample=False)
    config.setdefault("steps_offset", 1)
    return DDIMScheduler.from_config(config)


@torch.no_grad()
def predict_noise(
    model: DiscoModel,
    x: torch.Tensor,
    t: torch.Tensor,
    tokens: torch.Tensor,
    uncond: torch.Tensor | None,
    pose: torch.Tensor,
    background: torch.Tensor,
    settings: SamplerSettings,
    return_residuals: bool = False,
):
    """One guided ε prediction. ``background`` is the *scaled* latent (×0.18215) the ControlNet sees."""
    do_cfg = uncond is not None and settings.guidance > 1.0
    if do_cfg:
        x_in, emb = torch.cat([x, x]), torch.cat([uncond, tokens])
        pose, background = torch.cat([pose, pose]), torch.cat([background, background])
    else:
        x_in, emb = x, tokens
    down_p, mid_p = model.pose_controlnet(
        x_in,
        t,
        encoder_hidden_states=emb,
        controlnet_cond=pose,
        conditioning_scale=settings.pose_scale,
        return_dict=False,
    )
    down_b, mid_b = model.background_controlnet(
        x_in,
        t,
        encoder_hidden_states=emb,
        controlnet_cond=background,
        conditioning_scale=settings.background_scale,
        return_dict=False,
    )
    down = [a + b for a, b in zip(down_p, down_b, strict=True)]
    eps = model.unet(
        x_in,
        t,
        encoder_hidden_states=emb,
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid_p + mid_b,
    ).sample
    if do_cfg:
        eps_u, eps_c = eps.chunk(2)
        eps = eps_u + settings.guidance * (eps_c - eps_u)
    if return_residuals:
        return eps, (down_p, mid_p, down_b, mid_b)
    return eps


def initial_noise(
    frames: int, latent_hw: tuple[int, int], seed: int, same_for_all: bool = True
) -> torch.Tensor:
    """CPU-seeded start noise (device independent). Upstream re-seeds for every batch, so with its
    evaluation batch of one every frame starts from the same noise; ``same_for_all`` keeps that."""
    g = torch.Generator().manual_seed(seed)
    shape = (1 if same_for_all else frames, 4, *latent_hw)
    noise = torch.randn(shape, generator=g, dtype=torch.float32)
    return noise.expand(frames, -1, -1, -1).clone() if same_for_all else noise


def _check_inputs(poses: torch.Tensor, background_latent: torch.Tensor) -> tuple[int, int]:
    frames, _, height, width = poses.shape
    if frames == 0:
        raise InputError("no pose frames to sample; give at least one pose.")
    if height % 64 or width % 64:
        raise InputError(
            f"pose size {height}x{width} must be a multiple of 64 (256x256 is the trained size)."
        )
    h, w = height // 8, width // 8
    if tuple(background_latent.shape[-2:]) != (h, w):
        raise InputError(
            f"background latent is {tuple(background_latent.shape[-2:])}, expected {(h, w)} for "
            f"{height}x{width} poses; encode the background at the pose resolution."
        )
    return h, w


@torch.no_grad()
def sample(
    model: DiscoModel,
    tokens: torch.Tensor,
    uncond: torch.Tensor | None,
    poses: torch.Tensor,
    background_latent: torch.Tensor,
    settings: SamplerSettings,
    noise: torch.Tensor | None = None,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Generate one frame per pose. Returns raw (unscaled) latents (F,4,H/8,W/8) on the CPU, fp32.

    ``tokens``/``uncond``: (1,257,D) reference tokens; ``poses``: (F,3,H,W) in [0,1];
    ``background_latent``: raw latent (1,4,h,w); ``noise``: (F,4,h,w) start noise (else from seed).
    The image model processes ``settings.batch_size`` frames at a time, the temporal model windows of
    ``settings.window`` frames. ``callback(done, total, x0)`` after each step gives progress
    (``done`` of ``total`` network evaluations), previews (predicted clean raw latents) and a
    place to raise on interrupt.
    """
    if model.temporal:
        return _sample_temporal(model, tokens, uncond, poses, background_latent, settings, noise, callback)
    frames = poses.shape[0]
    h, w = _check_inputs(poses, background_latent)
    device, dtype = model.device, model.dtype
    if noise is None:
        noise = initial_noise(frames, (h, w), settings.seed)
    scheduler = make_scheduler(model)
    scheduler.set_timesteps(settings.steps)
    timesteps = scheduler.timesteps
    batch = max(1, int(settings.batch_size))
    total = len(timesteps) * ((frames + batch - 1) // batch)
    done = 0
    outputs = []
    for start in range(0, frames, batch):
        stop = min(frames, start + batch)
        n = stop - start
        x = noise[start:stop].to(device, torch.float32) * scheduler.init_noise_sigma
        cond = tokens.to(device, dtype).expand(n, -1, -1)
        unc = None if uncond is None else uncond.to(device, dtype).expand(n, -1, -1)
        pose = poses[start:stop].to(device, dtype)
        bg_batch = background_latent if background_latent.shape[0] == 1 else background_latent[start:stop]
        bg = (bg_batch.to(device, dtype) * VAE_SCALING).expand(n, -1, -1, -1)
        generator = torch.Generator().manual_seed(settings.seed)
        for t in timesteps:
            eps = predict_noise(model, x.to(dtype), t, cond, unc, pose, bg, settings).float()
            step = scheduler.step(eps, t, x, eta=settings.eta, generator=generator)
            x = step.prev_sample
            done += 1
            if callback is not None:
                callback(done, total, step.pred_original_sample / VAE_SCALING)
        outputs.append((x / VAE_SCALING).cpu())
    return torch.cat(outputs)


def _sample_temporal(
    model: DiscoModel,
    tokens: torch.Tensor,
    uncond: torch.Tensor | None,
    poses: torch.Tensor,
    background_latent: torch.Tensor,
    settings: SamplerSettings,
    noise: torch.Tensor | None,
    callback: Callable[[int, int, torch.Tensor], None] | None,
) -> torch.Tensor:
    """Temporal model: windows sampled one by one (overlap 0, as upstream) or blended every step."""
    frames = poses.shape[0]
    h, w = _check_inputs(poses, background_latent)
    if background_latent.shape[0] != 1:
        raise InputError("the temporal DisCo model takes one background latent for the whole video.")
    starts = windows.window_starts(frames, int(settings.window), int(settings.overlap))
    length = min(int(settings.window), frames)
    device, dtype = model.device, model.dtype
    if noise is None:
        noise = windows.temporal_noise(frames, int(settings.window), (h, w), settings.seed)
    scheduler = make_scheduler(model)
    scheduler.set_timesteps(settings.steps)
    timesteps = scheduler.timesteps
    total = len(timesteps) * len(starts)
    cond = tokens.to(device, dtype).expand(length, -1, -1)
    unc = None if uncond is None else uncond.to(device, dtype).expand(length, -1, -1)
    bg = (background_latent.to(device, dtype) * VAE_SCALING).expand(length, -1, -1, -1)
    model.set_num_frames(length)

    def window_eps(x_window: torch.Tensor, t: torch.Tensor, start: int) -> torch.Tensor:
        pose = poses[start : start + length].to(device, dtype)
        return predict_noise(model, x_window.to(dtype), t, cond, unc, pose, bg, settings).float()

    x = noise.to(device, torch.float32) * scheduler.init_noise_sigma
    generator = torch.Generator().manual_seed(settings.seed)
    done = 0
    if settings.overlap == 0:  # upstream: independent windows, a later window overwrites shared frames
        out = torch.empty_like(x)
        for start in starts:
            xw = x[start : start + length]
            for t in timesteps:
                step = scheduler.step(window_eps(xw, t, start), t, xw, eta=settings.eta, generator=generator)
                xw = step.prev_sample
                done += 1
                if callback is not None:
                    callback(done, total, step.pred_original_sample / VAE_SCALING)
            out[start : start + length] = xw
        return (out / VAE_SCALING).cpu()
    weights = [
        windows.blend_weights(length, settings.overlap, s == 0, s + length == frames).to(device)
        for s in starts
    ]
    for t in timesteps:
        eps_sum = torch.zeros_like(x)
        weight_sum = torch.zeros(frames, device=device)
        for start, weight in zip(starts, weights, strict=True):
            eps = window_eps(x[start : start + length], t, start)
            eps_sum[start : start + length] += eps * weight[:, None, None, None]
            weight_sum[start : start + length] += weight
            done += 1
        step = scheduler.step(
            eps_sum / weight_sum[:, None, None, None], t, x, eta=settings.eta, generator=generator
        )
        x = step.prev_sample
        if callback is not None:
            callback(done, total, step.pred_original_sample / VAE_SCALING)
    return (x / VAE_SCALING).cpu()
