"""Loading the released part-swap checkpoints (motion-cosegmentation) and the BiSeNet face parser.

Two checkpoint layouts exist (both ``torch.save`` dicts with a ``.pth.tar`` suffix):
- ``vox-{5,10,15}segments.pth.tar``: ``segmentation_module`` + ``reconstruction_module`` (plus
  optimizers and ``epoch``, ignored);
- FOMM files (``vox-first-order.pth.tar``, ``vox-cpk.pth.tar``, ``vox-adv-cpk.pth.tar``):
  ``kp_detector`` + ``generator``. Upstream's "first order motion model" alignment reads them as a
  10-part model: keypoints are the part shifts, jacobians the part affines, the generator keeps its
  dense motion network, and the kp detector's ``semantic_seg`` head (when the file has one) is the
  part segmentation. Without it the learned parts are unusable, so such a model needs the face parser.
Network widths are read from the tensor shapes, so narrower re-trainings (and the tests' tiny
models) load through the same code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ...models.partswap.face_parser import CLASSES, BiSeNet
from ...models.partswap.reconstruction_module import ReconstructionModule
from ...models.partswap.segmentation_module import SegmentationModule
from ..core import weights
from ..core.device import get_offload_device
from ..core.errors import WeightsMismatchError
from ..fomm.model import infer_params as infer_fomm_params

FOLDER = "partswap"
_COSEG = (
    "https://github.com/AliaksandrSiarohin/motion-cosegmentation (README, pre-trained checkpoints: "
    "Google Drive / Yandex Disk folder)"
)
WEIGHTS: dict[str, weights.WeightSpec] = {
    f"vox-{n}segments.pth.tar": weights.WeightSpec(
        filename=f"vox-{n}segments.pth.tar",
        folder=FOLDER,
        source=_COSEG,
        size="about 90 MB (from the parameter count)",
        description=f"Part swap with {n} learned face/head parts, VoxCeleb 256x256.",
    )
    for n in (5, 10, 15)
}
WEIGHTS["vox-first-order.pth.tar"] = weights.WeightSpec(
    filename="vox-first-order.pth.tar",
    folder=FOLDER,
    source=_COSEG,
    size="about 240 MB (from the parameter count)",
    description="FOMM-aligned part swap (use with the face parser).",
)
PARSER = weights.WeightSpec(
    filename="79999_iter.pth",
    folder=FOLDER,
    size="about 53 MB",
    source="https://github.com/zllrunning/face-parsing.PyTorch (README: 'download the pre-trained model', "
    "Google Drive, file 79999_iter.pth)",
    description="BiSeNet face parser, 19 CelebAMask-HQ classes.",
)

# Part names of the released models as labelled by the FirstOrderMM seed pack (constants.py); the
# networks learned the parts without names, so these describe what each index covers on VoxCeleb.
SEGMENT_NAMES: dict[int, tuple[str, ...]] = {
    5: ("background", "chin", "frnt_face", "shoulder", "hair", "fr_head"),
    10: (
        "background",
        "lf_ear",
        "mouth",
        "lf_fr_head",
        "rt_ear",
        "frnt_face",
        "lt_cheek",
        "eyes",
        "rt_fr_head",
        "shoulder",
        "hair_top",
    ),
    15: (
        "background",
        "rt_fr_head",
        "eyes",
        "mouth",
        "lwr_shoulder",
        "shoulder",
        "lt_fr_head",
        "part_7",
        "hair_tip",
        "frnt_face",
        "rt_ear",
        "outer_hair",
        "lt_ear",
        "lt_hair",
        "rt_hair",
        "neck",
    ),
}


def segment_names(num_segments: int) -> tuple[str, ...]:
    """Names of the S + 1 channels of a learned segmentation (background first)."""
    return SEGMENT_NAMES.get(num_segments, ("background", *(f"part_{i}" for i in range(1, num_segments + 1))))


@dataclass
class PartSwapModel:
    """Segmentation + reconstruction networks of one checkpoint, optionally with the face parser."""

    segmentation: SegmentationModule
    generator: ReconstructionModule
    face_parser: BiSeNet | None = None
    name: str = "vox-10segments.pth.tar"
    first_order: bool = False  # FOMM-aligned variant (dense motion network in the generator)
    learned_segmentation: bool = True  # False: FOMM file without a semantic_seg head
    image_size: int = 256
    params: dict = field(default_factory=dict)

    @property
    def num_segments(self) -> int:
        return self.segmentation.num_segments

    @property
    def segment_names(self) -> tuple[str, ...]:
        return segment_names(self.num_segments)

    @property
    def parser_classes(self) -> tuple[str, ...]:
        n = self.face_parser.n_classes if self.face_parser is not None else 0
        return CLASSES if n == len(CLASSES) else tuple(f"class_{i}" for i in range(n))

    def modules(self) -> list[torch.nn.Module]:
        nets: list[torch.nn.Module] = [self.segmentation, self.generator]
        return nets + ([self.face_parser] if self.face_parser is not None else [])


def _count(sd: dict, prefix: str) -> int:
    return len({k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)})


def _scale_from_kernel(kernel: torch.Tensor | None) -> float:
    if kernel is None:
        return 1.0
    for s in (0.5, 0.25, 0.125):
        if 2 * round(4 * (1 / s - 1) / 2) + 1 == kernel.shape[-1]:
            return s
    raise WeightsMismatchError(f"unexpected anti-alias kernel size {kernel.shape[-1]} in the checkpoint")


def segmentation_params(sd: dict) -> dict:
    """SegmentationModule kwargs that reproduce the tensor shapes of ``sd``."""
    n = _count(sd, "predictor.encoder.down_blocks.")
    downs = [sd[f"predictor.encoder.down_blocks.{i}.conv.weight"] for i in range(n)]
    return {
        "num_segments": int(sd["shift.weight"].shape[0]),
        "num_channels": int(downs[0].shape[1]),
        "block_expansion": int(downs[0].shape[0]) // 2,
        "max_features": max(int(w.shape[0]) for w in downs),
        "num_blocks": n,
        "temperature": 0.1,
        "estimate_affine_part": "affine.weight" in sd,
        "scale_factor": _scale_from_kernel(sd.get("down.weight")),
    }


def reconstruction_params(sd: dict, num_segments: int) -> dict:
    """ReconstructionModule kwargs (without dense motion) that reproduce the shapes of ``sd``."""
    n = _count(sd, "down_blocks.")
    return {
        "num_channels": int(sd["final.weight"].shape[0]),
        "num_segments": num_segments,
        "block_expansion": int(sd["first.conv.weight"].shape[0]),
        "max_features": max(int(sd[f"down_blocks.{i}.conv.weight"].shape[0]) for i in range(n)),
        "num_down_blocks": n,
        "num_bottleneck_blocks": _count(sd, "bottleneck."),
    }


def _fomm_as_parts(ckpt: dict) -> tuple[dict, dict, dict, dict]:
    """Module kwargs and state dicts for a FOMM file read as a part model (upstream logger.py)."""
    kp, gen = ckpt["kp_detector"], ckpt["generator"]
    p = infer_fomm_params(gen, kp)
    g = p["generator_params"]
    if g["dense_motion_params"] is None:
        raise WeightsMismatchError("this FOMM generator has no dense motion network, which part swap needs.")
    k = p["kp_detector_params"]
    num = p["common_params"]["num_kp"]
    seg_kwargs = {
        "num_segments": num,
        "num_channels": p["common_params"]["num_channels"],
        "block_expansion": k["block_expansion"],
        "max_features": k["max_features"],
        "num_blocks": k["num_blocks"],
        "temperature": 0.1,
        "estimate_affine_part": "jacobian.weight" in kp,
        "scale_factor": k["scale_factor"],
    }
    rec_kwargs = {
        "num_channels": p["common_params"]["num_channels"],
        "num_segments": num,
        "block_expansion": g["block_expansion"],
        "max_features": g["max_features"],
        "num_down_blocks": g["num_down_blocks"],
        "num_bottleneck_blocks": g["num_bottleneck_blocks"],
        "dense_motion_params": g["dense_motion_params"],
    }
    renames = {"kp.": "shift.", "jacobian.": "affine.", "semantic_seg.": "segmentation."}
    seg_sd = {}
    for key, value in kp.items():
        for old, new in renames.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        seg_sd[key] = value
    return seg_kwargs, rec_kwargs, seg_sd, gen


def load_partswap_checkpoint(path: str | os.PathLike, image_size: int = 256) -> PartSwapModel:
    """Build the networks of a part-swap or FOMM ``.pth.tar`` (weights_only, strict keys) in eval mode."""
    ckpt = weights.load_state_dict(path)
    name = os.path.basename(os.fspath(path))
    if not isinstance(ckpt, dict):
        raise WeightsMismatchError(
            f"'{name}' is not a part-swap checkpoint (it holds a {type(ckpt).__name__})."
        )
    first_order = "segmentation_module" not in ckpt and {"kp_detector", "generator"} <= set(ckpt)
    try:
        if first_order:
            seg_kwargs, rec_kwargs, seg_sd, rec_sd = _fomm_as_parts(ckpt)
        elif {"segmentation_module", "reconstruction_module"} <= set(ckpt):
            seg_sd, rec_sd = ckpt["segmentation_module"], ckpt["reconstruction_module"]
            seg_kwargs = segmentation_params(seg_sd)
            rec_kwargs = reconstruction_params(rec_sd, seg_kwargs["num_segments"])
        else:
            raise WeightsMismatchError(
                f"'{name}' is not a part-swap checkpoint: it needs 'segmentation_module' and "
                f"'reconstruction_module' (vox-*segments.pth.tar) or 'kp_detector' and 'generator' "
                f"(vox-first-order.pth.tar, FOMM files); found {sorted(ckpt)[:8]}."
            )
    except (KeyError, IndexError, ValueError) as exc:
        if isinstance(exc, WeightsMismatchError):
            raise
        raise WeightsMismatchError(
            f"'{name}' does not have the part-swap layout ({type(exc).__name__}: {exc})."
        ) from exc
    segmentation = SegmentationModule(**seg_kwargs)
    generator = ReconstructionModule(**rec_kwargs)
    learned = "segmentation.weight" in seg_sd
    if not learned:  # FOMM file without a semantic head: keep the initial segmentation conv
        own = segmentation.state_dict()
        seg_sd = {
            **seg_sd,
            "segmentation.weight": own["segmentation.weight"],
            "segmentation.bias": own["segmentation.bias"],
        }
    weights.load_into(segmentation, seg_sd, "part-swap segmentation module")
    weights.load_into(generator, rec_sd, "part-swap reconstruction module")
    device = get_offload_device()
    for net in (segmentation, generator):
        net.eval().requires_grad_(False).to(device)
    return PartSwapModel(
        segmentation,
        generator,
        None,
        name,
        first_order,
        learned,
        image_size,
        {"segmentation": seg_kwargs, "reconstruction": rec_kwargs},
    )


def load_face_parser(path: str | os.PathLike) -> BiSeNet:
    """The BiSeNet parser from ``79999_iter.pth`` (a plain state dict; width read from the shapes)."""
    sd = weights.load_state_dict(path)
    name = os.path.basename(os.fspath(path))
    if not isinstance(sd, dict) or "cp.resnet.conv1.weight" not in sd or "conv_out.conv_out.weight" not in sd:
        raise WeightsMismatchError(
            f"'{name}' is not a BiSeNet face-parser state dict (keys cp.resnet.*, conv_out.*); "
            "use 79999_iter.pth from face-parsing.PyTorch."
        )
    parser = BiSeNet(
        n_classes=int(sd["conv_out.conv_out.weight"].shape[0]),
        base=int(sd["cp.resnet.conv1.weight"].shape[0]),
    )
    weights.load_into(parser, sd, "BiSeNet face parser")
    return parser.eval().requires_grad_(False).to(get_offload_device())
