"""Building and loading the FOMM networks (vox-256 / vox-adv-256) from the released checkpoints.

The released ``vox-cpk.pth.tar`` and ``vox-adv-cpk.pth.tar`` are plain ``torch.save`` dicts (not tar
archives) holding ``generator`` and ``kp_detector`` state dicts next to training-only entries
(``discriminator``, optimizers, ``epoch``), which are ignored here.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

import torch

from ...models.fomm.generator import OcclusionAwareGenerator
from ...models.fomm.keypoint_detector import KPDetector
from ..core import weights
from ..core.errors import WeightsMismatchError

# model_params of upstream config/vox-256.yaml (identical in vox-adv-256.yaml)
VOX_256: dict = {
    "common_params": {"num_kp": 10, "num_channels": 3, "estimate_jacobian": True},
    "kp_detector_params": {"temperature": 0.1, "block_expansion": 32, "max_features": 1024,
                           "scale_factor": 0.25, "num_blocks": 5},
    "generator_params": {
        "block_expansion": 64, "max_features": 512, "num_down_blocks": 2, "num_bottleneck_blocks": 6,
        "estimate_occlusion_map": True,
        "dense_motion_params": {"block_expansion": 64, "max_features": 1024, "num_blocks": 5,
                                "scale_factor": 0.25},
    },
}

FOLDER = "fomm"
SPECS: dict[str, weights.WeightSpec] = {
    name: weights.WeightSpec(
        filename=f"{name}-cpk.pth.tar", folder=FOLDER, size="~700 MB",
        source="https://github.com/AliaksandrSiarohin/first-order-model (README: checkpoints link, "
               f"file {name}-cpk.pth.tar)",
        description=f"First Order Motion Model, VoxCeleb 256x256 ({name}).",
    )
    for name in ("vox", "vox-adv")
}


@dataclass
class FommModel:
    """The two FOMM networks that inference needs, kept together (the node type MS_FOMM_MODEL)."""

    generator: OcclusionAwareGenerator
    kp_detector: KPDetector
    name: str = "vox"
    params: dict = field(default_factory=lambda: copy.deepcopy(VOX_256))
    size: int = 256  # square input resolution the weights were trained on


def build_fomm(params: dict | None = None) -> tuple[OcclusionAwareGenerator, KPDetector]:
    """Networks for an upstream ``model_params`` dict (default vox-256), in eval mode."""
    p = params or VOX_256
    generator = OcclusionAwareGenerator(**p["generator_params"], **p["common_params"])
    kp_detector = KPDetector(**p["kp_detector_params"], **p["common_params"])
    return generator.eval(), kp_detector.eval()


def _blocks(sd: dict, prefix: str) -> list[torch.Tensor]:
    """Conv weights of ``prefix.<i>.conv.weight`` in index order."""
    out, i = [], 0
    while f"{prefix}.{i}.conv.weight" in sd:
        out.append(sd[f"{prefix}.{i}.conv.weight"])
        i += 1
    return out


def _scale_from_kernel(kernel: torch.Tensor | None) -> float:
    """Downscale factor whose anti-alias kernel has this size (k = 2 round(2 (1/s - 1)) + 1)."""
    if kernel is None:
        return 1.0
    k = kernel.shape[-1]
    for s in (0.5, 0.25, 0.125, 1 / 3, 1 / 6):
        if 2 * round(4 * (1 / s - 1) / 2) + 1 == k:
            return s
    raise WeightsMismatchError(f"unexpected anti-alias kernel size {k} in the checkpoint")


def infer_params(generator_sd: dict, kp_sd: dict) -> dict:
    """Upstream ``model_params`` that produce exactly the tensor shapes of a checkpoint.

    The released vox files give the vox-256.yaml values; reading them from the shapes also lets
    other widths (tiny test models, retrained variants) load through the same code.
    """
    try:
        kp_downs = _blocks(kp_sd, "predictor.encoder.down_blocks")
        dm_downs = _blocks(generator_sd, "dense_motion_network.hourglass.encoder.down_blocks")
        gen_downs = _blocks(generator_sd, "down_blocks")
        common = {"num_kp": int(kp_sd["kp.weight"].shape[0]), "num_channels": int(kp_downs[0].shape[1]),
                  "estimate_jacobian": "jacobian.weight" in kp_sd}
        bottleneck = {k.split(".")[1] for k in generator_sd if k.startswith("bottleneck.")}
        dense = None
        if dm_downs:
            dense = {"block_expansion": int(dm_downs[0].shape[0]) // 2,
                     "max_features": max(int(w.shape[0]) for w in dm_downs), "num_blocks": len(dm_downs),
                     "scale_factor": _scale_from_kernel(generator_sd.get("dense_motion_network.down.weight"))}
        return {
            "common_params": common,
            "kp_detector_params": {"temperature": 0.1, "block_expansion": int(kp_downs[0].shape[0]) // 2,
                                   "max_features": max(int(w.shape[0]) for w in kp_downs),
                                   "num_blocks": len(kp_downs),
                                   "scale_factor": _scale_from_kernel(kp_sd.get("down.weight"))},
            "generator_params": {
                "block_expansion": int(generator_sd["first.conv.weight"].shape[0]),
                "max_features": max(int(w.shape[0]) for w in gen_downs), "num_down_blocks": len(gen_downs),
                "num_bottleneck_blocks": len(bottleneck),
                "estimate_occlusion_map": "dense_motion_network.occlusion.weight" in generator_sd,
                "dense_motion_params": dense,
            },
        }
    except (KeyError, IndexError, ValueError) as exc:
        raise WeightsMismatchError(
            f"The checkpoint does not have the FOMM layout ({type(exc).__name__}: {exc}). Use "
            "vox-cpk.pth.tar or vox-adv-cpk.pth.tar from first-order-model.") from exc


def load_fomm_checkpoint(path: str | os.PathLike, params: dict | None = None, name: str = "vox") -> FommModel:
    """Load a released FOMM checkpoint (weights-only, strict key check) onto the CPU.

    ``params`` defaults to the ones read from the checkpoint's shapes (vox-256 for released files).
    """
    ckpt = weights.load_state_dict(path)
    missing = [k for k in ("generator", "kp_detector") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightsMismatchError(
            f"'{os.fspath(path)}' is not a FOMM checkpoint: it lacks {missing} (found {found}). "
            "Use vox-cpk.pth.tar or vox-adv-cpk.pth.tar from first-order-model.")
    params = params or infer_params(ckpt["generator"], ckpt["kp_detector"])
    generator, kp_detector = build_fomm(params)
    weights.load_into(generator, ckpt["generator"], "FOMM generator")
    weights.load_into(kp_detector, ckpt["kp_detector"], "FOMM keypoint detector")
    return FommModel(generator, kp_detector, name, copy.deepcopy(params))
