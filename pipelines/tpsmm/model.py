"""Loading the released TPSMM checkpoint (``vox.pth.tar``) into our networks."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ...models.tpsmm.config import TPSMMConfig, build_networks
from ..core import weights
from ..core.device import get_offload_device
from ..core.errors import WeightsMismatchError

FOLDER = "tpsmm"
WEIGHTS = {
    "vox.pth.tar": weights.WeightSpec(
        filename="vox.pth.tar",
        folder=FOLDER,
        size="about 0.3 GB (estimated from the parameter count)",
        source="https://github.com/yoyo-nb/Thin-Plate-Spline-Motion-Model (README, pre-trained models)",
        description="TPSMM trained on VoxCeleb at 256x256 (faces)",
    ),
}
REQUIRED = ("kp_detector", "dense_motion_network", "inpainting_network")


@dataclass
class TPSMMModel:
    """The four networks of one checkpoint; ``avd_network`` is None when the file has none."""

    kp_detector: torch.nn.Module
    dense_motion_network: torch.nn.Module
    inpainting_network: torch.nn.Module
    avd_network: torch.nn.Module | None
    config: TPSMMConfig
    name: str = "vox.pth.tar"

    def modules(self) -> list[torch.nn.Module]:
        nets = [self.kp_detector, self.dense_motion_network, self.inpainting_network]
        return nets + ([self.avd_network] if self.avd_network is not None else [])


def _count(sd: dict, prefix: str) -> int:
    return len({k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)})


def config_from_state_dicts(ckpt: dict, image_size: int = 256) -> TPSMMConfig:
    """Widths read off the tensor shapes, so the released model and smaller re-trainings both load."""
    try:
        kp, dm, gen = (ckpt[k] for k in REQUIRED)
        num_tps = kp["fg_encoder.fc.weight"].shape[0] // 10
        n_gen = _count(gen, "down_blocks.")
        n_dm = _count(dm, "hourglass.encoder.down_blocks.")
        num_up = _count(dm, "up.")
        avd = ckpt.get("avd_network") or {}
        return TPSMMConfig(
            num_tps=num_tps,
            num_channels=gen["final.weight"].shape[0],
            gen_block_expansion=gen["first.conv.weight"].shape[0],
            gen_max_features=max(gen[f"down_blocks.{i}.conv.weight"].shape[0] for i in range(n_gen)),
            gen_num_down_blocks=n_gen,
            dm_block_expansion=dm["hourglass.encoder.down_blocks.0.conv.weight"].shape[0] // 2,
            dm_max_features=max(
                dm[f"hourglass.encoder.down_blocks.{i}.conv.weight"].shape[0] for i in range(n_dm)
            ),
            dm_num_blocks=n_dm,
            dm_scale_factor=2.0**-num_up,
            id_bottle_size=avd["id_encoder.9.weight"].shape[0] if avd else 128,
            pose_bottle_size=avd["pose_encoder.9.weight"].shape[0] if avd else 128,
            image_size=image_size,
        )
    except (KeyError, AttributeError, TypeError) as exc:
        raise WeightsMismatchError(
            f"This file is not a TPSMM checkpoint: it lacks {exc}. Use the released vox.pth.tar "
            "(entries kp_detector, dense_motion_network, inpainting_network, avd_network)."
        ) from exc


def load_model(path: str | os.PathLike, image_size: int = 256) -> TPSMMModel:
    """Build the networks from a ``.pth.tar`` (weights_only load, strict key check) in eval mode."""
    ckpt = weights.load_state_dict(path)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        raise WeightsMismatchError(
            f"'{os.path.basename(path)}' is not a TPSMM checkpoint: it needs the entries "
            f"{', '.join(REQUIRED)}."
        )
    cfg = config_from_state_dicts(ckpt, image_size)
    nets = build_networks(cfg)
    if not ckpt.get("avd_network"):
        nets["avd_network"] = None
    for key, net in nets.items():
        if net is not None:
            weights.load_into(net, ckpt[key], what=f"TPSMM {key}", strict=True)
            net.eval().requires_grad_(False).to(get_offload_device())
    return TPSMMModel(**nets, config=cfg, name=os.path.basename(path))
