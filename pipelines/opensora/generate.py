"""Open-Sora 1.2 text/image → video, top to bottom: encode text, encode references, sample, decode.

Latents passed between steps follow ComfyUI's video convention: ``{"samples": (B,4,t,h,w)}`` in
Open-Sora's normalised VAE space, plus ``num_frames`` (the pixel frame count they decode to).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ...models.opensora import OpenSoraVAE, STDiT3
from ..core import images
from ..core.device import get_offload_device
from ..core.errors import InputError
from ..core.memory import on_device
from ..core.progress import Progress
from . import aspect, sampling

MODES = ("none", "first frame", "first + last frame", "keyframes", "extend", "mask strategy")


@dataclass
class OpenSoraModel:
    """STDiT3 + VAE with the output settings chosen in the loader (kept on the offload device)."""

    dit: STDiT3
    vae: OpenSoraVAE
    height: int = 240
    width: int = 426
    num_frames: int = 51
    fps: float = 24.0
    dtype: torch.dtype = torch.float32
    block_swap: int = 0
    name: str = "OpenSora-STDiT-v3"
    extra: dict = field(default_factory=dict)

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        f = self.vae.spatial_factor
        return (4, self.vae.latent_frames(self.num_frames), self.height // f, self.width // f)


def check_frames(model: OpenSoraModel, frames: int) -> None:
    if frames < 1:
        raise InputError(f"frame count must be at least 1, got {frames}.")
    latents = model.vae.latent_frames(frames)
    if frames > 1 and latents < 2:
        raise InputError(
            f"{frames} frames give a single latent frame; use 1 (an image) or at least 5 frames "
            "(17, 34, 51 … fill whole 17-frame VAE chunks)."
        )


# ------------------------------------------------------------------------------------ references
@torch.no_grad()
def encode_frames(
    model: OpenSoraModel,
    image: torch.Tensor,
    as_video: bool = True,
    fit: str = "crop",
    deterministic: bool = True,
    seed: int = 0,
) -> dict:
    """IMAGE (N,H,W,3) → LATENT. ``as_video``: the N frames form one clip (1,4,t,h,w); otherwise every
    image is its own one-frame clip (N,4,1,h,w), e.g. keyframes. Frames are fitted to the model size."""
    frames = images.fit(images.to_bchw(image), (model.height, model.width), mode=fit) * 2 - 1
    clips = frames.permute(1, 0, 2, 3)[None] if as_video else frames[:, :, None]
    gen = torch.Generator().manual_seed(seed)
    vae = model.vae
    with on_device(vae) as device:
        out = [
            vae.encode(clip[None].to(device, vae.dtype), generator=gen, sample=not deterministic)
            .float()
            .cpu()
            for clip in clips
        ]
    return {"samples": torch.cat(out), "num_frames": clips.shape[2]}


def place_references(
    model: OpenSoraModel,
    z: torch.Tensor,
    reference: dict | None,
    mode: str,
    keyframes: str = "",
    extend_frames: int = 17,
    mask_strategy: str = "",
    edit_ratio: float = 0.0,
) -> torch.Tensor | None:
    """Copy reference latents into ``z`` (1,4,T,h,w) for a conditioning mode; returns the frame mask."""
    if mode not in MODES:
        raise InputError(f"conditioning mode {mode!r} is not one of {MODES}.")
    if mode == "none":
        return None
    if reference is None:
        raise InputError(f"conditioning mode {mode!r} needs a reference LATENT from the Open-Sora encoder.")
    refs = reference["samples"]
    if tuple(refs.shape[-2:]) != tuple(z.shape[-2:]):
        raise InputError(
            f"reference latents are {tuple(refs.shape[-2:])}, the model makes {tuple(z.shape[-2:])}; "
            "encode the reference with this loader's model (the encoder resizes for you)."
        )
    clips = [r for r in refs]  # each (4, t, h, w)
    t = z.shape[2]
    if mode == "mask strategy":
        mask = sampling.apply_mask_strategy(z, clips, mask_strategy)
        return mask
    mask = torch.ones(1, t)
    if mode == "first frame":
        targets = [(0, clips[0][:, :1])]
    elif mode == "first + last frame":
        last = clips[-1][:, -1:]
        targets = [(0, clips[0][:, :1]), (t - 1, last)]
    elif mode == "keyframes":
        positions = _parse_positions(keyframes)
        if len(positions) != len(clips):
            raise InputError(
                f"{len(positions)} keyframe positions for {len(clips)} reference images; give one frame "
                "number per image (encode the keyframes with 'as video' off)."
            )
        targets = [(min(aspect.latent_index(p), t - 1), c[:, :1]) for p, c in zip(positions, clips)]
    else:  # extend
        k = min(model.vae.latent_frames(extend_frames), clips[0].shape[1], t)
        targets = [(0, clips[0][:, -k:])]
    for start, lat in targets:
        z[0, :, start : start + lat.shape[1]] = lat.to(z)
        mask[0, start : start + lat.shape[1]] = edit_ratio
    return mask


def _parse_positions(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError as exc:
        raise InputError(
            f"keyframe positions {text!r} must be comma-separated frame numbers, e.g. '0,25,50'."
        ) from exc
    if not values or any(v < 0 for v in values):
        raise InputError(f"keyframe positions {text!r} must be frame numbers ≥ 0, e.g. '0,25,50'.")
    return values


# -------------------------------------------------------------------------------------- sampling
def latent_preview(z: torch.Tensor) -> torch.Tensor:
    """Cheap (h,w,3) preview of the middle latent frame (first three channels, no VAE)."""
    frame = z[0, :3, z.shape[2] // 2].float().cpu()
    return ((frame.clamp(-2, 2) + 2) / 4).permute(1, 2, 0)


def initial_noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32)


@torch.no_grad()
def generate(
    model: OpenSoraModel,
    positive: tuple[torch.Tensor, torch.Tensor],
    negative: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    seed: int = 0,
    steps: int = 30,
    guidance: float = 7.0,
    reference: dict | None = None,
    mode: str = "none",
    keyframes: str = "",
    extend_frames: int = 17,
    mask_strategy: str = "",
    edit_ratio: float = 0.0,
    keep_loaded: bool = False,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> dict:
    """Sample one video; ``positive``/``negative`` are (T5 features (1,L,D), mask (1,L))."""
    check_frames(model, model.num_frames)
    y, y_mask = positive
    if y.shape[-1] != model.dit.config.caption_channels:
        raise InputError(
            f"text features have {y.shape[-1]} channels, the model expects "
            f"{model.dit.config.caption_channels} (T5-XXL); encode it with the Open-Sora text encoder."
        )
    z = initial_noise((1, *model.latent_shape), seed)
    frame_mask = place_references(
        model, z, reference, mode, keyframes, extend_frames, mask_strategy, edit_ratio
    )
    dit = model.dit
    if negative is None:
        y_unc, unc_mask = dit.null_caption(1).detach().cpu(), None
        if y_unc.shape[1] != y.shape[1]:
            raise InputError(
                f"prompt features have {y.shape[1]} tokens but the model's null caption {y_unc.shape[1]}; "
                f"encode with max length {y_unc.shape[1]} (v1.2: 300) or give a negative prompt."
            )
    else:
        y_unc, unc_mask = negative
    dit.swap_blocks = model.block_swap
    dit.offload_device = get_offload_device()
    swapped = [m for pair in zip(dit.spatial_blocks, dit.temporal_blocks) for m in pair][
        : 2 * model.block_swap
    ]
    resident = [m for m in dit.children() if not isinstance(m, torch.nn.ModuleList)]
    resident += [m for m in (*dit.spatial_blocks, *dit.temporal_blocks) if all(m is not s for s in swapped)]
    progress = Progress(steps, desc="Open-Sora")

    def step(i: int, total: int, zt: torch.Tensor) -> None:
        progress.update(1, preview=latent_preview(zt))
        if callback is not None:
            callback(i, total, zt)

    try:
        with on_device(*resident, keep_loaded=keep_loaded):
            out = sampling.sample(
                dit, z, y, y_mask, y_unc, unc_mask,
                height=model.height, width=model.width, num_frames=model.num_frames, fps=model.fps,
                settings=sampling.RFSettings(steps=steps, guidance=guidance), frame_mask=frame_mask,
                generator=torch.Generator().manual_seed(seed + 1), callback=step,
            )  # fmt: skip
    finally:
        progress.close()
    return {"samples": out.cpu(), "num_frames": model.num_frames}


@torch.no_grad()
def decode(model: OpenSoraModel, latent: dict, num_frames: int = 0, spatial_batch: int = 4) -> torch.Tensor:
    """LATENT → IMAGE (T,H,W,3) with exactly the latent's frame count (or ``num_frames``)."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise InputError(
            "latent must be a LATENT dict with 'samples'; connect the Open-Sora sampler or encoder."
        )
    z = latent["samples"]
    if z.dim() != 5 or z.shape[1] != 4:
        raise InputError(f"Open-Sora latents are (B,4,T,h,w); got {tuple(z.shape)}.")
    vae = model.vae
    frames = num_frames or int(latent.get("num_frames") or vae.frames_for_latents(z.shape[2]))
    if vae.latent_frames(frames) != z.shape[2]:
        raise InputError(
            f"{z.shape[2]} latent frames cannot give {frames} frames ({frames} frames have "
            f"{vae.latent_frames(frames)} latents); set frames to 0 to use the latent's own count."
        )
    progress = Progress(-(-z.shape[2] // vae.micro_latent_size) * z.shape[0], desc="Open-Sora decode")
    out = []
    with on_device(vae) as device:
        for clip in z:
            video = vae.decode(
                clip[None].to(device, vae.dtype),
                frames,
                spatial_batch,
                callback=lambda *_: progress.update(1),
            )
            out.append(((video.float() + 1) / 2).clamp(0, 1)[0].permute(1, 2, 3, 0).cpu())
    progress.close()
    return torch.cat(out)
