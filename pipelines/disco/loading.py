"""Load DisCo checkpoints (DeepSpeed ``mp_rank_00_model_states.pt`` or a converted safetensors).

The released files hold ``Net.state_dict()`` under ``module``; each component maps onto a stock
diffusers/transformers class after stripping its prefix. Two renames are needed:

* the VAE mid-block attention was saved with diffusers-0.14 names (``query/key/value/proj_attn``),
  today ``to_q/to_k/to_v/to_out.0``;
* ``clip_image_encoder.vision_model.embeddings.position_ids`` is a non-persistent buffer in current
  transformers and is dropped.

Temporal checkpoints (DisCo's ``TemConvNet``) have the same keys plus ``tem_norm``/``tem_conv`` in
every ResNet and ``tem_attn``/``tem_norm`` in every transformer block; :func:`is_temporal_state_dict`
tells them apart and the model is built with the temporal layers before the strict load.

Module configs (UNet, VAE, CLIP vision, scheduler) come from the base model folder
``lambdalabs/sd-image-variations-diffusers`` because the DisCo checkpoint has no configs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import CLIPVisionConfig

from ...models.disco import DiscoModel
from ..core.errors import WeightsMismatchError

#: checkpoint prefix → DiscoModel attribute
PREFIXES: dict[str, str] = {
    "unet.": "unet",
    "controlnet.nets.0.": "pose_controlnet",
    "controlnet.nets.1.": "background_controlnet",
    "clip_image_encoder.": "clip",
    "refer_clip_proj.": "refer_clip_proj",
    "vae.": "vae",
}

_OLD_VAE_ATTENTION = {
    ".query.": ".to_q.",
    ".key.": ".to_k.",
    ".value.": ".to_v.",
    ".proj_attn.": ".to_out.0.",
}
_DROPPED = ("vision_model.embeddings.position_ids",)
# Parts of Net.state_dict() that inference does not use (text branch of ablations, if present).
_IGNORED_PREFIXES = ("text_encoder.",)


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Return the flat DisCo state dict from a DeepSpeed ``.pt`` (``module`` entry) or ``.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"DisCo checkpoint {path} not found. Put an mp_rank_00_model_states.pt from the DisCo README "
            "(github.com/Wangt-CN/DisCo, 'Model Checkpoints') or a converted .safetensors there."
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        raw = _torch_load(path)
    except Exception as exc:  # pickle restrictions give several exception types
        raise ValueError(
            f"Could not read {path} as a plain tensor checkpoint ({exc}). Convert it once to safetensors "
            "in a trusted environment, or re-save only its 'module' entry."
        ) from exc
    sd = raw.get("module", raw) if isinstance(raw, Mapping) else None
    if not isinstance(sd, Mapping) or not any(k.startswith("unet.") for k in sd):
        raise ValueError(
            f"{path} does not look like a DisCo checkpoint: no 'module' dict with 'unet.*' keys."
        )
    return dict(sd)


def _torch_load(path: Path):
    """``torch.load`` with mmap: tensors stay backed by the file until used, so the 4.5 GB pickle is
    not read into RAM beside the model (weights are assigned, not copied, when dtypes match). Files
    in the legacy (pre-zip) format cannot be mapped and are read normally."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(str(path), map_location="cpu", weights_only=True)


def split_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Split a flat DisCo state dict into per-component dicts with today's key names.

    A stage-1 pre-training checkpoint (single ``controlnet.*``) is accepted: it is the background
    ControlNet, as upstream renames it before fine-tuning.
    """
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in PREFIXES.values()}
    unknown = []
    for key, value in sd.items():
        if key.startswith("controlnet.") and not key.startswith("controlnet.nets."):
            key = "controlnet.nets.1." + key[len("controlnet.") :]
        for prefix, name in PREFIXES.items():
            if key.startswith(prefix):
                sub = key[len(prefix) :]
                if name == "vae":
                    sub = rename_old_vae_key(sub)
                if sub not in _DROPPED:
                    parts[name][sub] = value
                break
        else:
            if not key.startswith(_IGNORED_PREFIXES):
                unknown.append(key)
    if unknown:
        raise ValueError(f"Unexpected keys in DisCo checkpoint (first 5): {unknown[:5]}")
    return parts


def is_temporal_state_dict(sd: Mapping[str, torch.Tensor]) -> bool:
    """True for a temporal (TemConvNet) checkpoint: its UNet has temporal conv/attention layers."""
    return any(k.startswith("unet.") and (".tem_conv." in k or ".tem_attn." in k) for k in sd)


def rename_old_vae_key(key: str) -> str:
    """diffusers-0.14 VAE attention names → current names (only inside ``attentions.``)."""
    if ".attentions." not in key:
        return key
    for old, new in _OLD_VAE_ATTENTION.items():
        key = key.replace(old, new)
    return key


def preferred_checkpoint(path: str | Path) -> Path:
    """A converted ``<name>.safetensors`` beside the ``.pt`` is preferred (no pickle, half the size)."""
    path = Path(path)
    converted = path.with_suffix(".safetensors")
    return converted if path.suffix != ".safetensors" and converted.is_file() else path


def convert_to_safetensors(src: str | Path, dst: str | Path | None = None, dtype=torch.float16) -> Path:
    """Save a DeepSpeed checkpoint's ``module`` as safetensors (floats in ``dtype``, CLIP kept fp32)."""
    from safetensors.torch import save_file

    src = Path(src)
    dst = Path(dst) if dst else src.with_suffix(".safetensors")
    sd = read_checkpoint(src)
    out = {}
    for key, value in sd.items():
        if torch.is_floating_point(value) and not key.startswith("clip_image_encoder."):
            value = value.to(dtype)
        out[key] = value.contiguous()
    save_file(out, str(dst), metadata={"source": src.name, "format": "disco-module"})
    return dst


