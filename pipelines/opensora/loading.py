"""Loading the released Open-Sora 1.2 files onto the pack's networks.

* STDiT3: a folder with ``config.json`` + ``model.safetensors`` (``hpcai-tech/OpenSora-STDiT-v3``)
  or a single ``.safetensors`` beside a same-named ``.json``; keys load unchanged. Older exports
  may lack the deterministic ``rope.freqs``; it is filled in.
* VAE 1.2: see :mod:`.vae_loading`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from ...models.opensora import STDiT3, STDiT3Config
from ..core import weights
from ..core.errors import MissingWeightsError


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
