"""ComfyUI nodes for Open-Sora 1.1 / 1.0 (video) and PixArt-α/Σ (images) with the SD VAE.

Legacy Loader → Text Encoder (Open-Sora's, shared) → [Legacy Encoder: IMAGE → reference LATENT] →
Legacy Sampler (IDDPM / DPM-Solver++, LATENT) → Legacy Decoder (or ComfyUI's VAE Decode).
LATENTs hold unscaled SD-VAE latents with frames as the batch, as ComfyUI's own SD latents.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ..pipelines.core import weights
from ..pipelines.core.device import DTYPE_CHOICES, get_torch_device, resolve_dtype
from ..pipelines.core.errors import InputError, MissingWeightsError
from ..pipelines.opensora import aspect
from ..pipelines.opensora_legacy import generate, versions
from .opensora import ENCODE_OPTIONS
from .opensora import _conditioning as opensora_conditioning

log = logging.getLogger("MotionSuite")

FOLDER = "opensora"
VAE_FOLDERS = ("opensora", "vae")
CATEGORY = "MotionSuite/OpenSora"
DEFAULT = "(version default)"
TRAINED = "trained size"
MODEL_TYPE = "MS_OPENSORA_LEGACY_MODEL"
_DIT_EXTS = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


#: model types of Open-Sora 1.2 folders, which have their own loader
_V12_TYPES = ("stdit3", "videoautoencoderpipeline")


def _config_kind(path: Path) -> str:
    """'vae' (diffusers AutoencoderKL), 'v1.2' (STDiT3 / VAE 1.2 folders) or 'dit'."""
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return "dit"
    if not isinstance(config, dict):
        return "dit"
    if "AutoencoderKL" in str(config.get("_class_name", "")):
        return "vae"
    names = [str(config.get("model_type", "")), *map(str, config.get("architectures") or [])]
    return "v1.2" if any(n.lower() in _V12_TYPES for n in names) else "dit"


def _config_folders(folder: str) -> dict[str, str]:
    """Folders holding a config.json under ``folder`` → their kind (see :func:`_config_kind`)."""
    found: dict[str, str] = {}
    for rel in weights.list_files(folder, ("config.json",)):
        parent = Path(rel).parent.as_posix()
        path = weights.find_file(folder, rel)
        if parent != "." and path is not None and parent not in found:
            found[parent] = _config_kind(path)
    return found


def checkpoint_choices() -> list[str]:
    folders = _config_folders(FOLDER)
    dits = [name for name, kind in folders.items() if kind == "dit"]
    for rel in weights.list_files(FOLDER, _DIT_EXTS):
        if not any(rel.startswith(f + "/") for f in folders):
            dits.append(rel)
    return [DEFAULT, *dits]


def vae_choices() -> list[str]:
    names = [DEFAULT]
    for folder in VAE_FOLDERS:
        names += [n for n, kind in _config_folders(folder).items() if kind == "vae" and n not in names]
    return names


def _find(name: str, folders: tuple[str, ...], source: str) -> Path:
    for folder in folders:
        path = weights.find_file(folder, name)
        if path is not None:
            return path
    dirs = [str(d) for f in folders for d in weights.search_dirs(f)]
    raise MissingWeightsError(f"'{name}' not found in {dirs}. Download {source} into models/{folders[0]}/.")


def _conditioning(cond, what: str):
    """The v1.2 text encoder's CONDITIONING (shared reader), with a warning for v1.2-only suffixes."""
    tensors = opensora_conditioning(cond, what)
    if tensors is not None and "score:" in str(cond[0][1].get("opensora_prompt", "")):
        log.warning(
            "Open-Sora legacy: the prompt carries v1.2 score suffixes ('aesthetic score: …'); v1.0/v1.1 and "
            "PixArt were not trained with them. Set aesthetic/motion score to 0 on the text encoder."
        )
    return tensors


