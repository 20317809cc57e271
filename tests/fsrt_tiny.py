"""Tiny FSRT checkpoints in the released layout (``vox256*.pt`` dict + plain ``kp_detector.pt``)."""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.models.fsrt.config import FSRTConfig, build_networks
from parity_utils import random_state_dict

TINY = FSRTConfig(
    expression_size=8,
    conv_hidden=4,
    token_dim=24,
    encoder_depth=1,
    encoder_mlp_dim=16,
    query_mlp_hidden=16,
    render_hidden=16,
    render_layers=2,
    expression_per_kp=2,
    expression_mlp=(16,),
    kp_block_expansion=4,
    kp_max_features=16,
    kp_num_blocks=3,
    image_size=64,
)


def write_checkpoints(folder: Path, name: str = "vox256.pt", seed: int = 0) -> dict:
    """Save ``name`` (encoder, decoder, expression_encoder + training state) and ``kp_detector.pt``."""
    nets = build_networks(TINY)
    sds = {key: random_state_dict(net, seed + i) for i, (key, net) in enumerate(sorted(nets.items()))}
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = {key: sds[key] for key in ("encoder", "decoder", "expression_encoder")}
    ckpt.update(optimizer={"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
                discriminator={"conv.weight": torch.zeros(1)}, optimizer_disc={}, epoch_it=3, it=1000,
                t=12.5, loss_val_best=0.1, run_id=7)
    torch.save(ckpt, folder / name)
    torch.save(sds["kp_detector"], folder / "kp_detector.pt")
    return sds
