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


@dataclass
class StepConditions:
    """Network inputs that stay fixed over all denoising steps of one batch of frames.

    ``context`` holds each distinct token set once (``[uncond; cond]`` with CFG): the
    cross-attentions share its keys/values over the batch and cache them over the steps, as long as
    the same tensor object is passed (see ``models/disco/attention.py``). The hint features are the
    ControlNets' condition encodings, which depend only on the pose image / background latent.
    """

    context: torch.Tensor
    pose_features: torch.Tensor
    background_features: torch.Tensor
    cfg: bool


def reference_context(
    tokens: torch.Tensor, uncond: torch.Tensor | None, settings: SamplerSettings
) -> tuple[torch.Tensor, bool]:
    """Cross-attention context and whether CFG runs: ``[uncond; tokens]`` (uncond half first)."""
    do_cfg = uncond is not None and settings.guidance > 1.0
    if not do_cfg:
        return tokens, False
    if uncond.shape[0] != tokens.shape[0]:
        rows = max(uncond.shape[0], tokens.shape[0])
        uncond, tokens = uncond.expand(rows, -1, -1), tokens.expand(rows, -1, -1)
    return torch.cat([uncond, tokens]), True


@torch.no_grad()
def prepare_conditions(
    model: DiscoModel, context: torch.Tensor, cfg: bool, pose: torch.Tensor, background: torch.Tensor
) -> StepConditions:
    """Encode the ControlNet hints once. ``background`` is the *scaled* latent (×0.18215), one row
    for all frames or one per frame; ``pose`` is (n,3,H,W) in [0,1]."""
    pose_features = model.pose_controlnet.controlnet_cond_embedding(pose)
    background_features = model.background_controlnet.controlnet_cond_embedding(background)
    if cfg:  # both CFG halves see the same hints
        pose_features = torch.cat([pose_features, pose_features])
        if background_features.shape[0] > 1:
            background_features = torch.cat([background_features, background_features])
    return StepConditions(context, pose_features, background_features, cfg)


