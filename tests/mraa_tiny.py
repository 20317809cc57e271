"""A tiny-width MRAA checkpoint in the released ``vox256.pth`` layout, shared by the MRAA tests."""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.models.mraa import MRAAConfig, build_networks
from parity_utils import random_state_dict

TINY = MRAAConfig(
    num_regions=4,
    rp_block_expansion=4,
    rp_max_features=16,
    rp_num_blocks=3,
    gen_block_expansion=4,
    gen_max_features=16,
    gen_num_bottleneck_blocks=2,
    flow_block_expansion=4,
    flow_max_features=16,
    flow_num_blocks=3,
    id_bottle_size=8,
    pose_bottle_size=6,
    bg_block_expansion=4,
    bg_max_features=16,
    bg_num_blocks=3,
    image_size=64,
)


def write_checkpoint(path: Path, cfg: MRAAConfig = TINY, with_avd: bool = True, seed: int = 0) -> dict:
    """Entries as upstream ``train_avd.py`` saves them: networks, optimizers and epoch counters."""
    nets = build_networks(cfg)
    ckpt: dict = {key: random_state_dict(net, seed + i) for i, (key, net) in enumerate(sorted(nets.items()))}
    # a trained AVD decodes well-conditioned region frames; random weights alone do not
    ckpt["avd_network"]["decoder.9.bias"] += torch.tensor([0, 0, 0.5, 0, 0, 0.5]).repeat(cfg.num_regions)
    ckpt["optimizer_reconstruction"] = {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]}
    ckpt["optimizer_avd"] = {"state": {}, "param_groups": [{"lr": 1e-3, "params": [0]}]}
    ckpt["epoch_reconstruction"], ckpt["epoch_avd"] = 99, 29
    if not with_avd:
        del ckpt["avd_network"], ckpt["optimizer_avd"], ckpt["epoch_avd"]
    torch.save(ckpt, path)
    return ckpt
