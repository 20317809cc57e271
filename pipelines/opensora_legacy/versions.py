"""What each released Open-Sora generation / PixArt model needs: files, sampler, sizes, text length.

Numbers are those of upstream's inference configs (``configs/opensora-v1-1/inference/sample.py``,
``configs/opensora/inference/16x*.py``, ``configs/pixart/inference/1x*.py``):

=============  ==========  ==========  ==============  =====  ========  ==========  ===========
version        network     sampler     steps / CFG     cfg ch  T5 len    frames       model fps
=============  ==========  ==========  ==============  =====  ========  ==========  ===========
1.1            STDiT2      IDDPM       100 / 7.0       3      200       16 (240×426)  24 (saved at 8)
1.0            STDiT       IDDPM       100 / 7.0       3      120       16 (256²/512²) — (saved at 8)
pixart-alpha   PixArt-α    DPM-Solver  20 / 7.0        all    120       image        —
pixart-sigma   PixArt-Σ    DPM-Solver  20 / 4.5        all    300       image        —
=============  ==========  ==========  ==============  =====  ========  ==========  ===========

"cfg ch": classifier-free guidance is applied to the first 3 of the 4 ε channels for the
Open-Sora IDDPM configs (a leftover of DiT's code), to all 4 for PixArt.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import InputError


@dataclass(frozen=True)
class Version:
    key: str
    label: str
    network: str  # "stdit2" | "stdit" | "pixart"
    checkpoint: str  # default file or folder name under models/opensora
    checkpoint_source: str
    vae: str  # default diffusers AutoencoderKL folder name
    vae_source: str
    sampler: str  # "iddpm" | "dpm-solver++"
    steps: int
    guidance: float
    cfg_channels: int | None
    text_length: int
    frames: int
    height: int
    width: int
    fps: float  # told to the model (v1.1 only)
    save_fps: float  # of the written video

    @property
    def video(self) -> bool:
        return self.network != "pixart"


SD_VAE_SOURCE = (
    "https://huggingface.co/stabilityai/sd-vae-ft-ema (config.json + diffusion_pytorch_model.safetensors)"
)
SDXL_VAE_SOURCE = (
    "https://huggingface.co/PixArt-alpha/pixart_sigma_sdxlvae_T5_diffusers (the vae/ folder: config.json + "
    "diffusion_pytorch_model.safetensors)"
)

VERSIONS: dict[str, Version] = {
    "1.1": Version(
        "1.1", "v1.1 (STDiT2, video)", "stdit2", "OpenSora-STDiT-v2-stage3",
        "https://huggingface.co/hpcai-tech/OpenSora-STDiT-v2-stage3 (config.json + model.safetensors)",
        "sd-vae-ft-ema", SD_VAE_SOURCE, "iddpm", 100, 7.0, 3, 200, 16, 240, 426, 24.0, 8.0,
    ),
    "1.0": Version(
        "1.0", "v1.0 (STDiT, video)", "stdit", "OpenSora-v1-HQ-16x512x512.pth",
        "https://huggingface.co/hpcai-tech/Open-Sora (OpenSora-v1-HQ-16x512x512.pth, "
        "OpenSora-v1-HQ-16x256x256.pth, OpenSora-v1-16x256x256.pth)",
        "sd-vae-ft-ema", SD_VAE_SOURCE, "iddpm", 100, 7.0, 3, 120, 16, 512, 512, 8.0, 8.0,
    ),
    "pixart-alpha": Version(
        "pixart-alpha", "PixArt-α (image)", "pixart", "PixArt-XL-2-512x512.pth",
        "https://huggingface.co/PixArt-alpha/PixArt-alpha (PixArt-XL-2-256x256.pth, PixArt-XL-2-512x512.pth, "
        "PixArt-XL-2-1024-MS.pth)",
        "sd-vae-ft-ema", SD_VAE_SOURCE, "dpm-solver++", 20, 7.0, None, 120, 1, 512, 512, 1.0, 1.0,
    ),
    "pixart-sigma": Version(
        "pixart-sigma", "PixArt-Σ (image)", "pixart", "PixArt-Sigma-XL-2-512-MS.pth",
        "https://huggingface.co/PixArt-alpha/PixArt-Sigma (PixArt-Sigma-XL-2-256x256.pth, "
        "PixArt-Sigma-XL-2-512-MS.pth, PixArt-Sigma-XL-2-1024-MS.pth, PixArt-Sigma-XL-2-2K-MS.pth)",
        "sdxl-vae", SDXL_VAE_SOURCE, "dpm-solver++", 20, 4.5, None, 300, 1, 512, 512, 1.0, 1.0,
    ),
}  # fmt: skip

SAMPLERS = ("auto", "iddpm", "dpm-solver++")


def get(key: str) -> Version:
    """The version for a key ("1.1", "1.0", "pixart-alpha", "pixart-sigma") or its label."""
    for version in VERSIONS.values():
        if key in (version.key, version.label):
            return version
    raise InputError(f"Open-Sora version {key!r} is not one of {list(VERSIONS)}.")


def comfy_scaling_factor(version: Version) -> float:
    """The latent scale of the VAE a version was trained with (for ComfyUI VAE objects, which lack it)."""
    return 0.13025 if version.vae == "sdxl-vae" else 0.18215