def controlnet_residuals(
    net, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor, features: torch.Tensor, scale: float
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """A ControlNet pass (diffusers ``ControlNetModel.forward`` for SD-1 configs) on pre-encoded
    hint ``features``: time embedding, ``conv_in(x) + features``, down and mid blocks, zero convs."""
    t_emb = net.time_proj(t.reshape(-1)[:1].to(x.device).expand(x.shape[0])).to(x.dtype)
    emb = net.time_embedding(t_emb)
    h = net.conv_in(x) + features
    residuals = [h]
    for block in net.down_blocks:
        if getattr(block, "has_cross_attention", False):
            h, res = block(hidden_states=h, temb=emb, encoder_hidden_states=context)
        else:
            h, res = block(hidden_states=h, temb=emb)
        residuals.extend(res)
    h = net.mid_block(h, emb, encoder_hidden_states=context)
    down = [zero(r) for zero, r in zip(net.controlnet_down_blocks, residuals, strict=True)]
    mid = net.controlnet_mid_block(h)
    if scale != 1.0:
        for r in (*down, mid):
            r.mul_(scale)
    return down, mid


@torch.no_grad()
def guided_noise(
    model: DiscoModel,
    x: torch.Tensor,
    t: torch.Tensor,
    cond: StepConditions,
    settings: SamplerSettings,
    return_residuals: bool = False,
):
    """One guided ε prediction from prepared :class:`StepConditions`."""
    x_in = torch.cat([x, x]) if cond.cfg else x
    down_p, mid_p = controlnet_residuals(
        model.pose_controlnet, x_in, t, cond.context, cond.pose_features, settings.pose_scale
    )
    down_b, mid_b = controlnet_residuals(
        model.background_controlnet,
        x_in,
        t,
        cond.context,
        cond.background_features,
        settings.background_scale,
    )
    if return_residuals:  # keep the two sets apart for the caller
        down, mid = [a + b for a, b in zip(down_p, down_b, strict=True)], mid_p + mid_b
    else:  # sum in place: one set of residuals less in memory
        down, mid = [a.add_(b) for a, b in zip(down_p, down_b, strict=True)], mid_p.add_(mid_b)
        del down_b, mid_b
    eps = model.unet(
        x_in,
        t,
        encoder_hidden_states=cond.context,
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
    ).sample
    if cond.cfg:
        eps_u, eps_c = eps.chunk(2)
        eps = eps_u + settings.guidance * (eps_c - eps_u)
    if return_residuals:
        return eps, (down_p, mid_p, down_b, mid_b)
    return eps


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
    """One guided ε prediction. ``background`` is the *scaled* latent (×0.18215) the ControlNet sees.

    ``tokens``/``uncond`` may have one row for all frames or one per frame. For many steps, prepare
    the conditions once (:func:`prepare_conditions`) and call :func:`guided_noise`, as ``sample`` does.
    """
    context, cfg = reference_context(tokens, uncond, settings)
    cond = prepare_conditions(model, context, cfg, pose, background)
    try:
        return guided_noise(model, x, t, cond, settings, return_residuals)
    finally:
        model.release_caches()


def initial_noise(
    frames: int, latent_hw: tuple[int, int], seed: int, same_for_all: bool = True
) -> torch.Tensor:
    """CPU-seeded start noise (device independent). Upstream re-seeds for every batch, so with its
    evaluation batch of one every frame starts from the same noise; ``same_for_all`` keeps that."""
    g = torch.Generator().manual_seed(seed)
    shape = (1 if same_for_all else frames, 4, *latent_hw)
    noise = torch.randn(shape, generator=g, dtype=torch.float32)
    return noise.expand(frames, -1, -1, -1).clone() if same_for_all else noise


def _device_context(
    model: DiscoModel, tokens: torch.Tensor, uncond: torch.Tensor | None, settings: SamplerSettings
) -> tuple[torch.Tensor, bool]:
    """:func:`reference_context` on the model's device/dtype; one tensor for the whole run, so the
    cross-attentions' key/value cache holds for every step and batch."""
    device, dtype = model.device, model.dtype
    return reference_context(
        tokens.to(device, dtype), None if uncond is None else uncond.to(device, dtype), settings
    )


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
    context, cfg = _device_context(model, tokens, uncond, settings)
    try:
        for start in range(0, frames, batch):
            stop = min(frames, start + batch)
            x = noise[start:stop].to(device, torch.float32) * scheduler.init_noise_sigma
            pose = poses[start:stop].to(device, dtype)
            bg = background_latent if background_latent.shape[0] == 1 else background_latent[start:stop]
            cond = prepare_conditions(model, context, cfg, pose, bg.to(device, dtype) * VAE_SCALING)
            generator = torch.Generator().manual_seed(settings.seed)
            for t in timesteps:
                eps = guided_noise(model, x.to(dtype), t, cond, settings).float()
                step = scheduler.step(eps, t, x, eta=settings.eta, generator=generator)
                x = step.prev_sample
                done += 1
                if callback is not None:
                    callback(done, total, step.pred_original_sample / VAE_SCALING)
            outputs.append((x / VAE_SCALING).cpu())
    finally:
        model.release_caches()
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
    """Temporal model: windows sampled on their own (overlap 0, as upstream) or blended every step.

    ``settings.batch_size // window`` windows (at least one) share each network call.
    """
    frames = poses.shape[0]
    h, w = _check_inputs(poses, background_latent)
    if background_latent.shape[0] != 1:
        raise InputError("the temporal DisCo model takes one background latent for the whole video.")
    starts = windows.window_starts(frames, int(settings.window), int(settings.overlap))
    length = min(int(settings.window), frames)
    per_call = max(1, int(settings.batch_size) // length)
    groups = [starts[i : i + per_call] for i in range(0, len(starts), per_call)]
    device, dtype = model.device, model.dtype
    if noise is None:
        noise = windows.temporal_noise(frames, int(settings.window), (h, w), settings.seed)
    scheduler = make_scheduler(model)
    scheduler.set_timesteps(settings.steps)
    timesteps = scheduler.timesteps
    total = len(timesteps) * len(starts)
    model.set_num_frames(length)

    context, cfg = _device_context(model, tokens, uncond, settings)
    background = background_latent.to(device, dtype) * VAE_SCALING

    def group_conditions(group: list[int]) -> StepConditions:
        pose = torch.cat([poses[s : s + length] for s in group]).to(device, dtype)
        return prepare_conditions(model, context, cfg, pose, background)

    def group_eps(x_windows: torch.Tensor, t: torch.Tensor, cond: StepConditions) -> torch.Tensor:
        """ε of windows stacked along the batch axis (each ``length`` frames, in group order)."""
        return guided_noise(model, x_windows.to(dtype), t, cond, settings).float()

    def stack(x: torch.Tensor, group: list[int]) -> torch.Tensor:
        return torch.cat([x[s : s + length] for s in group])

    def independent_windows(x: torch.Tensor) -> torch.Tensor:
        """Upstream: each window group denoised on its own; a later window overwrites shared frames."""
        generator = torch.Generator().manual_seed(settings.seed)
        out, done = torch.empty_like(x), 0
        for group in groups:
            xw, cond = stack(x, group), group_conditions(group)
            for t in timesteps:
                step = scheduler.step(group_eps(xw, t, cond), t, xw, eta=settings.eta, generator=generator)
                xw = step.prev_sample
                done += len(group)
                if callback is not None:
                    callback(done, total, step.pred_original_sample / VAE_SCALING)
            for i, start in enumerate(group):
                out[start : start + length] = xw[i * length : (i + 1) * length]
        return out

    def blended_windows(x: torch.Tensor) -> torch.Tensor:
        """Overlapping windows: their ε are blended every step, so no seams appear."""
        generator = torch.Generator().manual_seed(settings.seed)
        weights = {
            s: windows.blend_weights(length, settings.overlap, s == 0, s + length == frames).to(device)
            for s in starts
        }
        done = 0
        for t in timesteps:
            eps_sum = torch.zeros_like(x)
            weight_sum = torch.zeros(frames, device=device)
            for group in groups:  # hints re-encoded per call: keeping them all would cost memory
                eps = group_eps(stack(x, group), t, group_conditions(group))
                for i, start in enumerate(group):
                    weight = weights[start]
                    eps_sum[start : start + length] += (
                        eps[i * length : (i + 1) * length] * weight[:, None, None, None]
                    )
                    weight_sum[start : start + length] += weight
                done += len(group)
            step = scheduler.step(
                eps_sum / weight_sum[:, None, None, None], t, x, eta=settings.eta, generator=generator
            )
            x = step.prev_sample
            if callback is not None:
                callback(done, total, step.pred_original_sample / VAE_SCALING)
        return x

    x = noise.to(device, torch.float32) * scheduler.init_noise_sigma
    try:
        out = independent_windows(x) if settings.overlap == 0 else blended_windows(x)
    finally:
        model.release_caches()
    return (out / VAE_SCALING).cpu()
