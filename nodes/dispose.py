"""ComfyUI nodes for DisPose (reference image + driving poses -> pose-guided video, SVD-based).

Loader -> Motion Encoder (reference + POSE_KEYPOINT -> MS_DISPOSE_COND, cached) -> Sampler (LATENT)
-> Decoder (IMAGE). Poses (POSE_KEYPOINT) come from the pack's DWPose node (nodes/dispose_pose.py) or
from comfyui_controlnet_aux's, run once on the reference image and once on the driving video.
"""

from __future__ import annotations

import torch

from ..pipelines.core import weights
from ..pipelines.core.device import DTYPE_CHOICES, get_offload_device, get_torch_device, resolve_dtype
from ..pipelines.core.errors import InputError
from ..pipelines.core.progress import Progress
from ..pipelines.dispose import generate
from ..pipelines.dispose.loading import POSE_NET_FILE, POSE_NET_URL, has_pose_net, load_dispose
from ..pipelines.dispose.sampling import SamplerSettings, tile_indices

FOLDER = "dispose"
CATEGORY = "MotionSuite/DisPose"
BASE_FOLDER_NAME = "stable-video-diffusion-img2vid-xt-1-1"
#: Loader precision choice: UNet/ControlNet weights stored as float8_e4m3fn, computed in the "auto" dtype.
FP8_STORAGE = "fp8_e4m3fn (storage)"
MIMICMOTION = weights.WeightSpec(
    filename="MimicMotion_1-1.pth",
    folder=FOLDER,
    repo_id="tencent/MimicMotion",
    size="3.05 GB",
    description="MimicMotion UNet + PoseNet",
)
DISPOSE = weights.WeightSpec(
    filename="DisPose.pth",
    folder=FOLDER,
    repo_id="lihxxx/DisPose",
    size="2.74 GB",
    description="DisPose hybrid ControlNet",
)
CMP_FILE = weights.WeightSpec(
    filename="ckpt_iter_42000.pth.tar",
    folder=FOLDER,
    repo_id="MyNiuuu/MOFA-Video-Hybrid",
    repo_path="models/cmp/experiments/semiauto_annot/resnet50_vip+mpii_liteflow/checkpoints/ckpt_iter_42000.pth.tar",
    size="≈0.3 GB",
    description="CMP motion propagation",
)
POSE_NET = weights.WeightSpec(
    filename=POSE_NET_FILE,
    folder=FOLDER,
    url=POSE_NET_URL,
    size="0.4 MB",
    description="MimicMotion PoseNet for kijai's merged UNet files",
)
POSE_NET_AUTO = "auto"
weights.register_folder(FOLDER)


def _files(default: str) -> list[str]:
    found = weights.list_files(FOLDER, (".pth", ".pt", ".tar", ".safetensors"))
    return sorted(set(found) | {default})


def _tip(text: str) -> dict:
    return {"tooltip": text}