class OpenSoraLegacyLoader:
    """Loads an Open-Sora 1.1 / 1.0 or PixArt checkpoint with its SD VAE (kept off the GPU until used)."""

    @classmethod
    def INPUT_TYPES(cls):
        labels = [v.label for v in versions.VERSIONS.values()]
        defaults = ", ".join(f"{v.key}: {v.checkpoint}" for v in versions.VERSIONS.values())
        return {
            "required": {
                "version": (labels, {"default": labels[0], "tooltip": "Model generation (video or image)."}),
                "checkpoint": (
                    checkpoint_choices(),
                    {
                        "default": DEFAULT,
                        "tooltip": f"File or folder under models/opensora; default: {defaults}.",
                    },
                ),
                "vae": (
                    vae_choices(),
                    {
                        "default": DEFAULT,
                        "tooltip": "diffusers AutoencoderKL folder under models/opensora or "
                        "models/vae; default: sd-vae-ft-ema (PixArt-Σ: sdxl-vae).",
                    },
                ),
                "resolution": (
                    [TRAINED, *aspect.RESOLUTIONS],
                    {
                        "default": TRAINED,
                        "tooltip": "Pixel budget; 'trained size' = 240×426 (v1.1) or the file's "
                        "256/512/1024 square (v1.0, PixArt).",
                    },
                ),
                "aspect_ratio": (
                    list(aspect.ASPECT_RATIOS),
                    {"default": "16:9 landscape", "tooltip": "Width:height (with a resolution)."},
                ),
                "frames": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 256,
                        "tooltip": "Video frames (v1.0/v1.1; 0 = 16 as trained) or images per batch "
                        "(PixArt; 0 = 1).",
                    },
                ),
                "fps": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 120.0,
                        "step": 1.0,
                        "tooltip": "Frame rate told to v1.1 (0 = 24, as trained); output fps is this / 3.",
                    },
                ),
                "precision": (DTYPE_CHOICES, {"default": "auto", "tooltip": "DiT and VAE precision."}),
                "custom_width": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 4096,
                        "step": 8,
                        "tooltip": "Override the size (with custom_height), multiple of 8; 0 = off.",
                    },
                ),
                "custom_height": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 4096,
                        "step": 8,
                        "tooltip": "Override the size (with custom_width), multiple of 8; 0 = off.",
                    },
                ),
            },
            "optional": {
                "comfy_vae": (
                    "VAE",
                    {
                        "tooltip": "Optional ComfyUI VAE (Load VAE: vae-ft-ema-560000-ema-pruned, PixArt-Σ: "
                        "sdxl_vae) used instead of the vae folder."
                    },
                ),
            },
        }

    RETURN_TYPES = (MODEL_TYPE, "INT", "INT", "INT", "FLOAT")
    RETURN_NAMES = ("model", "width", "height", "frames", "fps")
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(
        self,
        version,
        checkpoint=DEFAULT,
        vae=DEFAULT,
        resolution=TRAINED,
        aspect_ratio="16:9 landscape",
        frames=0,
        fps=0.0,
        precision="auto",
        custom_width=0,
        custom_height=0,
        comfy_vae=None,
    ):
        spec = versions.get(version)
        dit_path = _find(
            spec.checkpoint if checkpoint == DEFAULT else checkpoint, (FOLDER,), spec.checkpoint_source
        )
        if comfy_vae is not None:
            vae_path = comfy_vae
        else:
            vae_path = _find(spec.vae if vae == DEFAULT else vae, VAE_FOLDERS, spec.vae_source)
        height = width = 0
        if custom_width or custom_height:
            if not (custom_width and custom_height):
                raise InputError("custom size: give both custom_width and custom_height (or 0 for both).")
            height, width = int(custom_height), int(custom_width)
        elif resolution != TRAINED:
            height, width = aspect.image_size(resolution, aspect_ratio)
        dtype = resolve_dtype(precision, get_torch_device())
        model = generate.load_model(
            spec, dit_path, vae_path, height=height, width=width, num_frames=int(frames), fps=float(fps),
            dtype=dtype,
        )  # fmt: skip
        lat_h, lat_w = model.latent_size
        save_fps = spec.save_fps * (model.fps / spec.fps) if spec.video else spec.save_fps
        return (model, lat_w * 8, lat_h * 8, model.num_frames, float(save_fps))


