"""Loading the released MRFA checkpoints (``vox.pth``, ``celebvhq.pth``) into our networks.

A released file is ``{'model': state_dict, 'optimizer': ..., 'epoch': ...}`` where the state dict
comes from a DataParallel/DDP wrapper (``module.`` prefix) around upstream's ``MRFA`` module:
``encoder.*`` (keypoint transformer), ``dense_motion.*``, ``decoder.*`` (refinement decoder),
``bg_predictor.*`` (celebvhq only), plus the training-only ``vgg.*`` / ``pyramid.*`` / ``down.*``,
which are skipped (the VGG is never built, so nothing is downloaded at inference).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from ...models.mrfa.config import MRFAConfig, build_networks
from ..core import weights
from ..core.device import get_offload_device
from ..core.errors import WeightsMismatchError

FOLDER = "mrfa"
_SOURCE = "https://github.com/JialeTao/MRFA (README, pretrained models)"
WEIGHTS = {
    "vox.pth": weights.WeightSpec(
        filename="vox.pth",
        folder=FOLDER,
        size="about 0.46 GB of network weights (estimated from the parameter count; the file may "
        "also hold optimizer state)",
        source=_SOURCE,
        description="MRFA trained on VoxCeleb1 at 256x256 (faces)",
    ),
    "celebvhq.pth": weights.WeightSpec(
        filename="celebvhq.pth",
        folder=FOLDER,
        size="about 0.5 GB of network weights (estimated; may also hold optimizer state)",
        source=_SOURCE,
        description="MRFA trained on CelebV-HQ at 256x256 with background motion",
    ),
}
REQUIRED = ("encoder", "dense_motion", "decoder")
TRAINING_ONLY = ("vgg", "pyramid", "down")


@dataclass
class MRFAModel:
    """The networks of one checkpoint; ``bg_predictor`` is None for models without background motion."""

    encoder: torch.nn.Module
    dense_motion: torch.nn.Module
    decoder: torch.nn.Module
    bg_predictor: torch.nn.Module | None
    config: MRFAConfig
    name: str = "vox.pth"

    def modules(self) -> list[torch.nn.Module]:
        nets = [self.encoder, self.dense_motion, self.decoder]
        return nets + ([self.bg_predictor] if self.bg_predictor is not None else [])


def split_checkpoint(ckpt: dict) -> dict[str, dict[str, torch.Tensor]]:
    """{'encoder': sd, 'dense_motion': sd, ...} from a released file (or a bare/unwrapped state dict)."""
    sd = ckpt.get("model", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        raise WeightsMismatchError("This file is not an MRFA checkpoint: it holds no 'model' state dict.")
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        if not isinstance(key, str) or not torch.is_tensor(value):
            continue
        name = key[len("module.") :] if key.startswith("module.") else key
        head, _, rest = name.partition(".")
        if head in TRAINING_ONLY or not rest:
            continue
        parts.setdefault(head, {})[rest] = value
    missing = [k for k in REQUIRED if k not in parts]
    if missing:
        raise WeightsMismatchError(
            f"This file is not an MRFA checkpoint: it lacks the {', '.join(missing)} weights. Use the "
            "released vox.pth or celebvhq.pth (a dict whose 'model' entry holds module.encoder.*, "
            "module.dense_motion.*, module.decoder.*)."
        )
    return parts


def _count(sd: dict, prefix: str) -> int:
    return len({k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)})


def _stage(enc: dict, stage: str) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    modules = _count(enc, f"pre_feature.{stage}.")
    branches = _count(enc, f"pre_feature.{stage}.0.branches.")
    channels = tuple(
        enc[f"pre_feature.{stage}.0.branches.{b}.0.conv1.weight"].shape[0] for b in range(branches)
    )
    blocks = tuple(_count(enc, f"pre_feature.{stage}.0.branches.{b}.") for b in range(branches))
    return channels, blocks, modules


def _hourglass(sd: dict, prefix: str) -> tuple[int, int, int]:
    n = _count(sd, f"{prefix}encoder.down_blocks.")
    widths = [sd[f"{prefix}encoder.down_blocks.{i}.conv.weight"].shape[0] for i in range(n)]
    return widths[0] // 2, max(widths), n


def config_from_checkpoint(parts: dict[str, dict[str, torch.Tensor]], heads: int = 8) -> MRFAConfig:
    """Widths read off the tensor shapes, so the released models and smaller re-trainings both load.

    The number of attention heads leaves no trace in the shapes; the released models use 8.
    """
    enc, dm, dec = (parts[k] for k in REQUIRED)
    try:
        s2, s3 = _stage(enc, "stage2"), _stage(enc, "stage3")
        dim, patch_in = enc["transformer.patch_to_embedding.weight"].shape
        patch = math.isqrt(patch_in // s3[0][0])
        _, num_kp, h, _ = dec["pos_embedding"].shape
        dm_be, dm_max, dm_n = _hourglass(dm, "hourglass.")
        enc_be, enc_max, enc_n = _hourglass(dec, "kp.")
        gen_n = _count(dec, "generator.down_blocks.")
        kernel = dm["down.weight"].shape[-1]
        sigma = (kernel - 1) / 8  # kernel = 2 round(4 sigma) + 1 and sigma = (1/scale - 1) / 2
        return MRFAConfig(
            image_size=4 * h,
            num_kp=num_kp,
            num_channels=dec["generator.final.weight"].shape[0],
            kp_dim=dim,
            kp_depth=_count(enc, "transformer.transformer.layers."),
            kp_heads=heads,
            kp_mlp_ratio=enc["transformer.transformer.layers.0.1.fn.fn.net.0.weight"].shape[0] // dim,
            kp_patch_size=patch,
            hr_stage2_channels=s2[0],
            hr_stage2_blocks=s2[1],
            hr_stage2_modules=s2[2],
            hr_stage3_channels=s3[0],
            hr_stage3_blocks=s3[1],
            hr_stage3_modules=s3[2],
            dm_block_expansion=dm_be,
            dm_max_features=dm_max,
            dm_num_blocks=dm_n,
            dm_scale_factor=1 / (2 * sigma + 1),
            corr_dim=dec["kp_head.weight"].shape[0],
            gen_block_expansion=dec["generator.first.conv.weight"].shape[0],
            gen_max_features=max(
                dec[f"generator.down_blocks.{i}.conv.weight"].shape[0] for i in range(gen_n)
            ),
            gen_num_up_blocks=gen_n,
            enc_block_expansion=enc_be,
            enc_max_features=enc_max,
            enc_num_blocks=enc_n,
            background="bg_predictor" in parts,
        )
    except (KeyError, ValueError, IndexError, ZeroDivisionError) as exc:
        raise WeightsMismatchError(
            f"This file does not look like an MRFA checkpoint (could not read {exc}). Use the released "
            "vox.pth or celebvhq.pth."
        ) from exc


def load_model(path: str | os.PathLike) -> MRFAModel:
    """Build the networks from a released ``.pth`` (weights_only load, strict key check), eval mode."""
    parts = split_checkpoint(weights.load_state_dict(path))
    cfg = config_from_checkpoint(parts)
    nets = build_networks(cfg)
    for key, net in nets.items():
        weights.load_into(net, parts[key], what=f"MRFA {key}", strict=True)
        net.eval().requires_grad_(False).to(get_offload_device())
    return MRFAModel(
        encoder=nets["encoder"],
        dense_motion=nets["dense_motion"],
        decoder=nets["decoder"],
        bg_predictor=nets.get("bg_predictor"),
        config=cfg,
        name=os.path.basename(path),
    )
