"""Tiny-width part-swap checkpoints in the released layouts, shared by the node and workflow tests.

- ``vox-10segments.pth.tar``-like: segmentation_module, reconstruction_module, optimizers, epoch;
- ``vox-first-order.pth.tar``-like: a FOMM file (kp_detector with or without semantic_seg, generator
  with its dense motion network, discriminator, epoch);
- ``79999_iter.pth``-like: a plain BiSeNet state dict (stem width 8 instead of 64).
"""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.models.fomm.generator import OcclusionAwareGenerator
from motionsuite.models.fomm.keypoint_detector import KPDetector
from motionsuite.models.partswap.face_parser import BiSeNet
from motionsuite.models.partswap.reconstruction_module import ReconstructionModule
from motionsuite.models.partswap.segmentation_module import SegmentationModule
from parity_utils import random_state_dict

SEG = dict(block_expansion=4, max_features=16, num_blocks=3)
REC = dict(block_expansion=8, max_features=16, num_down_blocks=2, num_bottleneck_blocks=1)
DM = dict(block_expansion=4, max_features=16, num_blocks=3, scale_factor=0.25)


def segments_checkpoint(path: Path, num_segments: int = 10, seed: int = 0) -> dict:
    seg = SegmentationModule(num_segments=num_segments, **SEG)
    rec = ReconstructionModule(num_segments=num_segments, **REC)
    ckpt = {
        "segmentation_module": random_state_dict(seg, seed),
        "reconstruction_module": random_state_dict(rec, seed + 1),
        "optimizer_segmentation_module": {"state": {}, "param_groups": []},
        "optimizer_reconstruction_module": {"state": {}, "param_groups": []},
        "epoch": 3,
    }
    torch.save(ckpt, path)
    return ckpt


def fomm_checkpoint(path: Path, semantic_seg: bool = False, seed: int = 5) -> dict:
    kp = KPDetector(num_kp=10, **SEG)
    gen = OcclusionAwareGenerator(num_kp=10, **REC, dense_motion_params=DM)
    kp_sd = random_state_dict(kp, seed)
    if semantic_seg:
        conv = torch.nn.Conv2d(kp.predictor.out_filters, 11, 7, padding=3)
        kp_sd.update({f"semantic_seg.{k}": v for k, v in random_state_dict(conv, seed + 2).items()})
    ckpt = {
        "kp_detector": kp_sd,
        "generator": random_state_dict(gen, seed + 1),
        "discriminator": {},
        "epoch": 1,
    }
    torch.save(ckpt, path)
    return ckpt


def parser_file(path: Path, seed: int = 9) -> dict:
    sd = random_state_dict(BiSeNet(19, base=8), seed)
    torch.save(sd, path)
    return sd
