"""Loading DisPose / MimicMotion networks from the released checkpoint files.

| network     | file                        | keys                                                   |
|-------------|-----------------------------|--------------------------------------------------------|
| UNet        | MimicMotion_1-1.pth         | ``unet.*`` (stock SVD UNet names), fp16                |
| PoseNet     | MimicMotion_1-1.pth         | ``pose_net.*``                                         |
| ControlNet  | DisPose.pth                 | bare ``DisPoseControlNet`` names, fp32                 |
| CMP         | ckpt_iter_42000.pth.tar     | ``{'step','state_dict','optimizer'}``, ``module.*``    |

Every file is read weights-only and loaded strictly: a missing or renamed key is an error, never a
silently random module.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from ...models.dispose.cmp import CMP
from ...models.dispose.pose_net import PoseNet
from ..core import weights
from ..core.errors import WeightsMismatchError


def _floats(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.float() if torch.is_floating_point(v) else v) for k, v in sd.items()}


def load_pose_net(path: str | os.PathLike) -> PoseNet:
    """Build PoseNet from MimicMotion_1-1.pth (keys under ``pose_net.``) or a bare PoseNet file."""
    sd = weights.load_state_dict(path)
    if any(k.startswith("pose_net.") for k in sd):
        sd = weights.select(sd, "pose_net.")
    net = PoseNet()
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