def read_base_configs(base_dir: str | Path) -> dict:
    """Read unet/vae/image_encoder/scheduler configs of the sd-image-variations folder."""
    base_dir = Path(base_dir)
    files = {
        "unet": base_dir / "unet" / "config.json",
        "vae": base_dir / "vae" / "config.json",
        "clip": base_dir / "image_encoder" / "config.json",
        "scheduler": base_dir / "scheduler" / "scheduler_config.json",
    }
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Base model folder {base_dir} is incomplete, missing: {missing}. Download "
            "lambdalabs/sd-image-variations-diffusers (Hugging Face) into it (configs suffice when the "
            "DisCo checkpoint has all weights)."
        )
    configs = {name: json.loads(p.read_text()) for name, p in files.items()}
    configs["clip"] = CLIPVisionConfig(**{k: v for k, v in configs["clip"].items() if not k.startswith("_")})
    return configs


def build_model(configs: dict, temporal: bool = False, device: str | torch.device = "cpu") -> DiscoModel:
    """Random-weight DisCo (image model, or the temporal one) with the base folder's configs.

    ``device="meta"`` builds only the structure (no memory, no random init); :func:`load_weights`
    then assigns the checkpoint's tensors.
    """
    with torch.device(device):
        return DiscoModel.from_configs(
            configs["unet"], configs["vae"], configs["clip"], configs["scheduler"], temporal=temporal
        )


def load_weights(
    model: DiscoModel, sd: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None
) -> DiscoModel:
    """Strictly load a flat DisCo state dict into ``model``; errors name the component and keys.

    Weights are cast to ``dtype`` (default: the model's current dtypes; CLIP always stays fp32).
    A model built on the meta device gets the checkpoint tensors assigned, so no second copy of the
    weights is ever made when the checkpoint already has the wanted dtype.
    """
    parts = split_state_dict(sd)
    for name, module in model.modules().items():
        part = parts[name]
        if not part:
            raise ValueError(
                f"DisCo checkpoint has no weights for {name} (prefix "
                f"{next(p for p, n in PREFIXES.items() if n == name)!r})."
            )
        own = module.state_dict()
        missing = sorted(set(own) - set(part))
        unexpected = sorted(set(part) - set(own))
        bad_shape = [k for k in own if k in part and tuple(own[k].shape) != tuple(part[k].shape)]
        if missing or unexpected or bad_shape:
            raise WeightsMismatchError(
                f"DisCo checkpoint does not match the base model configs for {name}: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}, shape mismatch {bad_shape[:5]}. Check that the base folder is "
                f"lambdalabs/sd-image-variations-diffusers and the file is a DisCo "
                f"{'temporal' if model.temporal else 'image'} checkpoint."
            )
        on_meta = any(t.is_meta for t in own.values())
        wanted = torch.float32 if name == "clip" else dtype
        for key in list(part):  # cast one tensor at a time, dropping the source as we go
            floating = torch.is_floating_point(own[key])
            part[key] = part[key].to(wanted if floating and wanted is not None else own[key].dtype)
        module.load_state_dict(part, strict=True, assign=on_meta)
        parts[name] = {}
    _materialise_buffers(model)
    return model


def _materialise_buffers(model: DiscoModel) -> None:
    """Non-persistent buffers (not in checkpoints) of a meta-built model: CLIP's ``position_ids``."""
    embeddings = model.clip.vision_model.embeddings
    if embeddings.position_ids.is_meta:
        positions = torch.arange(embeddings.num_positions).expand((1, -1))
        embeddings.register_buffer("position_ids", positions, persistent=False)


def load_disco(
    base_dir: str | Path,
    checkpoint: str | Path,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> DiscoModel:
    """Build DisCo from base configs and load a released checkpoint; CLIP is kept in fp32.

    Image or temporal model is chosen from the checkpoint's keys.
    """
    configs = read_base_configs(base_dir)
    sd = read_checkpoint(preferred_checkpoint(checkpoint))
    model = build_model(configs, temporal=is_temporal_state_dict(sd), device="meta")
    load_weights(model, sd, dtype=dtype)
    del sd
    model.name = Path(checkpoint).parent.name or Path(checkpoint).stem
    return model.to(device=device, dtype=dtype)


def released_state_dict(model: DiscoModel) -> dict[str, torch.Tensor]:
    """Inverse of :func:`split_state_dict`: flat dict in the released key layout (for conversion/tests)."""
    inverse_vae = {new: old for old, new in _OLD_VAE_ATTENTION.items()}
    out: dict[str, torch.Tensor] = {}
    for prefix, name in PREFIXES.items():
        for key, value in model.modules()[name].state_dict().items():
            if name == "vae" and ".attentions." in key:
                for new, old in inverse_vae.items():
                    key = key.replace(new, old)
            out[prefix + key] = value
    return out
