"""ComfyUI nodes for Open-Sora 1.2 (text/image → video on plain PyTorch).

Loader → Text Encoder (T5, CONDITIONING with mask) → [Encoder: IMAGE → LATENT references] →
Sampler (rectified flow, LATENT) → Decoder (exactly T frames, IMAGE).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..pipelines.core import weights
from ..pipelines.core.device import DTYPE_CHOICES, get_offload_device, get_torch_device, resolve_dtype
from ..pipelines.core.errors import InputError, MissingWeightsError
from ..pipelines.core.memory import on_device
from ..pipelines.opensora import aspect, captions, generate, loading, text

FOLDER = "opensora"
T5_FOLDER = "text_encoders"
CATEGORY = "MotionSuite/OpenSora"
DIT_DEFAULT = "OpenSora-STDiT-v3"
VAE_DEFAULT = "OpenSora-VAE-v1.2"
T5_DEFAULT = "t5-v1_1-xxl"
_T5_CACHE: dict[tuple[str, str], text.T5] = {}
#: T5 caption lengths by model version (upstream ``model_max_length``).
MAX_TOKENS = {"300 (v1.2, PixArt-Σ)": 300, "200 (v1.1)": 200, "120 (v1.0, PixArt-α)": 120}


def _folders(folder: str, want_vae: bool | None = None) -> list[str]:
    names = [Path(p).parent.as_posix() for p in weights.list_files(folder, ("config.json",))]
    names = [n for n in names if n != "."]
    if want_vae is not None:
        names = [n for n in names if ("vae" in n.lower()) == want_vae]
    return names


def _resolve_folder(folder: str, name: str, origin: str) -> Path:
    path = weights.find_file(folder, name)
    if path is None or not path.is_dir():
        raise MissingWeightsError(
            f"Folder '{name}' not found in {[str(d) for d in weights.search_dirs(folder)]}. "
            f"Download {origin} into models/{folder}/{name}."
        )
    return path


def _conditioning(cond, what: str) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    if cond is None:
        return None
    try:
        y, extra = cond[0][0], cond[0][1]
    except (TypeError, IndexError, KeyError) as exc:
        raise InputError(f"{what} must be CONDITIONING from the Open-Sora text encoder.") from exc
    if extra.get("opensora_null"):
        return None
    mask = extra.get("attention_mask")
    if mask is None:
        raise InputError(
            f"{what} has no T5 attention mask; encode the prompt with the Open-Sora text encoder."
        )
    return y, mask


def _prompt_inputs() -> dict:
    """Prompt, negative and v1.2 score inputs shared by both text encoder nodes."""
    return {
        "prompt": ("STRING", {"default": "", "multiline": True, "tooltip": "What the video shows."}),
        "negative_prompt": (
            "STRING",
            {
                "default": "",
                "multiline": True,
                "tooltip": "Empty = the model's learned null caption (upstream default).",
            },
        ),
        "aesthetic_score": (
            "FLOAT",
            {
                "default": 6.5,
                "min": 0.0,
                "max": 7.0,
                "step": 0.1,
                "tooltip": "Appends 'aesthetic score: X.'; 0 = off.",
            },
        ),
        "motion_score": (
            "FLOAT",
            {
                "default": 0.0,
                "min": 0.0,
                "max": 100.0,
                "step": 1.0,
                "tooltip": "Appends 'motion score: X.' (low = calm); 0 = off.",
            },
        ),
        "camera_motion": (
            list(text.CAMERA_MOTIONS),
            {"default": "none", "tooltip": "Appends 'camera motion: …' (followed loosely)."},
        ),
        "clean_caption": (
            "BOOLEAN",
            {
                "default": False,
                "tooltip": "Clean the prompts as the training captions were (lower case; no URLs, "
                "HTML, @handles, hashtags, CJK; quotes and dashes unified).",
            },
        ),
    }


def _prompts(prompt: str, negative_prompt: str, aesthetic_score, motion_score, camera_motion, clean=False):
    """(full prompt with score suffixes, negative or '') after checking the prompt is not empty.

    Cleaning comes after the suffixes, as upstream does it (the suffixes survive it unchanged)."""
    if not prompt.strip():
        raise InputError("prompt is empty; describe the video to generate.")
    full = text.add_scores(prompt.strip(), aesthetic_score or None, motion_score or None, camera_motion)
    negative = negative_prompt.strip()
    if clean:
        full, negative = captions.clean(full), captions.clean(negative) if negative else ""
        if not full:
            raise InputError("the prompt is empty after caption cleaning; turn clean_caption off.")
    return full, negative


def _text_outputs(y: torch.Tensor, mask: torch.Tensor, prompts: list[str]) -> tuple[list, list]:
    """CONDITIONING pair: features + mask per prompt; no negative → the model's null caption."""
    positive = [[y[:1], {"attention_mask": mask[:1], "opensora_prompt": prompts[0]}]]
    if len(prompts) > 1:
        negative = [[y[1:], {"attention_mask": mask[1:], "opensora_prompt": prompts[1]}]]
    else:
        negative = [[torch.zeros(1, 1, y.shape[-1]), {"opensora_null": True}]]
    return positive, negative


