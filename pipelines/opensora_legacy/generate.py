"""Open-Sora 1.1 / 1.0 and PixArt, top to bottom: load, fit the text, place references, sample, decode.

    y, mask  = T5 features of the prompt, cut or padded to the model's caption length (200/120/300)
    z        ~ N(0, I) drawn on the CPU                          (1,4,T,h,w) video or (B,4,h,w) images
    refs     → copied into z, frame mask 0 where they are kept  (v1.1 only, as upstream)
    denoise  = classifier-free guidance around the DiT           (null caption = learned y_embedding)
    z        = IDDPM (respaced to ``steps``) or DPM-Solver++(2M)
    LATENT   = z / scaling_factor with frames as the batch       (ComfyUI's layout for SD latents)

The samplers and networks are shared with the parity-tested modules in ``models/opensora`` and
``pipelines/opensora_schedulers``; this file only wires them the way upstream's inference
scripts do (``scripts/inference.py`` of each branch).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ...models.opensora import legacy_loading
from ..core import images
from ..core.device import get_offload_device
from ..core.errors import InputError, MissingWeightsError
from ..core.memory import on_device
from ..core.progress import Progress
from ..opensora import sampling as rf_sampling
from ..opensora_schedulers import classifier_free, sample_dpm_solver, sample_iddpm, seeded_noise
from . import versions
from .sd_vae import SDVAE, ComfyVAE, load_sd_vae

log = logging.getLogger("MotionSuite")

MODES = ("none", "first frame", "first + last frame", "keyframes", "extend", "mask strategy")


@dataclass
class LegacyModel:
    """DiT + VAE of one version with the output settings chosen in the loader (offload device)."""

    version: versions.Version
    dit: torch.nn.Module
    vae: SDVAE | ComfyVAE
    height: int
    width: int
    num_frames: int  # frames of the video, or images in the batch for PixArt
    fps: float
    dtype: torch.dtype = torch.float32
    name: str = ""

    @property
    def text_length(self) -> int:
        return int(self.dit.config.model_max_length)

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.height // self.vae.spatial_factor, self.width // self.vae.spatial_factor


def default_size(version: versions.Version, checkpoint: str | Path) -> tuple[int, int]:
    """(height, width) the checkpoint was trained at: v1.1 240×426; v1.0 and PixArt from the file name."""
    if version.network == "stdit2":
        return version.height, version.width
    name = Path(checkpoint).name
    for size in (2048, 1024, 512, 256):
        if str(size) in name or (size == 2048 and "2K" in name):
            return size, size
    return version.height, version.width


def check_size(height: int, width: int) -> None:
    """Any size of at least 16 px; the latent grid is ⌊size/8⌋ as upstream (426 wide → 424 px out)."""
    if height < 16 or width < 16:
        raise InputError(f"size {width}x{height}: width and height must be at least 16 pixels.")


def load_model(
    version: str | versions.Version,
    checkpoint: str | Path,
    vae: str | Path | object,
    *,
    height: int = 0,
    width: int = 0,
    num_frames: int = 0,
    fps: float = 0.0,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> LegacyModel:
    """Load a released DiT file/folder and a diffusers VAE folder (or take ComfyUI's VAE object);
    0 = the version's default."""
    version = version if isinstance(version, versions.Version) else versions.get(version)
    device = device if device is not None else get_offload_device()
    if bool(height) != bool(width):
        raise InputError("give both width and height (or 0 for the model's trained size).")
    if not height:
        height, width = default_size(version, checkpoint)
    check_size(height, width)
    frames = int(num_frames) or version.frames
    if frames < 1:
        raise InputError(f"frames must be at least 1, got {frames}.")
    source = version.checkpoint_source
    if not Path(checkpoint).exists():
        raise MissingWeightsError(f"'{checkpoint}' not found; download {source} into models/opensora.")
    loader = {
        "stdit2": legacy_loading.load_stdit2,
        "stdit": legacy_loading.load_stdit,
        "pixart": legacy_loading.load_pixart,
    }[version.network]
    dit = loader(checkpoint, dtype, device)
    if isinstance(vae, (str, Path)):
        sd_vae: SDVAE | ComfyVAE = load_sd_vae(vae, dtype, device, source=version.vae_source)
    else:
        sd_vae = ComfyVAE(vae, versions.comfy_scaling_factor(version))
    return LegacyModel(
        version, dit, sd_vae, int(height), int(width), frames, float(fps or version.fps), dtype,
        Path(checkpoint).name,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- text
def fit_text(y: torch.Tensor, mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut or zero-pad T5 features (B,L,D) and mask (B,L) to the model's caption length.

    T5's encoder masks padding, so features of a prompt that fits are the same whatever length it
    was padded to; a longer prompt loses its tail (upstream truncates at tokenisation instead).
    """
    y = y.reshape(y.shape[0], -1, y.shape[-1]).float()
    mask = mask.reshape(mask.shape[0], -1).long()
    if int(mask[:, length:].sum()):
        log.warning("Open-Sora: prompt longer than %d tokens; the tail is dropped.", length)
    if y.shape[1] < length:
        pad = length - y.shape[1]
        y = torch.cat([y, y.new_zeros(y.shape[0], pad, y.shape[2])], dim=1)
        mask = torch.cat([mask, mask.new_zeros(mask.shape[0], pad)], dim=1)
    return y[:, :length], mask[:, :length]


# ------------------------------------------------------------------------------------- references
@torch.no_grad()
def encode_frames(
    model: LegacyModel, image: torch.Tensor, fit: str = "crop", deterministic: bool = True, seed: int = 0
) -> dict:
    """IMAGE (N,H,W,3) → LATENT of unscaled latents (N,4,h,w), frames fitted to the model size."""
    frames = images.fit(images.to_bchw(image), (model.height, model.width), mode=fit) * 2 - 1
    z = model.vae.encode(frames, deterministic, torch.Generator().manual_seed(seed))
    return {"samples": z, "num_frames": z.shape[0]}


def place_references(
    model: LegacyModel,
    z: torch.Tensor,
    reference: dict | None,
    mode: str,
    keyframes: str = "0",
    extend_frames: int = 4,
    mask_strategy: str = "0",
    edit_ratio: float = 0.0,
) -> torch.Tensor | None:
    """Copy reference latents (scaled) into ``z`` (1,4,T,h,w); returns the frame mask (1,T) or None.

    With the SD VAE a latent frame is a pixel frame, so positions and mask strategies are in frames.
    """
    if mode not in MODES:
        raise InputError(f"conditioning mode {mode!r} is not one of {MODES}.")
    if mode == "none":
        return None
    if model.version.network != "stdit2":
        raise InputError(
            f"{model.version.label} has no image/video conditioning (upstream supports it from v1.1 on); "
            "set mode to 'none'."
        )
    if reference is None or not isinstance(reference, dict) or "samples" not in reference:
        raise InputError(f"conditioning mode {mode!r} needs a reference LATENT (from the legacy encoder).")
    refs = reference["samples"]
    if refs.dim() != 4 or refs.shape[1] != 4 or tuple(refs.shape[-2:]) != tuple(z.shape[-2:]):
        raise InputError(
            f"reference latents are {tuple(refs.shape)}; this model needs (frames, 4, {z.shape[-2]}, "
            f"{z.shape[-1]}): encode the reference with this loader's model (the encoder resizes for you)."
        )
    refs = refs.float() * model.vae.scaling_factor
    t = z.shape[2]
    if mode == "mask strategy":
        return rf_sampling.apply_mask_strategy(z, [refs.permute(1, 0, 2, 3)], mask_strategy)
    mask = torch.ones(1, t)
    if mode == "first frame":
        targets = [(0, refs[:1])]
    elif mode == "first + last frame":
        targets = [(0, refs[:1]), (t - 1, refs[-1:])]
    elif mode == "keyframes":
        positions = parse_positions(keyframes)
        if len(positions) != refs.shape[0]:
            raise InputError(
                f"{len(positions)} keyframe positions for {refs.shape[0]} reference images; give one frame "
                "number per image."
            )
        targets = [(min(p, t - 1), refs[i : i + 1]) for i, p in enumerate(positions)]
    else:  # extend: the last frames of the reference clip lead in
        k = max(1, min(int(extend_frames), refs.shape[0], t))
        targets = [(0, refs[-k:])]
    for start, lat in targets:
        z[0, :, start : start + lat.shape[0]] = lat.permute(1, 0, 2, 3).to(z)
        mask[0, start : start + lat.shape[0]] = edit_ratio
    return mask


def parse_positions(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError as exc:
        raise InputError(
            f"keyframe positions {text!r} must be comma-separated frame numbers, e.g. '0,8,15'."
        ) from exc
    if not values or any(v < 0 for v in values):
        raise InputError(f"keyframe positions {text!r} must be frame numbers ≥ 0, e.g. '0,8,15'.")
    return values


# -------------------------------------------------------------------------------------- sampling
def latent_preview(z: torch.Tensor) -> torch.Tensor:
    """Cheap (h,w,3) preview of the middle frame / first image (first three channels, no VAE)."""
    frame = z[0, :3, z.shape[2] // 2] if z.dim() == 5 else z[0, :3]
    return ((frame.float().cpu().clamp(-2, 2) + 2) / 4).permute(1, 2, 0)


@torch.no_grad()
def generate(
    model: LegacyModel,
    positive: tuple[torch.Tensor, torch.Tensor],
    negative: tuple[torch.Tensor, torch.Tensor] | None = None,
    *,
    seed: int = 0,
    steps: int = 0,
    guidance: float = 0.0,
    sampler: str = "auto",
    reference: dict | None = None,
    mode: str = "none",
    keyframes: str = "0",
    extend_frames: int = 4,
    mask_strategy: str = "0",
    edit_ratio: float = 0.0,
    keep_loaded: bool = False,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> dict:
    """Sample a video (or PixArt images); ``positive``/``negative`` are (T5 features, mask).

    ``steps``/``guidance`` 0 and ``sampler`` "auto" take the version's upstream defaults. Returns a
    LATENT with unscaled latents, frames (or images) as the batch.
    """
    version, dit = model.version, model.dit
    steps = int(steps) or version.steps
    guidance = float(guidance) or version.guidance
    sampler = version.sampler if sampler == "auto" else sampler
    if sampler not in versions.SAMPLERS[1:]:
        raise InputError(f"sampler {sampler!r} is not one of {versions.SAMPLERS}.")
    y, y_mask = positive
    if y.shape[-1] != dit.config.caption_channels:
        raise InputError(
            f"text features have {y.shape[-1]} channels, the model expects {dit.config.caption_channels} "
            "(T5-XXL); encode the prompt with the Open-Sora text encoder."
        )
    length = model.text_length
    y, y_mask = fit_text(y[:1], y_mask[:1], length)
    lat_h, lat_w = model.latent_size
    batch = 1 if version.video else model.num_frames
    shape = (1, 4, model.num_frames, lat_h, lat_w) if version.video else (batch, 4, lat_h, lat_w)
    z = torch.randn(shape, generator=torch.Generator().manual_seed(int(seed)), dtype=torch.float32)
    frame_mask = place_references(
        model, z, reference, mode, keyframes, extend_frames, mask_strategy, edit_ratio
    )
    if frame_mask is not None and sampler != "iddpm":
        raise InputError(
            "image/video conditioning needs the IDDPM sampler (DPM-Solver++ ignores it upstream)."
        )

    y, y_mask = y.expand(batch, -1, -1), y_mask.expand(batch, -1)
    if negative is None:
        y_null, mask_all = dit.null_caption(batch).detach().float().cpu(), y_mask  # prompt mask reused
    else:
        y_null, null_mask = fit_text(negative[0][:1], negative[1][:1], length)
        y_null, mask_all = y_null.expand(batch, -1, -1), torch.cat([y_mask, null_mask.expand(batch, -1)])
    kwargs: dict = {"height": float(model.height), "width": float(model.width)}
    if version.network == "stdit2":
        kwargs.update(num_frames=float(model.num_frames), fps=120.0 if model.num_frames == 1 else model.fps)

    progress = Progress(steps, desc=f"Open-Sora {version.key}")

    def step(i: int, total: int, zt: torch.Tensor) -> None:
        progress.update(1, preview=latent_preview(zt))
        if callback is not None:
            callback(i, total, zt)

    try:
        with on_device(dit, keep_loaded=keep_loaded) as device:
            denoise = classifier_free(
                dit, y.to(device), y_null.to(device), guidance, version.cfg_channels,
                mask=mask_all.to(device), **kwargs,
            )  # fmt: skip
            if sampler == "iddpm":
                out = sample_iddpm(
                    denoise, z.to(device), steps, seeded_noise(int(seed) + 1, device), mask=frame_mask,
                    callback=step,
                )  # fmt: skip
            else:
                if steps < 2:
                    raise InputError(f"DPM-Solver++ needs at least 2 steps, got {steps}.")
                out = sample_dpm_solver(denoise, z.to(device), steps, callback=step)
    finally:
        progress.close()
    out = out.float().cpu() / model.vae.scaling_factor
    if version.video:
        out = out[0].permute(1, 0, 2, 3).contiguous()  # (T, 4, h, w): frames as the batch
    return {"samples": out, "num_frames": out.shape[0]}


@torch.no_grad()
def decode(model: LegacyModel, latent: dict, batch_size: int = 4) -> torch.Tensor:
    """LATENT (N,4,h,w) of unscaled latents → IMAGE (N,H,W,3), N frames or images."""
    if not isinstance(latent, dict) or "samples" not in latent:
        raise InputError(
            "latent must be a LATENT dict with 'samples'; connect the legacy sampler or encoder."
        )
    z = latent["samples"]
    if z.dim() != 4 or z.shape[1] != 4:
        raise InputError(
            f"SD-VAE latents are (frames, 4, h, w); got {tuple(z.shape)}. Open-Sora 1.2 latents need the "
            "Open-Sora 1.2 decoder."
        )
    progress = Progress(z.shape[0], desc="Open-Sora decode")
    try:
        frames = model.vae.decode(z.float(), batch_size, callback=lambda n: progress.update(n))
    finally:
        progress.close()
    return ((frames + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).contiguous()
