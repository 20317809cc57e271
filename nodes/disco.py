"""ComfyUI nodes for DisCo (reference person + pose sequence + background → dance frames).

Loader → Encoder (reference + masks → MS_DISCO_COND) → Sampler (poses → LATENT) → Decoder (→ IMAGE).
DrawPoses turns POSE_KEYPOINT (comfyui_controlnet_aux) into DisCo-style skeleton images.
"""

from __future__ import annotations

import torch

from ..pipelines.core import weights
from ..pipelines.core.device import DTYPE_CHOICES, get_offload_device, get_torch_device, resolve_dtype
from ..pipelines.core.errors import InputError
from ..pipelines.disco import generate, pose, sampling
from ..pipelines.disco.loading import load_disco

FOLDER = "disco"
CATEGORY = "MotionSuite/DisCo"
BASE_FOLDER_NAME = "sd-image-variations-diffusers"
CHECKPOINT = weights.WeightSpec(
    filename="moretiktok_cfg/mp_rank_00_model_states.pt",
    folder=FOLDER,
    size="≈4.5 GB",
    source="the DisCo README (github.com/Wangt-CN/DisCo, 'Model Checkpoints', NTU OneDrive links)",
    description="DisCo image model (DeepSpeed checkpoint)",
)
BASE = weights.WeightSpec(
    filename=BASE_FOLDER_NAME,
    folder=FOLDER,
    repo_id="lambdalabs/sd-image-variations-diffusers",
    size="configs only are needed",
    description="base model folder (unet/vae/image_encoder/scheduler configs)",
)


def _checkpoints() -> list[str]:
    found = [f for f in weights.list_files(FOLDER, (".pt", ".safetensors")) if BASE_FOLDER_NAME not in f]
    return found or [CHECKPOINT.filename]


class DiscoLoader:
    """Loads a DisCo checkpoint onto the stock diffusers/transformers networks."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "checkpoint": (
                    _checkpoints(),
                    {
                        "tooltip": "DisCo mp_rank_00_model_states.pt (or converted "
                        ".safetensors) under models/disco, image or temporal model (told apart by its "
                        "weights); the parent folder name (e.g. tiktok_cfg) selects the default guidance."
                    },
                ),
                "base_folder": (
                    "STRING",
                    {
                        "default": BASE_FOLDER_NAME,
                        "tooltip": "Folder under models/disco "
                        "holding lambdalabs/sd-image-variations-diffusers (configs are read from it).",
                    },
                ),
                "precision": (
                    DTYPE_CHOICES,
                    {
                        "default": "auto",
                        "tooltip": "UNet/ControlNets/VAE precision; "
                        "the CLIP image encoder always stays fp32.",
                    },
                ),
            }
        }

    RETURN_TYPES = ("MS_DISCO_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, checkpoint: str, base_folder: str, precision: str):
        ckpt = weights.resolve(CHECKPOINT, checkpoint, allow_download=False)
        base = weights.find_file(FOLDER, base_folder)
        if base is None or not base.is_dir():
            raise InputError(
                f"Base folder '{base_folder}' not found in {[str(d) for d in weights.search_dirs(FOLDER)]}. "
                f"Download {BASE.origin} into models/disco/{BASE_FOLDER_NAME}."
            )
        dtype = resolve_dtype(precision, get_torch_device())
        return (load_disco(base, ckpt, dtype=dtype, device=get_offload_device()),)


class DiscoEncoder:
    """Encodes the reference person (CLIP tokens) and the background (VAE latent)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_DISCO_MODEL", {"tooltip": "From the DisCo loader."}),
                "reference": (
                    "IMAGE",
                    {
                        "tooltip": "Person to animate (first image used); centre-cropped to "
                        "a square like DisCo's data."
                    },
                ),
                "cfg_mode": (
                    ["auto", *sampling.CFG_MODES],
                    {
                        "default": "auto",
                        "tooltip": "Unconditional "
                        "branch: zero_image for *_cfg checkpoints, zero_embedding for *_nocfg; auto picks "
                        "by checkpoint name.",
                    },
                ),
                "size": (
                    "INT",
                    {
                        "default": 256,
                        "min": 64,
                        "max": 1024,
                        "step": 64,
                        "tooltip": "Output size "
                        "(square). DisCo was trained at 256; other sizes degrade quality.",
                    },
                ),
            },
            "optional": {
                "reference_mask": (
                    "MASK",
                    {
                        "tooltip": "Person mask of the reference (1 = person). Without it "
                        "the whole image is the foreground."
                    },
                ),
                "background": (
                    "IMAGE",
                    {
                        "tooltip": "Background image; default: the reference with the "
                        "person blanked out (as in DisCo's evaluation)."
                    },
                ),
                "background_mask": ("MASK", {"tooltip": "Person mask of the background image (blanked)."}),
            },
        }

    RETURN_TYPES = ("MS_DISCO_COND",)
    RETURN_NAMES = ("condition",)
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    def encode(
        self,
        model,
        reference,
        cfg_mode="auto",
        size=256,
        reference_mask=None,
        background=None,
        background_mask=None,
    ):
        return (
            generate.make_condition(
                model, reference, reference_mask, background, background_mask, cfg_mode, size
            ),
        )


