"""Loading the released Open-Sora 1.2 files onto the pack's networks.

* STDiT3: a folder with ``config.json`` + ``model.safetensors`` (``hpcai-tech/OpenSora-STDiT-v3``)
  or a single ``.safetensors`` beside a same-named ``.json``; keys load unchanged. Older exports
  may lack the deterministic ``rope.freqs``; it is filled in.
* VAE 1.2 (``hpcai-tech/OpenSora-VAE-v1.2``): ``spatial_vae.module.*`` are diffusers AutoencoderKL
  keys, ``temporal_vae.*`` the temporal VAE, ``scale``/``shift`` the latent normalisation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from ...models.opensora import STDiT3, STDiT3Config
from ...models.opensora.vae_temporal import TemporalVAEConfig
from ...models.opensora.video_vae import SCALE, SDXL_VAE_CONFIG, SHIFT, OpenSoraVAE
from ..core import weights
from ..core.errors import MissingWeightsError, WeightsMismatchError


def stdit3_files(path: str | Path) -> tuple[Path, Path]:
    """(config.json, weights) of a STDiT3 checkpoint given as a folder or as a weights file."""
    path = Path(path)
    if path.is_dir():
        config, model = path / "config.json", path / "model.safetensors"
    else:
        config, model = path.with_suffix(".json"), path
    missing = [str(p) for p in (config, model) if not p.is_file()]
    if missing:
        raise MissingWeightsError(
            f"STDiT3 checkpoint incomplete, missing {missing}. Download config.json and model.safetensors "
            "of https://huggingface.co/hpcai-tech/OpenSora-STDiT-v3 into one folder."
        )
    return config, model


def load_stdit3_state_dict(model: STDiT3, sd: Mapping[str, torch.Tensor]) -> STDiT3:
    """Strictly load a released state dict (``rope.freqs`` may be absent: it is a fixed buffer)."""
    sd = dict(sd)
    sd.setdefault("rope.freqs", model.rope.freqs.detach().clone())
    weights.load_into(model, sd, "Open-Sora STDiT3")
    return model


def load_stdit3(
    path: str | Path, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> STDiT3:
    """Build STDiT3 from ``config.json`` and load ``model.safetensors`` (fp32 file, cast to ``dtype``)."""
    config_path, model_path = stdit3_files(path)
    config = STDiT3Config.from_json(config_path)
    with torch.device("meta"):
        model = STDiT3(config)
    model = model.to_empty(device="cpu")
    model.rope.freqs.copy_(_rope_freqs(config))
    load_stdit3_state_dict(model, weights.load_state_dict(model_path))
    return model.eval().requires_grad_(False).to(device=device, dtype=dtype)


def _rope_freqs(config: STDiT3Config) -> torch.Tensor:
    dim = config.hidden_size // config.num_heads
    return 1.0 / 10000 ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim)


def save_stdit3(model: STDiT3, folder: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` in the released layout (tests, conversions)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(folder / "model.safetensors"))
    return folder


# ------------------------------------------------------------------------------------------ VAE 1.2

#: diffusers-0.14 attention names some exports still carry → today's names
_OLD_ATTENTION = (
    (".query.", ".to_q."),
    (".key.", ".to_k."),
    (".value.", ".to_v."),
    (".proj_attn.", ".to_out.0."),
)


def vae_configs_from_state_dict(sd: Mapping[str, torch.Tensor]) -> tuple[dict, TemporalVAEConfig]:
    """Spatial (diffusers) and temporal configs read off the tensor shapes of a VAE 1.2 file.

    The released file is the full SDXL VAE + ``VAE_Temporal_SD``; reading the widths from the
    shapes lets the same code load it and the tiny test files without a hub download of configs.
    """
    spatial = dict(SDXL_VAE_CONFIG)
    prefix = "spatial_vae.module.encoder.down_blocks."
    blocks = sorted({int(k[len(prefix) :].split(".")[0]) for k in sd if k.startswith(prefix)})
    if not blocks:
        raise WeightsMismatchError(
            "This file has no 'spatial_vae.module.encoder.*' weights, so it is not an Open-Sora VAE 1.2 "
            "checkpoint (hpcai-tech/OpenSora-VAE-v1.2 model.safetensors)."
        )
    spatial["block_out_channels"] = [int(sd[f"{prefix}{i}.resnets.0.conv1.weight"].shape[0]) for i in blocks]
    spatial["down_block_types"] = ["DownEncoderBlock2D"] * len(blocks)
    spatial["up_block_types"] = ["UpDecoderBlock2D"] * len(blocks)
    spatial["layers_per_block"] = len({k.split(".")[6] for k in sd if k.startswith(f"{prefix}0.resnets.")})
    spatial["latent_channels"] = int(sd["spatial_vae.module.quant_conv.weight"].shape[0]) // 2

    enc = "temporal_vae.encoder."
    filters = int(sd[enc + "conv_in.conv.weight"].shape[0])
    stages = sorted({int(k.split(".")[3]) for k in sd if k.startswith(enc + "block_res_blocks.")})
    widths = [int(sd[f"{enc}block_res_blocks.{i}.0.conv1.conv.weight"].shape[0]) for i in stages]
    temporal = TemporalVAEConfig(
        in_out_channels=int(sd[enc + "conv_in.conv.weight"].shape[1]),
        latent_channels=int(sd["temporal_vae.quant_conv.conv.weight"].shape[0]) // 2,
        filters=filters,
        num_res_blocks=len({k.split(".")[4] for k in sd if k.startswith(enc + "block_res_blocks.0.")}),
        channel_multipliers=tuple(w // filters for w in widths),
        temporal_downsample=tuple(f"{enc}conv_blocks.{i}.conv.weight" in sd for i in stages[:-1]),
    )
    return spatial, temporal


def build_vae(sd: Mapping[str, torch.Tensor], config: Mapping | None = None) -> OpenSoraVAE:
    """Random-weight VAE shaped like ``sd``; micro-frame size, shift and scale from ``config.json``."""
    config = dict(config or {})
    spatial, temporal = vae_configs_from_state_dict(sd)
    return OpenSoraVAE(
        spatial,
        temporal,
        micro_frame_size=int(config.get("micro_frame_size") or 17),
        shift=tuple(config.get("shift", SHIFT)),
        scale=tuple(config.get("scale", SCALE)),
    )


def load_vae_state_dict(vae: OpenSoraVAE, sd: Mapping[str, torch.Tensor]) -> OpenSoraVAE:
    renamed = {}
    for key, value in sd.items():
        if key.startswith("spatial_vae.") and ".attentions." in key:
            for old, new in _OLD_ATTENTION:
                key = key.replace(old, new)
        renamed[key] = value
    weights.load_into(vae, renamed, "Open-Sora VAE 1.2")
    return vae


def load_vae(
    path: str | Path, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> OpenSoraVAE:
    """Load ``hpcai-tech/OpenSora-VAE-v1.2`` (folder with config.json + model.safetensors, or the file)."""
    path = Path(path)
    model_path = path / "model.safetensors" if path.is_dir() else path
    config_path = model_path.with_name("config.json") if path.is_dir() else path.with_suffix(".json")
    if not model_path.is_file():
        raise MissingWeightsError(
            f"VAE file {model_path} not found. Download model.safetensors (and config.json) of "
            "https://huggingface.co/hpcai-tech/OpenSora-VAE-v1.2 into that folder."
        )
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    sd = weights.load_state_dict(model_path)
    vae = load_vae_state_dict(build_vae(sd, config), sd)
    return vae.eval().requires_grad_(False).to(device=device, dtype=dtype)


def save_vae(vae: OpenSoraVAE, folder: str | Path) -> Path:
    """``config.json`` + ``model.safetensors`` as in the released VAE repo (tests, conversions)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["VideoAutoencoderPipeline"],
        "model_type": "VideoAutoencoderPipeline",
        "micro_frame_size": vae.micro_frame_size,
        "shift": vae.shift.flatten().tolist(),
        "scale": vae.scale.flatten().tolist(),
        "vae_2d": {"type": "VideoAutoencoderKL", "micro_batch_size": 4, "subfolder": "vae"},
        "vae_temporal": {"type": "VAE_Temporal_SD"},
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    save_file(
        {k: v.detach().contiguous() for k, v in vae.state_dict().items()}, str(folder / "model.safetensors")
    )
    return folder