class OpenSoraLegacyEncoder:
    """IMAGE frames → SD-VAE latents: references for v1.1's image/video conditioning."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL_TYPE, {"tooltip": "From the legacy loader (size and VAE)."}),
                "images": ("IMAGE", {"tooltip": "Image(s) or video frames; resized to the model size."}),
                **ENCODE_OPTIONS,
            }
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("reference",)
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    def encode(self, model, images, fit="crop", deterministic=True, seed=0):
        if not hasattr(images, "dim") or images.dim() != 4 or images.shape[-1] not in (3, 4):
            raise InputError("images must be an IMAGE batch (N,H,W,3).")
        return (generate.encode_frames(model, images[..., :3], fit, deterministic, seed),)


class OpenSoraLegacySampler:
    """IDDPM (v1.0/v1.1) or DPM-Solver++ (PixArt) sampling with CFG and v1.1 frame conditioning."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL_TYPE, {"tooltip": "From the legacy loader."}),
                "positive": (
                    "CONDITIONING",
                    {"tooltip": "From the Open-Sora text encoder (scores set to 0)."},
                ),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 0xFFFFFFFFFFFFFFFF,
                        "tooltip": "Noise seed (noise is drawn on the CPU: same result on any device).",
                    },
                ),
                "steps": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 1000,
                        "tooltip": "Sampling steps; 0 = upstream default (IDDPM 100, DPM-Solver++ 20).",
                    },
                ),
                "guidance": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 20.0,
                        "step": 0.1,
                        "tooltip": "Classifier-free guidance; 0 = upstream default (7.0, PixArt-Σ 4.5).",
                    },
                ),
                "sampler": (
                    list(versions.SAMPLERS),
                    {"default": "auto", "tooltip": "auto = IDDPM for v1.0/v1.1, DPM-Solver++ for PixArt."},
                ),
                "mode": (
                    list(generate.MODES),
                    {
                        "default": "none",
                        "tooltip": "v1.1 only: first frame (I2V), first + last, keyframes, extend a clip "
                        "from its last frames, or upstream's mask strategy (in frames).",
                    },
                ),
                "edit_ratio": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.05,
                        "tooltip": "0 = keep reference frames exactly; higher lets them change.",
                    },
                ),
                "keyframes": (
                    "STRING",
                    {"default": "0", "tooltip": "Frame numbers of the reference images for 'keyframes'."},
                ),
                "extend_frames": (
                    "INT",
                    {
                        "default": 4,
                        "min": 1,
                        "max": 256,
                        "tooltip": "For 'extend': how many last frames of the reference lead in.",
                    },
                ),
                "mask_strategy": (
                    "STRING",
                    {
                        "default": "0",
                        "tooltip": "Upstream 'loop,ref,ref_start,target_start,length,edit_ratio;…' in "
                        "frames; the reference frames are reference 0.",
                    },
                ),
                "keep_model_loaded": ("BOOLEAN", {"default": False, "tooltip": "Keep the DiT on the GPU."}),
            },
            "optional": {
                "negative": ("CONDITIONING", {"tooltip": "From the text encoder; empty = null caption."}),
                "reference": ("LATENT", {"tooltip": "From the legacy encoder (needed unless mode is none)."}),
            },
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    FUNCTION = "sample"
    CATEGORY = CATEGORY

    def sample(
        self,
        model,
        positive,
        seed=0,
        steps=0,
        guidance=0.0,
        sampler="auto",
        mode="none",
        edit_ratio=0.0,
        keyframes="0",
        extend_frames=4,
        mask_strategy="0",
        keep_model_loaded=False,
        negative=None,
        reference=None,
    ):
        if not isinstance(model, generate.LegacyModel):
            raise InputError("model must come from the Open-Sora legacy loader (v1.2 has its own sampler).")
        pos = _conditioning(positive, "positive")
        if pos is None:
            raise InputError("positive must be an encoded prompt, not the empty negative.")
        latent = generate.generate(
            model, pos, _conditioning(negative, "negative"), seed=seed, steps=steps, guidance=guidance,
            sampler=sampler, reference=reference, mode=mode, keyframes=keyframes, extend_frames=extend_frames,
            mask_strategy=mask_strategy, edit_ratio=edit_ratio, keep_loaded=keep_model_loaded,
        )  # fmt: skip
        return (latent,)


class OpenSoraLegacyDecoder:
    """SD-VAE latents → frames (or PixArt images), a few at a time."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": (MODEL_TYPE, {"tooltip": "From the legacy loader (its VAE is used)."}),
                "latent": ("LATENT", {"tooltip": "From the legacy sampler or encoder."}),
                "batch_size": (
                    "INT",
                    {
                        "default": 4,
                        "min": 1,
                        "max": 64,
                        "tooltip": "Frames per VAE call (lower = less memory).",
                    },
                ),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "decode"
    CATEGORY = CATEGORY

    def decode(self, model, latent, batch_size=4):
        if not isinstance(model, generate.LegacyModel):
            raise InputError("model must come from the Open-Sora legacy loader.")
        return (generate.decode(model, latent, batch_size),)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_OpenSora_LegacyLoader": OpenSoraLegacyLoader,
    "MotionSuite_OpenSora_LegacyEncoder": OpenSoraLegacyEncoder,
    "MotionSuite_OpenSora_LegacySampler": OpenSoraLegacySampler,
    "MotionSuite_OpenSora_LegacyDecoder": OpenSoraLegacyDecoder,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_OpenSora_LegacyLoader": "Legacy Loader (Open-Sora 1.0/1.1, PixArt)",
    "MotionSuite_OpenSora_LegacyEncoder": "Legacy Encoder (Open-Sora 1.1)",
    "MotionSuite_OpenSora_LegacySampler": "Legacy Sampler (Open-Sora 1.0/1.1, PixArt)",
    "MotionSuite_OpenSora_LegacyDecoder": "Legacy Decoder (Open-Sora 1.0/1.1, PixArt)",
}