class OpenSoraLoader:
    """Loads STDiT3 + VAE 1.2 and fixes the output size and length (nothing goes to the GPU yet)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "dit": (
                    _folders(FOLDER, False) or [DIT_DEFAULT],
                    {
                        "tooltip": "Folder under models/opensora with config.json + model.safetensors "
                        "of hpcai-tech/OpenSora-STDiT-v3."
                    },
                ),
                "vae": (
                    _folders(FOLDER, True) or [VAE_DEFAULT],
                    {"tooltip": "Folder under models/opensora with hpcai-tech/OpenSora-VAE-v1.2."},
                ),
                "resolution": (
                    list(aspect.RESOLUTIONS),
                    {"default": "240p", "tooltip": "Pixel budget; v1.2 was trained up to 720p."},
                ),
                "aspect_ratio": (
                    list(aspect.ASPECT_RATIOS),
                    {"default": "16:9 landscape", "tooltip": "Width:height of the video."},
                ),
                "frames": (
                    "INT",
                    {
                        "default": 51,
                        "min": 1,
                        "max": 816,
                        "tooltip": "Frames to make: 1 = image; "
                        "51 ≈ 2 s, 102 ≈ 4 s at 24 fps (multiples of 17 fill the VAE chunks).",
                    },
                ),
                "fps": (
                    "FLOAT",
                    {
                        "default": 24.0,
                        "min": 1.0,
                        "max": 120.0,
                        "step": 1.0,
                        "tooltip": "Frame rate the model is told (conditions motion).",
                    },
                ),
                "precision": (DTYPE_CHOICES, {"default": "auto", "tooltip": "DiT and VAE precision."}),
                "custom_width": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 2048,
                        "step": 16,
                        "tooltip": "Override the table size (with custom_height); 0 = use the table.",
                    },
                ),
                "custom_height": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 2048,
                        "step": 16,
                        "tooltip": "Override the table size (with custom_width); 0 = use the table.",
                    },
                ),
                "block_swap": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 28,
                        "tooltip": "Spatial+temporal block pairs kept "
                        "on the CPU and moved in one at a time (saves GPU memory, costs speed).",
                    },
                ),
            }
        }

    RETURN_TYPES = ("MS_OPENSORA_MODEL", "INT", "INT", "INT", "FLOAT")
    RETURN_NAMES = ("model", "width", "height", "frames", "fps")
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(
        self,
        dit,
        vae,
        resolution="240p",
        aspect_ratio="16:9 landscape",
        frames=51,
        fps=24.0,
        precision="auto",
        custom_width=0,
        custom_height=0,
        block_swap=0,
    ):
        height, width = aspect.image_size(resolution, aspect_ratio)
        if custom_width or custom_height:
            if not (custom_width and custom_height) or custom_width % 16 or custom_height % 16:
                raise InputError(
                    f"custom size {custom_width}x{custom_height}: give both, as multiples of 16 "
                    "(VAE 8 × patch 2), or 0 for the table size."
                )
            height, width = int(custom_height), int(custom_width)
        dtype = resolve_dtype(precision, get_torch_device())
        dit_dir = _resolve_folder(FOLDER, dit, "https://huggingface.co/hpcai-tech/OpenSora-STDiT-v3")
        vae_dir = _resolve_folder(FOLDER, vae, "https://huggingface.co/hpcai-tech/OpenSora-VAE-v1.2")
        offload = get_offload_device()
        model = generate.OpenSoraModel(
            dit=loading.load_stdit3(dit_dir, dtype=dtype, device=offload),
            vae=loading.load_vae(vae_dir, dtype=dtype, device=offload),
            height=height,
            width=width,
            num_frames=int(frames),
            fps=float(fps),
            dtype=dtype,
            block_swap=int(block_swap),
            name=dit,
        )
        generate.check_frames(model, model.num_frames)
        return (model, width, height, model.num_frames, float(fps))


class OpenSoraTextEncoder:
    """T5-XXL prompt features with their mask, plus the v1.2 score suffixes."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "t5": (
                    _folders(T5_FOLDER) or [T5_DEFAULT],
                    {
                        "tooltip": "Folder under models/text_encoders "
                        "with DeepFloyd/t5-v1_1-xxl (transformers layout)."
                    },
                ),
                **_prompt_inputs(),
                "precision": (DTYPE_CHOICES, {"default": "auto", "tooltip": "T5 precision (bf16 ≈ 9.5 GB)."}),
            }
        }

    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    def encode(
        self,
        t5,
        prompt,
        negative_prompt="",
        aesthetic_score=6.5,
        motion_score=0.0,
        camera_motion="none",
        clean_caption=False,
        precision="auto",
    ):
        full, negative = _prompts(
            prompt, negative_prompt, aesthetic_score, motion_score, camera_motion, clean_caption
        )
        dtype = resolve_dtype(precision, get_torch_device())
        path = _resolve_folder(T5_FOLDER, t5, "https://huggingface.co/DeepFloyd/t5-v1_1-xxl")
        key = (str(path), str(dtype))
        if key not in _T5_CACHE:
            _T5_CACHE.clear()
            _T5_CACHE[key] = text.load_t5(path, dtype=dtype)
        model = _T5_CACHE[key]
        prompts = [full] + ([negative] if negative else [])
        with on_device(model.encoder) as device:
            y, mask = text.encode(model, prompts, device)
        return _text_outputs(y, mask, prompts)


