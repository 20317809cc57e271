"""Loading the released FSRT checkpoints (``vox256.pt`` / ``vox256_2Source.pt`` + ``kp_detector.pt``).

A model checkpoint is a ``torch.save`` dict whose ``encoder``, ``decoder`` and ``expression_encoder``
entries are plain state dicts (the optimizer, discriminator and counters are training state and are
ignored). The keypoint detector is a separate plain state dict shared by all FSRT checkpoints.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace

import torch

from ...models.fsrt.config import FSRTConfig, build_networks
from ..core import weights
from ..core.device import get_offload_device
from ..core.errors import InputError, WeightsMismatchError

log = logging.getLogger("MotionSuite")
FOLDER = "fsrt"
SOURCE = "https://github.com/andrerochow/fsrt (README, Pretrained Checkpoints: Google Drive folder)"
WEIGHTS = {
    "vox256.pt": weights.WeightSpec(
        filename="vox256.pt", folder=FOLDER, source=SOURCE, size="about 0.6 GB with training state",
        description="FSRT trained on VoxCeleb at 256x256 with one source image",
    ),
    "vox256_2Source.pt": weights.WeightSpec(
        filename="vox256_2Source.pt", folder=FOLDER, source=SOURCE, size="about 0.6 GB with training state",
        description="FSRT trained on VoxCeleb at 256x256 with two source images",
    ),
    "kp_detector.pt": weights.WeightSpec(
        filename="kp_detector.pt", folder=FOLDER, source=SOURCE, size="about 57 MB",
        description="FOMM-style keypoint detector shared by all FSRT checkpoints",
    ),
}
MODEL_ENTRIES = ("encoder", "decoder", "expression_encoder")


@dataclass
class FSRTModel:
    """The four FSRT networks (node type ``MS_FSRT_MODEL``)."""

    kp_detector: torch.nn.Module
    expression_encoder: torch.nn.Module
    encoder: torch.nn.Module
    decoder: torch.nn.Module
    config: FSRTConfig
    name: str = "vox256.pt"
    dtype: torch.dtype = torch.float32  # encoder/decoder weights; detector + expression stay fp32

    def modules(self) -> list[torch.nn.Module]:
        return [self.kp_detector, self.expression_encoder, self.encoder, self.decoder]


def _count(sd: dict, prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})


def config_from_state_dicts(ckpt: dict, kp_sd: dict, image_size: int = 256) -> FSRTConfig:
    """Widths read off the tensor shapes (released files give the defaults; tiny test models load too).

    The positional-encoding octaves are not visible in the shapes; the released values (16 pixel,
    4 keypoint octaves) are checked against the encoder's input width.
    """
    try:
        enc, dec, expr = (ckpt[k] for k in MODEL_ENTRIES)
        num_kp = kp_sd["kp.weight"].shape[0]
        n_expr = _count(expr, "expression_mlp.")
        n_render = _count(dec, "render_mlp.")
        kp_downs = _count(kp_sd, "predictor.encoder.down_blocks.")
        cfg = FSRTConfig(
            num_kp=num_kp,
            expression_size=expr[f"expression_mlp.{2 * (n_expr - 1)}.weight"].shape[0],
            conv_hidden=enc["conv_blocks.0.layers.0.weight"].shape[0],
            num_conv_blocks=_count(enc, "conv_blocks."),
            token_dim=enc["per_patch_linear.weight"].shape[0],
            encoder_depth=_count(enc, "transformer.layers."),
            encoder_mlp_dim=enc["transformer.layers.0.1.fn.net.0.weight"].shape[0],
            query_mlp_hidden=dec["allocation_transformer.input_mlp.0.weight"].shape[0],
            decoder_depth=_count(dec, "allocation_transformer.transformer.layers."),
            render_hidden=dec["render_mlp.0.weight"].shape[0],
            render_layers=n_render - 1,
            expression_per_kp=expr["expression.weight"].shape[0] // num_kp,
            expression_mlp=tuple(expr[f"expression_mlp.{2 * i}.weight"].shape[0] for i in range(n_expr - 1)),
            kp_block_expansion=kp_sd["predictor.encoder.down_blocks.0.conv.weight"].shape[0] // 2,
            kp_max_features=max(kp_sd[f"predictor.encoder.down_blocks.{i}.conv.weight"].shape[0]
                                for i in range(kp_downs)),
            kp_num_blocks=kp_downs,
            kp_scale_factor=_scale_from_kernel(kp_sd.get("down.weight")),
            image_size=image_size,
        )
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        raise WeightsMismatchError(
            f"This file is not an FSRT checkpoint: it lacks {exc}. Use the released vox256.pt or "
            "vox256_2Source.pt (entries encoder, decoder, expression_encoder) with kp_detector.pt."
        ) from exc
    in_dim = enc["conv_blocks.0.layers.0.weight"].shape[1]
    expected = 3 + cfg.pix_encoding_dim + cfg.kp_encoding_dim + cfg.expression_size
    if in_dim != expected:
        raise WeightsMismatchError(
            f"The FSRT encoder expects {in_dim} input channels, but the released positional encodings "
            f"give {expected}; this checkpoint was trained with other octave settings."
        )
    return cfg


def _scale_from_kernel(kernel: torch.Tensor | None) -> float:
    """Downscale factor whose anti-alias kernel has this size (k = 2 round(2 (1/s - 1)) + 1)."""
    if kernel is None:
        return 1.0
    k = kernel.shape[-1]
    for s in (0.5, 0.25, 0.125):
        if 2 * round(2 * (1 / s - 1)) + 1 == k:
            return s
    raise ValueError(f"unexpected anti-alias kernel size {k} in the keypoint detector")


def check_image_size(cfg: FSRTConfig) -> None:
    """The keypoint detector's hourglass needs the downscaled frame divisible by 2^blocks (released
    model: multiples of 128), and the encoder's conv stem by 2^conv blocks."""
    step = max(round(1 / cfg.kp_scale_factor) * 2**cfg.kp_num_blocks, 2**cfg.num_conv_blocks)
    if cfg.image_size < step or cfg.image_size % step:
        raise InputError(f"image_size {cfg.image_size} does not fit this FSRT model: use a multiple of "
                         f"{step} (the released models were trained at 256).")


