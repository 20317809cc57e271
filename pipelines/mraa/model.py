"""Loading the released MRAA checkpoints (``vox256.pth`` etc.) into our networks."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from ...models.mraa.bg_motion_predictor import BG_TYPES
from ...models.mraa.config import MRAAConfig, build_networks
from ..core import weights
from ..core.device import get_offload_device
from ..core.errors import WeightsMismatchError

FOLDER = "mraa"
SOURCE = (
    "https://github.com/snap-research/articulated-animation (README, pre-trained checkpoints on "
    "Google Drive: drive.google.com/drive/folders/1jCeFPqfU_wKNYwof0ONICwsj3xHlr_tb)"
)
# name -> (training resolution, size from the git-lfs pointers in upstream commit 451f7da)
RELEASED = {
    "vox256.pth": (256, "291,747,542 bytes", "faces (VoxCeleb)"),
    "taichi256.pth": (256, "273,409,176 bytes", "full bodies (TaiChiHD)"),
    "ted384.pth": (384, "273,409,224 bytes", "upper bodies (TED talks)"),
    "ted-youtube384.pth": (384, "292,943,746 bytes", "upper bodies (TED-talks YouTube, 20 regions)"),
    "mgif256.pth": (256, "248,256,308 bytes", "cartoon animals (MGif)"),
}
WEIGHTS = {
    name: weights.WeightSpec(
        filename=name,
        folder=FOLDER,
        size=size,
        source=SOURCE,
        description=f"MRAA trained on {what} at {res}x{res}",
    )
    for name, (res, size, what) in RELEASED.items()
}
DEFAULT_FILE = "vox256.pth"
REQUIRED = ("region_predictor", "generator")


@dataclass
class MRAAModel:
    """The networks of one checkpoint; ``avd_network``/``bg_predictor`` are None when the file lacks them."""

    region_predictor: torch.nn.Module
    generator: torch.nn.Module
    avd_network: torch.nn.Module | None
    bg_predictor: torch.nn.Module | None
    config: MRAAConfig
    name: str = DEFAULT_FILE

    def modules(self) -> list[torch.nn.Module]:
        nets = [self.region_predictor, self.generator, self.avd_network, self.bg_predictor]
        return [n for n in nets if n is not None]


def default_image_size(name: str) -> int:
    """Training resolution of a checkpoint from its name (``ted384.pth`` -> 384), 256 otherwise."""
    if name in RELEASED:
        return RELEASED[name][0]
    found = re.search(r"(\d{3})(?:\D*)$", os.path.basename(name).split(".")[0])
    return int(found.group(1)) if found and int(found.group(1)) in (256, 384, 512) else 256


def _widths(sd: dict, prefix: str) -> list[int]:
    out, i = [], 0
    while f"{prefix}.{i}.conv.weight" in sd:
        out.append(int(sd[f"{prefix}.{i}.conv.weight"].shape[0]))
        i += 1
    return out


def _scale_from_kernel(kernel: torch.Tensor | None) -> float:
    """Downscale factor whose anti-alias kernel has this size (k = 2 round(2 (1/s - 1)) + 1)."""
    if kernel is None:
        return 1.0
    for s in (0.5, 0.25, 0.125):
        if 2 * round(2 * (1 / s - 1)) + 1 == kernel.shape[-1]:
            return s
    raise WeightsMismatchError(f"unexpected anti-alias kernel size {kernel.shape[-1]} in the checkpoint")


def config_from_state_dicts(ckpt: dict, image_size: int = 256) -> MRAAConfig:
    """Widths read off the tensor shapes, so every released model and smaller re-trainings load.

    ``skips``, ``use_covar_heatmap`` and ``revert_axis_swap`` leave no trace in the weights; they are
    True in every released config, so they stay at their defaults.
    """
    try:
        rp, gen = ckpt["region_predictor"], ckpt["generator"]
        if "jacobian.weight" in rp:
            raise WeightsMismatchError(
                "This MRAA checkpoint uses regression-based region affines (pca_based: False), which no "
                "released model does and this pack does not implement."
            )
        flow = weights.select(gen, "pixelwise_flow_predictor.")
        rp_w = _widths(rp, "predictor.encoder.down_blocks")
        gen_w = _widths(gen, "down_blocks")
        flow_w = _widths(flow, "hourglass.encoder.down_blocks")
        num_regions = int(rp["regions.weight"].shape[0])
        num_channels = int(gen["final.weight"].shape[0])
        flow_in = int(flow["hourglass.encoder.down_blocks.0.conv.weight"].shape[1])
        avd = ckpt.get("avd_network") or {}
        bg = ckpt.get("bg_predictor") or {}
        bg_w = _widths(bg, "encoder.down_blocks")
        bg_type = {n: t for t, n in BG_TYPES.items()}[int(bg["fc.weight"].shape[0])] if bg else "zero"
        defaults = MRAAConfig()
        return MRAAConfig(
            num_regions=num_regions,
            num_channels=num_channels,
            rp_block_expansion=rp_w[0] // 2,
            rp_max_features=max(rp_w),
            rp_num_blocks=len(rp_w),
            rp_scale_factor=_scale_from_kernel(rp.get("down.weight")),
            gen_block_expansion=int(gen["first.conv.weight"].shape[0]),
            gen_max_features=max(gen_w),
            gen_num_down_blocks=len(gen_w),
            gen_num_bottleneck_blocks=len({k.split(".")[1] for k in gen if k.startswith("bottleneck.")}),
            flow_block_expansion=flow_w[0] // 2,
            flow_max_features=max(flow_w),
            flow_num_blocks=len(flow_w),
            flow_scale_factor=_scale_from_kernel(flow.get("down.weight")),
            use_deformed_source=flow_in == (num_regions + 1) * (num_channels + 1),
            estimate_occlusion_map="occlusion.weight" in flow,
            id_bottle_size=int(avd["id_encoder.9.weight"].shape[0]) if avd else defaults.id_bottle_size,
            pose_bottle_size=int(avd["pose_encoder.9.weight"].shape[0]) if avd else defaults.pose_bottle_size,
            bg_block_expansion=bg_w[0] // 2 if bg_w else defaults.bg_block_expansion,
            bg_max_features=max(bg_w) if bg_w else defaults.bg_max_features,
            bg_num_blocks=len(bg_w) if bg_w else defaults.bg_num_blocks,
            bg_type=bg_type,
            image_size=image_size,
        )
    except (KeyError, IndexError, AttributeError, TypeError, ValueError) as exc:
        if isinstance(exc, WeightsMismatchError):
            raise
        raise WeightsMismatchError(
            f"This file is not an MRAA checkpoint: it lacks {exc}. Use a released file such as "
            "vox256.pth (entries region_predictor, generator, avd_network, bg_predictor)."
        ) from exc


def load_model(path: str | os.PathLike, image_size: int = 0) -> MRAAModel:
    """Build the networks from a ``.pth``/``.pth.tar`` (weights_only load, strict key check), eval mode.

    ``image_size`` 0 takes the checkpoint's training resolution (384 for the ted models, else 256).
    """
    name = os.path.basename(path)
    ckpt = weights.load_state_dict(path)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED):
        raise WeightsMismatchError(
            f"'{name}' is not an MRAA checkpoint: it needs the entries {', '.join(REQUIRED)} "
            "(released files: vox256.pth, taichi256.pth, ted384.pth, ted-youtube384.pth, mgif256.pth)."
        )
    cfg = config_from_state_dicts(ckpt, image_size or default_image_size(name))
    nets: dict[str, torch.nn.Module | None] = dict(build_networks(cfg))
    if not ckpt.get("avd_network"):
        nets["avd_network"] = None
    if ckpt.get("bg_predictor") is None:  # an empty dict is a valid "zero" background model
        nets["bg_predictor"] = None
    for key, net in nets.items():
        if net is not None:
            weights.load_into(net, ckpt.get(key) or {}, what=f"MRAA {key}", strict=True)
            net.eval().requires_grad_(False).to(get_offload_device())
    return MRAAModel(**nets, config=cfg, name=name)