class DisPoseLoader:
    """Loads SVD-XT 1.1 parts, the MimicMotion UNet/PoseNet, the DisPose ControlNet and CMP."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "base_folder": (
                    "STRING",
                    {
                        "default": BASE_FOLDER_NAME,
                        **_tip(
                            "Folder under models/dispose with the diffusers layout of "
                            "stabilityai/stable-video-diffusion-img2vid-xt-1-1 (vae, image_encoder, configs)."
                        ),
                    },
                ),
                "mimicmotion": (
                    _files(MIMICMOTION.filename),
                    {
                        "default": MIMICMOTION.filename,
                        **_tip("MimicMotion_1-1.pth (UNet + PoseNet) from HF tencent/MimicMotion."),
                    },
                ),
                "controlnet": (
                    _files(DISPOSE.filename),
                    {
                        "default": DISPOSE.filename,
                        **_tip("DisPose.pth (hybrid ControlNet) from HF lihxxx/DisPose."),
                    },
                ),
                "cmp": (
                    _files(CMP_FILE.filename),
                    {
                        "default": CMP_FILE.filename,
                        **_tip("CMP checkpoint ckpt_iter_42000.pth.tar from HF MyNiuuu/MOFA-Video-Hybrid."),
                    },
                ),
                "precision": (
                    [*DTYPE_CHOICES, FP8_STORAGE],
                    {
                        "default": "auto",
                        **_tip(
                            "UNet/ControlNet/VAE/CLIP precision (CMP always runs in fp32). "
                            f"'{FP8_STORAGE}' keeps the UNet and ControlNet weights in 8 bits (half of "
                            "fp16's memory) and computes as 'auto'."
                        ),
                    },
                ),
            },
            "optional": {
                "dift_folder": (
                    "STRING",
                    {
                        "default": "stable-diffusion-v1-5",
                        **_tip(
                            "SD-1.5 diffusers folder under models/dispose for the DIFT keypoint features; "
                            "empty = none (keypoint positions only, weaker likeness)."
                        ),
                    },
                ),
                "pose_net": (
                    [POSE_NET_AUTO, *_files(POSE_NET.filename)],
                    {
                        "default": POSE_NET_AUTO,
                        **_tip(
                            "PoseNet weights. auto: from the MimicMotion file when it has them, else "
                            f"{POSE_NET.filename} (needed by kijai's merged "
                            "MimicMotionMergedUnet_*-fp16.safetensors)."
                        ),
                    },
                ),
            },
        }

    RETURN_TYPES = ("MS_DISPOSE_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(
        self,
        base_folder,
        mimicmotion,
        controlnet,
        cmp,
        precision="auto",
        dift_folder="",
        pose_net=POSE_NET_AUTO,
    ):
        base = weights.find_file(FOLDER, base_folder)
        if base is None or not base.is_dir():
            raise InputError(
                f"SVD base folder '{base_folder}' not found in "
                f"{[str(d) for d in weights.search_dirs(FOLDER)]}. Download "
                "stabilityai/stable-video-diffusion-img2vid-xt-1-1 (vae, image_encoder, unet/config.json, "
                f"scheduler) into models/dispose/{BASE_FOLDER_NAME}."
            )
        files = [
            weights.resolve(spec, name)
            for spec, name in ((MIMICMOTION, mimicmotion), (DISPOSE, controlnet), (CMP_FILE, cmp))
        ]
        dift = None
        if dift_folder.strip():
            dift = weights.find_file(FOLDER, dift_folder.strip())
            if dift is None or not dift.is_dir():
                raise InputError(
                    f"DIFT folder '{dift_folder}' not found in models/dispose. Download "
                    "stable-diffusion-v1-5/stable-diffusion-v1-5 (unet, vae, text_encoder, tokenizer, "
                    "scheduler) there, or leave it empty to run without keypoint appearance features."
                )
        pose_file = None
        if pose_net != POSE_NET_AUTO:
            pose_file = weights.resolve(POSE_NET, pose_net)
        elif not has_pose_net(files[0]):  # kijai's merged UNet: the PoseNet is a separate file
            pose_file = weights.resolve(POSE_NET)
        fp8_storage = precision == FP8_STORAGE
        dtype = resolve_dtype("auto" if fp8_storage else precision, get_torch_device())
        model = load_dispose(
            base,
            *files,
            pose_net_file=pose_file,
            dift_folder=dift,
            dtype=dtype,
            device=get_offload_device(),
            fp8_storage=fp8_storage,
        )
        return (model,)


class DisPoseMotionEncoder:
    """Poses, retargeting, drawings, trajectory field and CMP flow; cached across re-queues."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_DISPOSE_MODEL", _tip("From the DisPose loader (its CMP is used).")),
                "reference": ("IMAGE", _tip("The person to animate (first image used).")),
                "reference_pose": ("POSE_KEYPOINT", _tip("DWPose keypoints of the reference image.")),
                "driving_pose": ("POSE_KEYPOINT", _tip("DWPose keypoints of every driving frame.")),
                "width": (
                    "INT",
                    {
                        "default": 576,
                        "min": 64,
                        "max": 2048,
                        "step": 64,
                        **_tip("Video width (multiple of 64). DisPose was trained at 576x1024."),
                    },
                ),
                "height": (
                    "INT",
                    {
                        "default": 1024,
                        "min": 64,
                        "max": 2048,
                        "step": 64,
                        **_tip("Video height (multiple of 64)."),
                    },
                ),
                "fit": (
                    list(generate.FIT_MODES),
                    {
                        "default": "crop",
                        **_tip("How the reference is fitted to the size: centre crop or pad with black."),
                    },
                ),
                "retarget": (
                    list(generate.RETARGET_MODES),
                    {
                        "default": "global",
                        **_tip(
                            "global: one scale/offset fitting the driving body to the reference (upstream); "
                            "per-limb: global fit, then every limb gets the reference's length (driving "
                            "angles, reference proportions); none: use the driving coordinates as they are."
                        ),
                    },
                ),
            }
        }

    RETURN_TYPES = ("MS_DISPOSE_COND", "IMAGE")
    RETURN_NAMES = ("condition", "pose_preview")
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    def encode(
        self,
        model,
        reference,
        reference_pose,
        driving_pose,
        width=576,
        height=1024,
        fit="crop",
        retarget="global",
    ):
        ref_pose = reference_pose if isinstance(reference_pose, list) else [reference_pose]
        drv_pose = driving_pose if isinstance(driving_pose, list) else [driving_pose]
        cond = generate.encode_motion(model, reference, ref_pose, drv_pose, height, width, fit, retarget)
        preview = ((cond.pose_pixels + 1) / 2).permute(0, 2, 3, 1).clamp(0, 1)
        return cond, preview