def load_model(path: str | os.PathLike, kp_path: str | os.PathLike, image_size: int = 256,
               dtype: torch.dtype = torch.float32) -> FSRTModel:
    """Networks from a model ``.pt`` and ``kp_detector.pt`` (weights_only, strict keys), in eval mode.

    ``dtype`` applies to the encoder and decoder (the heavy part); the keypoint detector and the
    expression encoder stay in fp32 so keypoints (softmax at temperature 0.1) keep their precision.
    """
    ckpt = weights.load_state_dict(path)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in MODEL_ENTRIES):
        raise WeightsMismatchError(
            f"'{os.path.basename(path)}' is not an FSRT model checkpoint: it needs the entries "
            f"{', '.join(MODEL_ENTRIES)}. (kp_detector.pt is loaded separately.)"
        )
    kp_sd = weights.load_state_dict(kp_path)
    if not isinstance(kp_sd, dict) or "kp.weight" not in kp_sd:
        raise WeightsMismatchError(
            f"'{os.path.basename(kp_path)}' is not the FSRT keypoint detector: it has no 'kp.weight'. "
            "Use kp_detector.pt from the FSRT release."
        )
    cfg = config_from_state_dicts(ckpt, kp_sd, image_size)
    check_image_size(cfg)
    nets = build_networks(cfg)
    sources = {**{k: ckpt[k] for k in MODEL_ENTRIES}, "kp_detector": kp_sd}
    for key, net in nets.items():
        weights.load_into(net, sources[key], what=f"FSRT {key}", strict=True)
        net.eval().requires_grad_(False).to(get_offload_device())
    for key in ("encoder", "decoder"):
        nets[key].to(dtype)
    count = sum(p.numel() for net in nets.values() for p in net.parameters()) / 1e6
    log.info("FSRT: loaded %s and %s (%.1fM parameters, encoder/decoder in %s)", path, kp_path, count,
             str(dtype).replace("torch.", ""))
    return FSRTModel(**nets, config=cfg, name=os.path.basename(path), dtype=dtype)


def with_image_size(model: FSRTModel, image_size: int) -> FSRTModel:
    """The same networks run at another square size."""
    cfg = replace(model.config, image_size=image_size)
    check_image_size(cfg)
    return replace(model, config=cfg)
