"""DisCo end to end on ComfyUI-style tensors: condition → frames (latents) → images.

The node classes and the CLI call these functions; they hold the device handling (models moved in
for the work and offloaded after), batching and progress, while ``sampling`` holds the math.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ...models.disco import DiscoModel
from ..core.device import get_torch_device
from ..core.errors import InputError
from ..core.memory import on_device
from ..core.progress import Progress
from . import preprocess, sampling, windows


@dataclass
class DiscoCondition:
    """Reference tokens, unconditional tokens and background latent of one reference person."""

    tokens: torch.Tensor  # (1,257,D)
    uncond: torch.Tensor  # (1,257,D)
    background_latent: torch.Tensor  # raw VAE latent (1,4,h,w)
    size: int
    cfg_mode: str


def _check_image(image: torch.Tensor, name: str) -> None:
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[-1] != 3 or image.shape[0] < 1:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise InputError(f"{name} must be an IMAGE (B,H,W,3) with at least one image, got {shape}.")


def make_condition(
    model: DiscoModel,
    reference: torch.Tensor,
    reference_mask: torch.Tensor | None = None,
    background: torch.Tensor | None = None,
    background_mask: torch.Tensor | None = None,
    cfg_mode: str = "auto",
    size: int = 256,
    keep_loaded: bool = False,
) -> DiscoCondition:
    """Encode the person (CLIP tokens of the masked reference) and the background (VAE latent).

    Without ``background`` the reference frame itself with the person blanked out is used, as in
    DisCo's evaluation (fg and bg from the same frame). Without ``reference_mask`` the whole reference
    is treated as foreground (and the derived background is empty).
    """
    _check_image(reference, "reference")
    if size % 64 or size < 64:
        raise InputError(f"size must be a multiple of 64 (256 is the trained size), got {size}.")
    if cfg_mode == "auto":
        cfg_mode = sampling.default_guidance(model.name)[1]
    if cfg_mode not in sampling.CFG_MODES:
        raise InputError(f"cfg_mode must be 'auto' or one of {sampling.CFG_MODES}, got {cfg_mode!r}.")
    ref = reference[:1]
    ref_mask = None if reference_mask is None else reference_mask[:1]
    if background is None:
        background, background_mask = ref, ref_mask if ref_mask is not None else torch.ones(ref.shape[:3])
    else:
        _check_image(background, "background")
        background = background[:1]
        background_mask = None if background_mask is None else background_mask[:1]
    clip_pixels = preprocess.reference_pixels(ref, ref_mask)
    bg_pixels = preprocess.background_pixels(background, background_mask, size)
    device = get_torch_device()
    with on_device(model.clip, model.refer_clip_proj, model.vae, device=device, keep_loaded=keep_loaded):
        tokens, uncond = sampling.encode_reference(model, clip_pixels.to(device), cfg_mode)
        latent = sampling.encode_background(model, bg_pixels.to(device))
    return DiscoCondition(tokens.cpu(), uncond.cpu(), latent.float().cpu(), size, cfg_mode)


def generate(
    model: DiscoModel,
    condition: DiscoCondition,
    poses: torch.Tensor,
    settings: sampling.SamplerSettings,
    keep_loaded: bool = False,
    quiet: bool = False,
    previews: bool = True,
) -> torch.Tensor:
    """One frame per pose IMAGE (F,H,W,3) → raw latents (F,4,size/8,size/8).

    Progress advances per network evaluation (DDIM step × frame batch, or × window for the temporal
    model); ComfyUI shows a latent preview of the first frame and can interrupt between steps.
    """
    _check_image(poses, "poses")
    if settings.guidance <= 0:  # 0 = the authors' value for this checkpoint
        settings = replace(settings, guidance=sampling.default_guidance(model.name)[0])
    pose_pixels = preprocess.pose_pixels(poses, condition.size)
    frames = pose_pixels.shape[0]
    if model.temporal:
        calls = len(windows.window_starts(frames, settings.window, settings.overlap))
    else:
        calls = (frames + settings.batch_size - 1) // max(1, settings.batch_size)
    nets = (model.unet, model.pose_controlnet, model.background_controlnet)
    with Progress(settings.steps * calls, desc="DisCo sampling", quiet=quiet) as progress:
        reported = [0]

        def on_step(done: int, total: int, x0: torch.Tensor) -> None:
            progress.update(done - reported[0], preview=sampling.latent_preview(x0[0]) if previews else None)
            reported[0] = done

        with on_device(*nets, device=get_torch_device(), keep_loaded=keep_loaded):
            return sampling.sample(
                model,
                condition.tokens,
                condition.uncond,
                pose_pixels,
                condition.background_latent,
                settings,
                callback=on_step,
            )


def decode(
    model: DiscoModel, latents: torch.Tensor, batch_size: int = 8, keep_loaded: bool = False
) -> torch.Tensor:
    """Raw latents (F,4,h,w) → IMAGE (F,H,W,3) in [0,1], ``batch_size`` frames per VAE call."""
    if not isinstance(latents, torch.Tensor) or latents.ndim != 4 or latents.shape[1] != 4:
        shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
        raise InputError(f"LATENT samples must be (F,4,h,w) SD latents, got {shape}.")
    out = []
    with on_device(model.vae, device=get_torch_device(), keep_loaded=keep_loaded):
        for start in range(0, latents.shape[0], max(1, batch_size)):
            image = sampling.decode_latents(model, latents[start : start + batch_size])
            out.append(image.permute(0, 2, 3, 1).cpu())
    return torch.cat(out)