# Shared by the v1.2 and the legacy Encoder nodes (same meaning, same widget order).
ENCODE_OPTIONS = {
    "fit": (
        ["crop", "pad", "stretch"],
        {"default": "crop", "tooltip": "How images of another aspect ratio are fitted."},
    ),
    "deterministic": (
        "BOOLEAN",
        {"default": True, "tooltip": "Posterior mean instead of a sample (upstream samples)."},
    ),
    "seed": (
        "INT",
        {
            "default": 0,
            "min": 0,
            "max": 0xFFFFFFFFFFFFFFFF,
            "tooltip": "Seed of the posterior sample when not deterministic.",
        },
    ),
}


class OpenSoraEncoder:
    """IMAGE frames → Open-Sora latents (references for image/video conditioning)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_OPENSORA_MODEL", {"tooltip": "From the Open-Sora loader (size and VAE)."}),
                "images": ("IMAGE", {"tooltip": "Image(s) or video frames; resized to the model size."}),
                "as_video": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "On: the frames are one clip (for "
                        "'extend'). Off: each image is its own reference (first/last/keyframes).",
                    },
                ),
                **ENCODE_OPTIONS,
            },
            "optional": {
                "more_images": (
                    "IMAGE",
                    {
                        "tooltip": "Further reference image(s) appended after 'images' (e.g. the last "
                        "frame), each fitted on its own; only with as_video off."
                    },
                ),
            },
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("reference",)
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    def encode(self, model, images, as_video=False, fit="crop", deterministic=True, seed=0, more_images=None):
        for value in (images, more_images):
            if value is not None and (
                not isinstance(value, torch.Tensor) or value.dim() != 4 or value.shape[-1] not in (3, 4)
            ):
                raise InputError("images must be an IMAGE batch (N,H,W,3).")
        out = generate.encode_frames(model, images[..., :3], as_video, fit, deterministic, seed)
        if more_images is not None:
            if as_video:
                raise InputError("more_images works with as_video off (separate reference images).")
            more = generate.encode_frames(model, more_images[..., :3], False, fit, deterministic, seed + 1)
            out = {"samples": torch.cat([out["samples"], more["samples"]]), "num_frames": 1}
        return (out,)


class OpenSoraSampler:
    """Rectified-flow sampling with CFG and optional image/video conditioning."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_OPENSORA_MODEL", {"tooltip": "From the Open-Sora loader."}),
                "positive": ("CONDITIONING", {"tooltip": "From the Open-Sora text encoder."}),
                "seed": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 0xFFFFFFFFFFFFFFFF,
                        "tooltip": "Noise seed (noise is drawn on the CPU: same video on any device).",
                    },
                ),
                "steps": (
                    "INT",
                    {"default": 30, "min": 1, "max": 200, "tooltip": "Sampling steps (v1.2: 30)."},
                ),
                "guidance": (
                    "FLOAT",
                    {
                        "default": 7.0,
                        "min": 1.0,
                        "max": 20.0,
                        "step": 0.1,
                        "tooltip": "Classifier-free guidance scale (v1.2: 7).",
                    },
                ),
                "mode": (
                    list(generate.MODES),
                    {
                        "default": "none",
                        "tooltip": "How the reference is used: "
                        "first frame (I2V), first + last frame, keyframes at given frames, extend a video "
                        "from its last frames, or upstream's mask strategy string.",
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
                    {
                        "default": "0",
                        "tooltip": "Frame numbers of the reference images for 'keyframes', e.g. '0,25,50'.",
                    },
                ),
                "extend_frames": (
                    "INT",
                    {
                        "default": 17,
                        "min": 1,
                        "max": 408,
                        "tooltip": "For 'extend': how many last frames of the reference clip lead in.",
                    },
                ),
                "mask_strategy": (
                    "STRING",
                    {
                        "default": "0",
                        "tooltip": "Upstream 'loop,ref,ref_start,"
                        "target_start,length,edit_ratio;…' in latent frames (mode 'mask strategy').",
                    },
                ),
                "keep_model_loaded": ("BOOLEAN", {"default": False, "tooltip": "Keep the DiT on the GPU."}),
            },
            "optional": {
                "negative": ("CONDITIONING", {"tooltip": "From the text encoder; empty = null caption."}),
                "reference": (
                    "LATENT",
                    {"tooltip": "From the Open-Sora encoder (needed unless mode is none)."},
                ),
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
        steps=30,
        guidance=7.0,
        mode="none",
        edit_ratio=0.0,
        keyframes="0",
        extend_frames=17,
        mask_strategy="0",
        keep_model_loaded=False,
        negative=None,
        reference=None,
    ):
        pos = _conditioning(positive, "positive")
        if pos is None:
            raise InputError("positive must be an encoded prompt, not the empty negative.")
        neg = _conditioning(negative, "negative")
        latent = generate.generate(
            model,
            pos,
            neg,
            seed=seed,
            steps=steps,
            guidance=guidance,
            reference=reference,
            mode=mode,
            keyframes=keyframes,
            extend_frames=extend_frames,
            mask_strategy=mask_strategy,
            edit_ratio=edit_ratio,
            keep_loaded=keep_model_loaded,
        )
        return (latent,)