class DiscoSampler:
    """DDIM sampling of one frame per pose, guided by both ControlNets (temporal model: in windows)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_DISCO_MODEL", {"tooltip": "From the DisCo loader."}),
                "condition": ("MS_DISCO_COND", {"tooltip": "From the DisCo encoder."}),
                "poses": (
                    "IMAGE",
                    {
                        "tooltip": "OpenPose skeleton frames (one output frame each); DisCo-style "
                        "drawings from 'Draw Poses (DisCo)' match training best."
                    },
                ),
                "steps": (
                    "INT",
                    {"default": 50, "min": 1, "max": 1000, "tooltip": "DDIM steps (DisCo: 50)."},
                ),
                "guidance": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 20.0,
                        "step": 0.1,
                        "tooltip": "CFG scale; "
                        "0 = checkpoint default (1.5 for *_cfg, 3 for *_nocfg). 1 disables CFG.",
                    },
                ),
                "eta": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.05,
                        "tooltip": "DDIM eta (0 = deterministic, as DisCo).",
                    },
                ),
                "pose_scale": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 3.0,
                        "step": 0.05,
                        "tooltip": "Strength of the pose ControlNet.",
                    },
                ),
                "background_scale": (
                    "FLOAT",
                    {
                        "default": 1.0,
                        "min": 0.0,
                        "max": 3.0,
                        "step": 0.05,
                        "tooltip": "Strength of the background ControlNet.",
                    },
                ),
                "seed": (
                    "INT",
                    {
                        "default": 42,
                        "min": 0,
                        "max": 0xFFFFFFFFFFFFFFFF,
                        "tooltip": "Start noise seed "
                        "(the same noise for every frame, like DisCo's evaluation).",
                    },
                ),
                "batch_size": (
                    "INT",
                    {
                        "default": 8,
                        "min": 1,
                        "max": 256,
                        "tooltip": "Image model: frames per UNet call; lower it when memory runs out. "
                        "The temporal model runs one window per call instead.",
                    },
                ),
                "keep_model_loaded": (
                    "BOOLEAN",
                    {"default": False, "tooltip": "Keep the networks on the GPU after sampling."},
                ),
            },
            "optional": {
                "frames_per_window": (
                    "INT",
                    {
                        "default": 16,
                        "min": 1,
                        "max": 128,
                        "tooltip": "Temporal model only: frames denoised together (trained on 16). "
                        "Shorter videos run as one shorter window. Ignored by image models.",
                    },
                ),
                "overlap": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 127,
                        "tooltip": "Temporal model only: frames shared by neighbouring windows, blended "
                        "every step so windows join without seams (e.g. 4-8). 0 = DisCo's separate "
                        "windows. Must be below frames_per_window; more overlap = more windows to run.",
                    },
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
        condition,
        poses,
        steps=50,
        guidance=0.0,
        eta=0.0,
        pose_scale=1.0,
        background_scale=1.0,
        seed=42,
        batch_size=8,
        keep_model_loaded=False,
        frames_per_window=16,
        overlap=0,
    ):
        settings = sampling.SamplerSettings(
            steps=steps,
            guidance=guidance,
            eta=eta,
            pose_scale=pose_scale,
            background_scale=background_scale,
            seed=seed,
            batch_size=batch_size,
            window=frames_per_window,
            overlap=overlap,
        )
        latents = generate.generate(model, condition, poses, settings, keep_loaded=keep_model_loaded)
        return ({"samples": latents},)


class DiscoDecoder:
    """Decodes DisCo latents with its own VAE (the core VAE Decode node works too)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_DISCO_MODEL", {"tooltip": "From the DisCo loader (its VAE is used)."}),
                "latent": ("LATENT", {"tooltip": "From the DisCo sampler."}),
                "batch_size": (
                    "INT",
                    {"default": 8, "min": 1, "max": 256, "tooltip": "Frames per VAE call."},
                ),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "decode"
    CATEGORY = CATEGORY

    def decode(self, model, latent, batch_size=8):
        if not isinstance(latent, dict) or "samples" not in latent:
            raise InputError("latent must be a LATENT dict with 'samples'; connect the DisCo sampler output.")
        return (generate.decode(model, latent["samples"], batch_size),)


class DiscoDrawPoses:
    """Redraws POSE_KEYPOINT (comfyui_controlnet_aux) as DisCo-style skeleton images."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "pose_keypoint": (
                    "POSE_KEYPOINT",
                    {
                        "tooltip": "OpenPose/DWPose keypoints; the first person "
                        "of each frame is drawn, neck from the shoulders, like DisCo's data."
                    },
                ),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("poses",)
    FUNCTION = "draw"
    CATEGORY = CATEGORY

    def draw(self, pose_keypoint):
        frames = pose_keypoint if isinstance(pose_keypoint, list) else [pose_keypoint]
        return (torch.from_numpy(pose.draw_pose_keypoint_frames(frames)),)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_DisCo_Loader": DiscoLoader,
    "MotionSuite_DisCo_Encoder": DiscoEncoder,
    "MotionSuite_DisCo_Sampler": DiscoSampler,
    "MotionSuite_DisCo_Decoder": DiscoDecoder,
    "MotionSuite_DisCo_DrawPoses": DiscoDrawPoses,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_DisCo_Loader": "Loader (DisCo)",
    "MotionSuite_DisCo_Encoder": "Encoder (DisCo)",
    "MotionSuite_DisCo_Sampler": "Sampler (DisCo)",
    "MotionSuite_DisCo_Decoder": "Decoder (DisCo)",
    "MotionSuite_DisCo_DrawPoses": "Draw Poses (DisCo)",
}
