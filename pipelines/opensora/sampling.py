"""Rectified-flow sampling of Open-Sora 1.2 with classifier-free guidance and frame conditioning.

Algorithm (Open-Sora ``RFLOW.sample`` with ``use_timestep_transform``):

    t_i = (1 − i/N)·1000,  i = 0..N−1, each shifted towards the noise end:
        τ = t/1000,  r = sqrt(H·W / 512²) · sqrt(T′)   (T′ = frames//17·5, or 1 for an image)
        τ′ = r·τ / (1 + (r − 1)·τ)
    z ~ N(0, I)
    for each t_i:
        conditioning frames (mask m < 1, reference latents copied into z):
            frames with m·1000 < t_i stay clean and are modulated with timestep 0 (x_mask False);
            a frame with edit ratio m is noised once to level t_i when t_i first drops below m·1000
        v = v_u + g·(v_c − v_u)          v = model(z, t_i)[:4]  (predicts x0 − ε)
        z ← z + v·(t_i − t_{i+1})/1000   (Euler; t_N = 0); clean frames are restored afterwards

Noise is drawn on the CPU from one generator, so a seed gives the same video on every device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ..core.errors import InputError

NUM_TIMESTEPS = 1000


@dataclass
class RFSettings:
    steps: int = 30
    guidance: float = 7.0
    use_timestep_transform: bool = True


def shift_timesteps(
    t: torch.Tensor, height: float, width: float, num_frames: int, num_timesteps: int = NUM_TIMESTEPS
) -> torch.Tensor:
    """Open-Sora's resolution/length-dependent timestep shift (pixel height/width/frame count)."""
    tau = t / num_timesteps
    ratio_space = torch.sqrt(torch.tensor(height * width, dtype=torch.float32) / (512 * 512))
    latent_frames = 1 if num_frames == 1 else num_frames // 17 * 5
    ratio = ratio_space * torch.sqrt(torch.tensor(float(latent_frames)))
    return ratio * tau / (1 + (ratio - 1) * tau) * num_timesteps


def timesteps(
    steps: int, height: float, width: float, num_frames: int, transform: bool = True
) -> list[torch.Tensor]:
    """The N sampling timesteps (fp32 scalars, 1000 → small), shifted unless ``transform`` is off."""
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}.")
    out = []
    for i in range(steps):
        t = torch.tensor((1.0 - i / steps) * NUM_TIMESTEPS, dtype=torch.float32)
        out.append(shift_timesteps(t, height, width, num_frames) if transform else t)
    return out