class OpenSoraDecoder:
    """Decodes Open-Sora latents chunk by chunk into exactly the requested frames."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_OPENSORA_MODEL", {"tooltip": "From the Open-Sora loader (its VAE is used)."}),
                "latent": ("LATENT", {"tooltip": "From the Open-Sora sampler."}),
                "frames": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 816,
                        "tooltip": "Frames to output; 0 = the count the latent was made for.",
                    },
                ),
                "batch_size": (
                    "INT",
                    {
                        "default": 4,
                        "min": 1,
                        "max": 64,
                        "tooltip": "Frames per spatial VAE call (lower = less memory).",
                    },
                ),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "decode"
    CATEGORY = CATEGORY

    def decode(self, model, latent, frames=0, batch_size=4):
        return (generate.decode(model, latent, frames, batch_size),)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_OpenSora_Loader": OpenSoraLoader,
    "MotionSuite_OpenSora_TextEncoder": OpenSoraTextEncoder,
    "MotionSuite_OpenSora_Encoder": OpenSoraEncoder,
    "MotionSuite_OpenSora_Sampler": OpenSoraSampler,
    "MotionSuite_OpenSora_Decoder": OpenSoraDecoder,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_OpenSora_Loader": "Loader (Open-Sora)",
    "MotionSuite_OpenSora_TextEncoder": "Text Encoder (Open-Sora)",
    "MotionSuite_OpenSora_Encoder": "Encoder (Open-Sora)",
    "MotionSuite_OpenSora_Sampler": "Sampler (Open-Sora)",
    "MotionSuite_OpenSora_Decoder": "Decoder (Open-Sora)",
}
