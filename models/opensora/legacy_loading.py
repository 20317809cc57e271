"""Loading the released Open-Sora 1.0 / 1.1 and PixArt checkpoints onto the pack's networks.

Files as published, keys unchanged:

* STDiT2 (v1.1): ``hpcai-tech/OpenSora-STDiT-v2-stage3`` (or ``-stage2``), a folder with
  ``config.json`` + ``model.safetensors``; or one ``.safetensors``/``.pth`` beside a same-named
  ``.json``; a bare weights file gets the XL/2 config.
* STDiT (v1.0): ``hpcai-tech/Open-Sora`` ``OpenSora-v1-*.pth`` (training format, fixed positional
  tables stored in the file) or the HF-format folders ``hpcai-tech/OpenSora-STDiT-v1-*``.
* PixArt-α/Σ: ``PixArt-XL-2-*.pth`` / ``PixArt-Sigma-XL-2-*.pth`` (``{"state_dict": ...}``, 2-D
  patch-embedding kernel).

Torch pickles load with ``weights_only=True`` (through the runtime's ``weights.load_state_dict``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from ...pipelines.core import weights
from ...pipelines.core.errors import MissingWeightsError
from .pixart import PixArt, PixArtConfig
from .stdit import STDiT, STDiTConfig
from .stdit2 import STDiT2, STDiT2Config

STDIT_SOURCE = "https://huggingface.co/hpcai-tech/Open-Sora (OpenSora-v1-HQ-16x512x512.pth and siblings)"
PIXART_SOURCE = (
    "https://huggingface.co/PixArt-alpha/PixArt-alpha (PixArt-XL-2-*.pth) or "
    "https://huggingface.co/PixArt-alpha/PixArt-Sigma (PixArt-Sigma-XL-2-*.pth)"
)
STDIT2_SOURCE = "https://huggingface.co/hpcai-tech/OpenSora-STDiT-v2-stage3 (config.json + model.safetensors)"


def checkpoint_files(path: str | Path, source: str) -> tuple[Path | None, Path]:
    """(config json or None, weights file) for a checkpoint given as a folder or as a weights file."""
    path = Path(path)
    if path.is_dir():
        model = next(
            (path / n for n in ("model.safetensors", "diffusion_pytorch_model.safetensors", "model.pth")
             if (path / n).is_file()),
            path / "model.safetensors",
        )  # fmt: skip
        config = path / "config.json"
        if not model.is_file() or not config.is_file():
            raise MissingWeightsError(
                f"Checkpoint folder '{path}' needs config.json and model.safetensors; "
                f"download them from {source}."
            )
        return config, model
    if not path.is_file():
        raise MissingWeightsError(f"Checkpoint '{path}' does not exist; download it from {source}.")
    config = path.with_suffix(".json")
    return (config if config.is_file() else None), path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a checkpoint file, unwrapped from training containers (``state_dict``/``model``/``ema``)
    and with a DDP ``module.`` prefix removed."""
    sd = weights.load_state_dict(path)
    for key in ("state_dict", "model", "ema", "module"):
        if isinstance(sd.get(key), Mapping) and not torch.is_tensor(sd[key]):
            sd = sd[key]
            break
    return weights.strip_prefix({k: v for k, v in sd.items() if torch.is_tensor(v)}, "module.")


def _rope_freqs(head_dim: int) -> torch.Tensor:
    return 1.0 / 10000 ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim)


def _finish(model: torch.nn.Module, dtype: torch.dtype, device) -> torch.nn.Module:
    return model.eval().requires_grad_(False).to(device=device, dtype=dtype)