def add_noise(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """x_t = (1 − t/1000)·x0 + (t/1000)·ε, with ``t`` of shape (B,)."""
    keep = (1 - t.float() / NUM_TIMESTEPS).view(-1, 1, 1, 1, 1)
    return keep * x0 + (1 - keep) * noise


@torch.no_grad()
def sample(
    model,
    noise: torch.Tensor,
    y: torch.Tensor,
    y_mask: torch.Tensor | None,
    y_uncond: torch.Tensor,
    y_uncond_mask: torch.Tensor | None = None,
    *,
    height: int,
    width: int,
    num_frames: int,
    fps: float = 24.0,
    settings: RFSettings | None = None,
    frame_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Denoise ``noise`` (B,C,T,h,w; reference latents already copied in where ``frame_mask`` < 1).

    ``y``/``y_mask``: prompt T5 features (B,L,D) and mask (B,L); ``y_uncond``: the unconditional
    features (the model's null caption or an encoded negative prompt); its mask defaults to the
    prompt's (upstream reuses the prompt mask for the null caption). ``frame_mask`` (B,T) in [0,1]:
    1 = generate, 0 = keep the reference frame, in between = edit ratio. ``callback(step, total,
    z)`` runs after every step (progress, previews, interrupt). Returns fp32 latents.
    """
    settings = settings or RFSettings()
    device, dtype = model.device, model.dtype
    z = noise.to(device, torch.float32)
    b = z.shape[0]
    ts = timesteps(settings.steps, height, width, num_frames, settings.use_timestep_transform)
    ts = [t.to(device).repeat(b) for t in ts]
    y_all = torch.cat([y, y_uncond]).to(device, dtype)
    mask_all = None
    if y_mask is not None:
        mask_all = y_mask if y_uncond_mask is None else torch.cat([y_mask, y_uncond_mask])
        mask_all = mask_all.to(device)
    extra = {"fps": torch.tensor([float(fps)]), "height": torch.tensor([float(height)])}
    extra["width"] = torch.tensor([float(width)])

    if frame_mask is not None:
        frame_mask = frame_mask.to(device, torch.float32)
        noise_added = frame_mask == 1
    for i, t in enumerate(ts):
        x_mask = None
        if frame_mask is not None:
            x0 = z.clone()
            step_noise = torch.randn(z.shape, generator=generator, dtype=torch.float32).to(device)
            x_noise = add_noise(x0, step_noise, t)
            upper = frame_mask * NUM_TIMESTEPS >= t[:, None]
            x_mask = upper.repeat(2, 1)
            z = torch.where((upper & ~noise_added)[:, None, :, None, None], x_noise, x0)
            noise_added = upper
        pred = model(torch.cat([z, z]), torch.cat([t, t]), y_all, mask=mask_all, x_mask=x_mask, **extra)
        v_cond, v_uncond = pred[:, : z.shape[1]].float().chunk(2)
        v = v_uncond + settings.guidance * (v_cond - v_uncond)
        dt = (t - ts[i + 1] if i + 1 < len(ts) else t) / NUM_TIMESTEPS
        z = z + v * dt.view(-1, 1, 1, 1, 1)
        if frame_mask is not None:
            z = torch.where(upper[:, None, :, None, None], z, x0)
        if callback is not None:
            callback(i + 1, len(ts), z)
    return z


# ------------------------------------------------------------------------------ mask strategies

MASK_DEFAULT = (0, 0, 0, 0, 1, 0.0)


def parse_mask_strategy(text: str) -> list[tuple[int, int, int, int, int, float]]:
    """Upstream's ``"loop,ref,ref_start,target_start,length,edit_ratio;…"`` (missing fields default to
    0,0,0,0,1,0; negative starts count from the end). Units are latent frames."""
    groups = []
    for part in (text or "").split(";"):
        part = part.strip()
        if not part:
            continue
        fields = [f.strip() for f in part.split(",")]
        if len(fields) > 6:
            raise InputError(
                f"mask strategy group {part!r} has {len(fields)} numbers; at most 6 are allowed."
            )
        try:
            ints = [int(f) for f in fields[:5]]
            ratio = float(fields[5]) if len(fields) > 5 else MASK_DEFAULT[5]
        except ValueError as exc:
            raise InputError(
                f"mask strategy group {part!r} is not numbers: use "
                "'loop,ref,ref_start,target_start,length,edit_ratio' groups separated by ';'."
            ) from exc
        ints += list(MASK_DEFAULT[len(ints) : 5])
        if not 0.0 <= ratio <= 1.0:
            raise InputError(f"edit ratio {ratio} in {part!r} must be between 0 and 1.")
        groups.append((*ints, ratio))
    return groups


def nearest_aligned(value: int, align: int, max_value: int) -> int:
    """Snap a start to a multiple of ``align`` (17-frame chunk starts), as upstream does."""
    k = value // align
    if value % align > align / 2 and k < max_value // align - 1:
        k += 1
    return k * align


def apply_mask_strategy(
    z: torch.Tensor, references: list[torch.Tensor], strategy: str, loop: int = 0, align: int | None = None
) -> torch.Tensor | None:
    """Copy reference latents (each (C,T,h,w)) into ``z`` (1,C,T,h,w) in place and return the frame
    mask (1,T), or None when the strategy is empty."""
    groups = parse_mask_strategy(strategy)
    if not groups:
        return None
    frames = z.shape[2]
    mask = torch.ones(1, frames, dtype=torch.float32, device=z.device)
    for loop_id, ref_id, ref_start, target_start, length, ratio in groups:
        if loop_id != loop:
            continue
        if not 0 <= ref_id < len(references):
            raise InputError(f"mask strategy uses reference {ref_id}, but {len(references)} were given.")
        ref = references[ref_id]
        ref_start = ref_start + ref.shape[1] if ref_start < 0 else ref_start
        target_start = target_start + frames if target_start < 0 else target_start
        if align is not None:
            ref_start = nearest_aligned(ref_start, align, ref.shape[1])
            target_start = nearest_aligned(target_start, align, frames)
        length = min(length, frames - target_start, ref.shape[1] - ref_start)
        if length <= 0 or target_start < 0 or ref_start < 0:
            raise InputError(
                f"mask strategy group {(loop_id, ref_id, ref_start, target_start)} points outside the "
                f"{frames} latent frames or the reference's {ref.shape[1]} frames."
            )
        z[0, :, target_start : target_start + length] = ref[:, ref_start : ref_start + length].to(z)
        mask[0, target_start : target_start + length] = ratio
    return mask
