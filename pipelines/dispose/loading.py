"""Loading DisPose / MimicMotion networks from the released checkpoint files.

| network     | file                        | keys                                                   |
|-------------|-----------------------------|--------------------------------------------------------|
| UNet        | MimicMotion_1-1.pth         | ``unet.*`` (stock SVD UNet names), fp16                |
| PoseNet     | MimicMotion_1-1.pth         | ``pose_net.*``                                         |
| ControlNet  | DisPose.pth                 | bare ``DisPoseControlNet`` names, fp32                 |
| CMP         | ckpt_iter_42000.pth.tar     | ``{'step','state_dict','optimizer'}``, ``module.*``    |

kijai's merged fp16 UNet (``MimicMotionMergedUnet_1-1-fp16.safetensors``, HF Kijai/MimicMotion_pruned)
holds the UNet with bare diffusers keys; its PoseNet comes from ``mimic_motion_pose_net.safetensors``
(bare PoseNet keys) unless the file carries the PoseNet too (see ``mimicmotion_state_dicts``).

Every file is read weights-only and loaded strictly: a missing or renamed key is an error, never a
silently random module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import AutoencoderKLTemporalDecoder
from transformers import CLIPVisionModelWithProjection

from ...models.dispose.cmp import CMP
from ...models.dispose.controlnet import DisPoseControlNet
from ...models.dispose.pose_net import PoseNet
from ...models.dispose.unet import MimicMotionUNet
from ..core import fp8, weights
from ..core.errors import MissingWeightsError, WeightsMismatchError


def _floats(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.float() if torch.is_floating_point(v) else v) for k, v in sd.items()}


def load_pose_net(path: str | os.PathLike) -> PoseNet:
    """Build PoseNet from MimicMotion_1-1.pth (keys under ``pose_net.``) or a bare PoseNet file."""
    sd = weights.load_state_dict(path)
    if any(k.startswith("pose_net.") for k in sd):
        sd = weights.select(sd, "pose_net.")
    net = PoseNet(sd["final_proj.weight"].shape[0] if "final_proj.weight" in sd else 320)
    weights.load_into(net, _floats(sd), "MimicMotion PoseNet", strict=True)
    return net.eval()


def cmp_state_dict(raw: Mapping) -> dict[str, torch.Tensor]:
    """The CMP weights of a training checkpoint (``state_dict`` entry, ``module.`` prefix) or a bare dict."""
    sd = raw.get("state_dict", raw) if isinstance(raw, Mapping) else None
    if not isinstance(sd, Mapping) or not any("image_encoder." in k for k in sd):
        raise WeightsMismatchError(
            "This file is not the CMP checkpoint: no 'image_encoder.*' weights. Use "
            "ckpt_iter_42000.pth.tar from HF MyNiuuu/MOFA-Video-Hybrid "
            "(models/cmp/experiments/semiauto_annot/resnet50_vip+mpii_liteflow/checkpoints/)."
        )
    return weights.strip_prefix(sd, "module.")


def load_cmp(path: str | os.PathLike) -> CMP:
    """Build CMP from ``ckpt_iter_42000.pth.tar`` (or a converted .safetensors), fp32, eval mode."""
    net = CMP()
    weights.load_into(net, _floats(cmp_state_dict(weights.load_state_dict(path))), "CMP", strict=True)
    return net.eval().requires_grad_(False)


@dataclass
class DisPoseModel:
    """All networks of a DisPose pipeline, kept on the offload device between nodes."""

    unet: MimicMotionUNet
    pose_net: PoseNet
    controlnet: DisPoseControlNet
    vae: AutoencoderKLTemporalDecoder
    image_encoder: CLIPVisionModelWithProjection
    scheduler_config: dict
    cmp: CMP | None = None
    dift: object | None = None  # DiftFeaturizer (SD-1.5) or None: zero keypoint features
    name: str = "dispose"
    extras: dict = field(default_factory=dict)

    @property
    def dtype(self) -> torch.dtype:
        return fp8.compute_dtype(self.unet)


#: files of the SVD-XT 1.1 diffusers folder that are read (weights may be the .fp16 variant).
SVD_CONFIGS = (
    "unet/config.json",
    "vae/config.json",
    "image_encoder/config.json",
    "scheduler/scheduler_config.json",
)


def _weight_file(folder: Path, sub: str, stem: str) -> Path:
    for name in (f"{stem}.safetensors", f"{stem}.fp16.safetensors", f"{stem}.bin", f"{stem}.fp16.bin"):
        if (folder / sub / name).is_file():
            return folder / sub / name
    raise MissingWeightsError(
        f"{folder / sub / (stem + '.safetensors')} (or its .fp16 variant) is missing. Put the "
        f"'{sub}' folder of "
        "HF stabilityai/stable-video-diffusion-img2vid-xt-1-1 (or the ungated mirror "
        "vdo/stable-video-diffusion-img2vid-xt-1-1) into the SVD base folder."
    )


def check_base_folder(folder: str | os.PathLike) -> Path:
    """Raise MissingWeightsError naming the first missing SVD config file."""
    folder = Path(folder)
    for rel in SVD_CONFIGS:
        if not (folder / rel).is_file():
            raise MissingWeightsError(
                f"{folder / rel} is missing. The SVD base folder must hold the diffusers layout of HF "
                "stabilityai/stable-video-diffusion-img2vid-xt-1-1 (unet/config.json, vae, image_encoder, "
                "scheduler); the UNet weights are not needed (they come from MimicMotion_1-1.pth)."
            )
    return folder


#: kijai's PoseNet file (bare PoseNet keys, fp16), shipped in the GitHub repo of ComfyUI-MimicMotionWrapper.
POSE_NET_FILE = "mimic_motion_pose_net.safetensors"
POSE_NET_URL = (
    "https://raw.githubusercontent.com/kijai/ComfyUI-MimicMotionWrapper/main/models/" + POSE_NET_FILE
)
_POSE_NET_BARE = ("conv_layers.", "final_proj.")


def _is_pose_net_key(key: str) -> bool:
    return key == "scale" or key.startswith(_POSE_NET_BARE)


def mimicmotion_state_dicts(sd: Mapping[str, torch.Tensor]) -> tuple[dict, dict | None]:
    """(UNet, PoseNet or None) weights of a MimicMotion file.

    Layouts: ``MimicMotion_1-1.pth`` (``unet.*`` + ``pose_net.*``); kijai's merged fp16 UNet
    ``MimicMotionMergedUnet_1-{0,1}-fp16.safetensors`` (bare diffusers UNet keys, the PoseNet in a
    separate file); and a merged file that also carries the PoseNet, bare (``conv_layers.*``,
    ``final_proj.*``, ``scale``: names no SVD UNet key uses) or under ``pose_net.``.
    """
    if any(k.startswith("unet.") for k in sd):
        pose = weights.select(sd, "pose_net.")
        return weights.select(sd, "unet."), pose or None
    pose = weights.select(sd, "pose_net.") or {k: v for k, v in sd.items() if _is_pose_net_key(k)}
    unet = {k: v for k, v in sd.items() if not k.startswith("pose_net.") and not _is_pose_net_key(k)}
    return unet, pose or None


def has_pose_net(path: str | os.PathLike) -> bool:
    """Whether a MimicMotion file carries PoseNet weights (safetensors: read from the header only)."""
    if str(path).endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            return any(k.startswith("pose_net.") or _is_pose_net_key(k) for k in f.keys())  # noqa: SIM118
    return True  # MimicMotion_1-1.pth holds both; a file without them is reported by load_dispose


def load_dispose(
    base_folder: str | os.PathLike,
    mimicmotion_file: str | os.PathLike,
    dispose_file: str | os.PathLike,
    cmp_file: str | os.PathLike | None,
    pose_net_file: str | os.PathLike | None = None,
    dift_folder: str | os.PathLike | None = None,
    dtype: torch.dtype = torch.float16,
    device: torch.device | str = "cpu",
    fp8_storage: bool = False,
) -> DisPoseModel:
    """Build every network from its released file; any missing file or key is an error.

    ``fp8_storage``: keep the UNet and ControlNet weights in float8_e4m3fn (``core.fp8``), computing in
    ``dtype``; halves their memory against fp16.
    """
    base = check_base_folder(base_folder)
    unet_config = json.loads((base / "unet/config.json").read_text())
    unet = MimicMotionUNet.from_config(unet_config)
    unet_sd, pose_sd = mimicmotion_state_dicts(weights.load_state_dict(mimicmotion_file))
    weights.load_into(unet, unet_sd, "MimicMotion UNet", strict=True)
    if pose_sd is None or pose_net_file is not None:  # a chosen PoseNet file wins over embedded keys
        if pose_net_file is None:
            raise MissingWeightsError(
                f"{Path(mimicmotion_file).name} holds no PoseNet weights (kijai's merged UNet file). Put "
                f"{POSE_NET_FILE} ({POSE_NET_URL}) next to it, or use MimicMotion_1-1.pth from HF "
                "tencent/MimicMotion."
            )
        pose_net = load_pose_net(pose_net_file)
    else:
        pose_net = PoseNet(unet_config["block_out_channels"][0])
        weights.load_into(pose_net, pose_sd, "MimicMotion PoseNet", strict=True)
    cn_sd = weights.load_state_dict(dispose_file)
    first_mlp = cn_sd.get("point_adapter.model_list.0.mlp.0.weight")
    if first_mlp is None:
        raise WeightsMismatchError(
            f"{Path(dispose_file).name} is not the DisPose ControlNet (no point_adapter weights); use "
            "DisPose.pth from HF lihxxx/DisPose."
        )
    controlnet = DisPoseControlNet.from_unet_config(unet_config, first_mlp.shape[1])
    weights.load_into(controlnet, cn_sd, "DisPose ControlNet", strict=True)
    _weight_file(base, "vae", "diffusion_pytorch_model")
    _weight_file(base, "image_encoder", "model")
    variant = "fp16" if not list((base / "vae").glob("diffusion_pytorch_model.safetensors")) else None
    vae = AutoencoderKLTemporalDecoder.from_pretrained(base, subfolder="vae", variant=variant)
    variant = "fp16" if not list((base / "image_encoder").glob("model.safetensors")) else None
    image_encoder = CLIPVisionModelWithProjection.from_pretrained(
        base, subfolder="image_encoder", variant=variant
    )
    scheduler_config = json.loads((base / "scheduler/scheduler_config.json").read_text())
    cmp = load_cmp(cmp_file) if cmp_file is not None else None
    for module in (unet, pose_net, controlnet, vae):
        module.to(device=device, dtype=dtype).eval().requires_grad_(False)
    image_encoder.to(device=device, dtype=dtype).eval().requires_grad_(False)
    if fp8_storage:
        fp8.store_weights_in_fp8(unet, dtype)
        fp8.store_weights_in_fp8(controlnet, dtype)
    if cmp is not None:
        cmp.to(device)
    dift = None
    if dift_folder is not None:
        from .dift import DiftFeaturizer

        dift = DiftFeaturizer.from_folder(dift_folder, dtype=dtype)
        width = dift.unet.up_blocks[1].resnets[-1].out_channels
        if width != controlnet.point_adapter.embedding_channels:
            raise WeightsMismatchError(
                f"DIFT features have {width} channels but the ControlNet expects "
                f"{controlnet.point_adapter.embedding_channels}; use Stable Diffusion 1.5 for DIFT."
            )
    return DisPoseModel(unet, pose_net, controlnet, vae, image_encoder, scheduler_config, cmp, dift)