def load_stdit2_state_dict(model: STDiT2, sd: Mapping[str, torch.Tensor]) -> STDiT2:
    """Strictly load a released STDiT2 state dict (``rope.freqs`` may be absent: it is fixed)."""
    sd = dict(sd)
    sd.setdefault("rope.freqs", _rope_freqs(model.config.hidden_size // model.config.num_heads))
    weights.load_into(model, sd, "Open-Sora 1.1 STDiT2")
    return model


def load_stdit2(
    path: str | Path, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu"
) -> STDiT2:
    """Build STDiT2 from its ``config.json`` (XL/2 defaults when there is none) and load the weights."""
    config_path, model_path = checkpoint_files(path, STDIT2_SOURCE)
    config = STDiT2Config.from_json(config_path) if config_path else STDiT2Config()
    model = STDiT2(config)
    load_stdit2_state_dict(model, read_state_dict(model_path))
    return _finish(model, dtype, device)


def save_pretrained(model: torch.nn.Module, folder: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (the HF layout) for tests and conversions."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), indent=2))
    save_file(
        {k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors")
    )
    return folder


def fit_caption_table(sd: dict[str, torch.Tensor], length: int, key: str = "y_embedding.") -> None:
    """Pad (repeating the last row) or cut the learned null caption to ``length`` tokens, in place,
    as upstream does when a checkpoint meets a model with another ``model_max_length``."""
    for k in [k for k in sd if k.endswith(key + "y_embedding") or k == "y_embedder.y_embedding"]:
        table = sd[k]
        if table.shape[0] < length:
            table = torch.cat([table, table[-1:].expand(length - table.shape[0], -1)])
        sd[k] = table[:length]


def stdit_config_for(path: str | Path) -> STDiTConfig:
    """Config of a released v1.0 file from its name: the 256² models were trained with
    ``space_scale`` 0.5, the 512² ones with 1.0; ``64x`` (64-frame) models with ``time_scale`` 2/3."""
    name = Path(path).name.lower()
    return STDiTConfig(space_scale=0.5 if "256" in name else 1.0, time_scale=2 / 3 if "64x" in name else 1.0)


def load_stdit(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    config: STDiTConfig | None = None,
) -> STDiT:
    """Build STDiT (v1.0) and load a released ``.pth`` or HF-format folder.

    The stored positional tables (``pos_embed``, ``pos_embed_temporal``) are dropped, as upstream
    does: the network computes them from ``space_scale``/``time_scale``. Without a config file the
    scales are read from the file name (:func:`stdit_config_for`).
    """
    config_path, model_path = checkpoint_files(path, STDIT_SOURCE)
    if config is None:
        config = STDiTConfig.from_json(config_path) if config_path else stdit_config_for(model_path)
    sd = read_state_dict(model_path)
    sd = {k: v for k, v in sd.items() if k not in ("pos_embed", "pos_embed_temporal")}
    fit_caption_table(sd, config.model_max_length)
    model = STDiT(config)
    weights.load_into(model, sd, "Open-Sora 1.0 STDiT")
    return _finish(model, dtype, device)


def pixart_config_for(path: str | Path) -> PixArtConfig:
    """Config of a released PixArt file from its name (trained size, positional-table scale
    ``space_scale`` = pe interpolation, caption length 120 for α and 300 for Σ, MS micro-conditions
    for α-1024-MS). :func:`load_pixart` further corrects width, depth, caption length and the
    micro-conditions from the tensors in the file."""
    name = Path(path).name
    sigma = "sigma" in name.lower()
    size = 256
    for pixels in (2048, 1024, 512, 256):
        if str(pixels) in name or (pixels == 2048 and "2K" in name):
            size = pixels
            break
    latent = size // 8
    return PixArtConfig(
        input_size=(latent, latent),
        space_scale={256: 0.5 if sigma else 1.0, 512: 1.0, 1024: 2.0, 2048: 4.0}[size],
        model_max_length=300 if sigma else 120,
        micro_conditions="MS" in name and not sigma,
    )


def _pixart_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Released PixArt tensors with the 2-D patch kernel made 3-D and the stored tables dropped."""
    sd = read_state_dict(path)
    sd = {k: v for k, v in sd.items() if k not in ("pos_embed", "pos_embed_temporal")}
    kernel = sd.get("x_embedder.proj.weight")
    if kernel is not None and kernel.dim() == 4:
        sd["x_embedder.proj.weight"] = kernel.unsqueeze(2)
    return sd


def load_pixart(
    path: str | Path,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
    config: PixArtConfig | None = None,
) -> PixArt:
    """Build PixArt-α/Σ (α-MS included) and load a released ``.pth``/``.safetensors``."""
    config_path, model_path = checkpoint_files(path, PIXART_SOURCE)
    sd = _pixart_state_dict(model_path)
    if config is None:
        if config_path:
            config = PixArtConfig.from_json(config_path)
        else:
            config = pixart_config_for(model_path)
            hidden = sd["t_block.1.weight"].shape[1]
            depth = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
            config.hidden_size, config.depth, config.num_heads = hidden, depth, hidden // 72
            config.model_max_length = sd["y_embedder.y_embedding"].shape[0]
            config.micro_conditions = any(k.startswith("csize_embedder.") for k in sd)
    fit_caption_table(sd, config.model_max_length)
    model = PixArt(config)
    weights.load_into(model, sd, "PixArt")
    return _finish(model, dtype, device)
