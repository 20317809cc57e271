"""Building and loading the FOMM networks (vox-256 / vox-adv-256) from the released checkpoints.

The released ``vox-cpk.pth.tar`` and ``vox-adv-cpk.pth.tar`` are plain ``torch.save`` dicts (not tar
archives) holding ``generator`` and ``kp_detector`` state dicts next to training-only entries
(``discriminator``, optimizers, ``epoch``), which are ignored here.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

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

    @property
    def size(self) -> int:
        """Square input resolution the weights were trained on."""
        return 256


def build_fomm(params: dict | None = None) -> tuple[OcclusionAwareGenerator, KPDetector]:
    """Networks for an upstream ``model_params`` dict (default vox-256), in eval mode."""
    p = params or VOX_256
    generator = OcclusionAwareGenerator(**p["generator_params"], **p["common_params"])
    kp_detector = KPDetector(**p["kp_detector_params"], **p["common_params"])
    return generator.eval(), kp_detector.eval()


def load_fomm_checkpoint(path: str | os.PathLike, params: dict | None = None, name: str = "vox") -> FommModel:
    """Load a released FOMM checkpoint (weights-only, strict key check) onto the CPU."""
    ckpt = weights.load_state_dict(path)
    missing = [k for k in ("generator", "kp_detector") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise WeightsMismatchError(
            f"'{os.fspath(path)}' is not a FOMM checkpoint: it lacks {missing} (found {found}). "
            "Use vox-cpk.pth.tar or vox-adv-cpk.pth.tar from first-order-model.")
    generator, kp_detector = build_fomm(params)
    weights.load_into(generator, ckpt["generator"], "FOMM generator")
    weights.load_into(kp_detector, ckpt["kp_detector"], "FOMM keypoint detector")
    return FommModel(generator, kp_detector, name, copy.deepcopy(params or VOX_256))