class DisPoseSampler:
    """Tiled Euler sampling (SVD + MimicMotion + DisPose ControlNet)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_DISPOSE_MODEL", _tip("From the DisPose loader.")),
                "condition": ("MS_DISPOSE_COND", _tip("From the DisPose motion encoder.")),
                "steps": ("INT", {"default": 25, "min": 1, "max": 200, **_tip("Euler steps.")}),
                "min_guidance": (
                    "FLOAT",
                    {
                        "default": 2.0,
                        "min": 0.0,
                        "max": 20.0,
                        "step": 0.1,
                        **_tip(
                            "Guidance of the first frame, ramping linearly to max_guidance at the last frame."
                        ),
                    },
                ),
                "max_guidance": (
                    "FLOAT",
                    {
                        "default": 2.0,
                        "min": 0.0,
                        "max": 20.0,
                        "step": 0.1,
                        **_tip(
                            "Guidance of the last frame; <= 1 turns guidance off (one pass per tile, faster)."
                        ),
                    },
                ),
                "tile_size": (
                    "INT",
                    {
                        "default": 16,
                        "min": 2,
                        "max": 128,
                        **_tip(
                            "Frames per denoiser call (with the reference); more: better motion, more memory."
                        ),
                    },
                ),
                "tile_overlap": (
                    "INT",
                    {
                        "default": 6,
                        "min": 0,
                        "max": 126,
                        **_tip("Frames shared by neighbouring tiles (blended with triangular weights)."),
                    },
                ),
                "noise_aug_strength": (
                    "FLOAT",
                    {
                        "default": 0.0,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.01,
                        **_tip("Noise added to the reference before encoding: more motion, less likeness."),
                    },
                ),
                "fps": (
                    "INT",
                    {"default": 7, "min": 1, "max": 60, **_tip("fps id of SVD (upstream uses 7).")},
                ),
                "motion_bucket_id": (
                    "INT",
                    {"default": 127, "min": 0, "max": 1023, **_tip("SVD motion bucket id (upstream 127).")},
                ),
                "seed": ("INT", {"default": 42, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, **_tip("Noise seed.")}),
                "cfg_batched": (
                    "BOOLEAN",
                    {
                        "default": True,
                        **_tip(
                            "Both guidance halves in one batch (faster) or one after the other (less memory)."
                        ),
                    },
                ),
                "include_reference": (
                    "BOOLEAN",
                    {"default": False, **_tip("Keep frame 0 (the reference frame) in the output.")},
                ),
                "keep_model_loaded": (
                    "BOOLEAN",
                    {"default": False, **_tip("Keep the networks on the GPU after sampling.")},
                ),
            }
        }

    RETURN_TYPES = ("LATENT",)
    RETURN_NAMES = ("latent",)
    FUNCTION = "sample"
    CATEGORY = CATEGORY

    def sample(
        self,
        model,
        condition,
        steps=25,
        min_guidance=2.0,
        max_guidance=2.0,
        tile_size=16,
        tile_overlap=6,
        noise_aug_strength=0.0,
        fps=7,
        motion_bucket_id=127,
        seed=42,
        cfg_batched=True,
        include_reference=False,
        keep_model_loaded=False,
    ):
        if not isinstance(condition, generate.MotionConditioning):
            raise InputError("condition must come from the DisPose motion encoder.")
        settings = SamplerSettings(
            steps=steps,
            min_guidance=min(min_guidance, max_guidance),
            max_guidance=max(min_guidance, max_guidance),
            tile=tile_size,
            overlap=tile_overlap,
            fps=fps,
            motion_bucket_id=motion_bucket_id,
            noise_aug_strength=noise_aug_strength,
            seed=seed,
            cfg_batched=cfg_batched,
        )
        frames = condition.pose_pixels.shape[0]
        tiles = len(tile_indices(frames, tile_size, tile_overlap))
        with Progress(steps * tiles, desc="DisPose sampling") as progress:

            def on_step(done: int, total: int, latents: torch.Tensor) -> None:
                progress.update(1)

            latents = generate.generate_latents(
                model, condition, settings, include_reference, on_step, keep_loaded=keep_model_loaded
            )
        return ({"samples": latents},)


class DisPoseDecoder:
    """Temporal VAE decoding in overlapping chunks (no flicker at chunk borders)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "model": ("MS_DISPOSE_MODEL", _tip("From the DisPose loader (its VAE is used).")),
                "latent": ("LATENT", _tip("From the DisPose sampler.")),
                "chunk_size": (
                    "INT",
                    {
                        "default": 8,
                        "min": 1,
                        "max": 128,
                        **_tip("Frames per VAE call; the temporal decoder mixes frames within a chunk."),
                    },
                ),
                "chunk_overlap": (
                    "INT",
                    {
                        "default": 2,
                        "min": 0,
                        "max": 64,
                        **_tip("Frames shared by neighbouring chunks, cross-faded."),
                    },
                ),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "decode"
    CATEGORY = CATEGORY

    def decode(self, model, latent, chunk_size=8, chunk_overlap=2):
        if not isinstance(latent, dict) or "samples" not in latent:
            raise InputError("latent must be a LATENT dict with 'samples'; connect the DisPose sampler.")
        return (generate.decode_latents(model, latent["samples"], chunk_size, chunk_overlap),)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_DisPose_Loader": DisPoseLoader,
    "MotionSuite_DisPose_MotionEncoder": DisPoseMotionEncoder,
    "MotionSuite_DisPose_Sampler": DisPoseSampler,
    "MotionSuite_DisPose_Decoder": DisPoseDecoder,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_DisPose_Loader": "Loader (DisPose)",
    "MotionSuite_DisPose_MotionEncoder": "Motion Encoder (DisPose)",
    "MotionSuite_DisPose_Sampler": "Sampler (DisPose)",
    "MotionSuite_DisPose_Decoder": "Decoder (DisPose)",
}
