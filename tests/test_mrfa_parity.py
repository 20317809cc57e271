"""Parity of our MRFA networks with upstream, on identical random weights (fp32, CPU).

Fixture ``fixtures/mrfa/parity_tiny_64px.npz`` was made with upstream JialeTao/MRFA @ 20f935f
(torch 2.14.1 CPU, torchvision 0.29.1; ``timm.trunc_normal_`` stubbed by ``torch.nn.init``'s): the
networks built as in ``modules/model.py`` (``get_pose_net(cfg.mtia_kp_detector)``,
``DenseMotionNetwork(**cfg.dense_motion)``, ``RaftFlow(**cfg.raft_flow)``, ``BGMotionPredictor()``)
from the tiny config stored in the fixture (64 px, narrow widths; the refinement generator keeps the
released widths because upstream hard-codes its context-projection channels), each filled with
``parity_utils.random_state_dict(net, seed + i)`` for i over encoder, dense_motion, decoder,
bg_predictor (seed 1234), in eval mode. Inputs: one source and 6 driving frames (smooth noise,
stored as uint8, /255). Upstream ran frame by frame, as ``demo.py:make_animation`` does:
absolute keypoints; relative keypoints (``animate_ddp.py:normalize_kp`` with relative movement,
relative jacobian and adapt_movement_scale); and absolute with background motion, where
``bg_param = bg_predictor(source, driving)`` feeds the dense motion network as in
``MRFA.forward``. Stored: keypoints and jacobians, bg matrices, dense-motion deformation and
occlusion logits (absolute, absolute_bg), and the 6 animated frames per mode. Here all 6 frames go
through our networks as one batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from motionsuite.models.fomm.primitives import AntiAliasInterpolation2d
from motionsuite.models.mrfa import MRFAConfig, build_networks
from motionsuite.pipelines.fomm.motion import MotionOptions, normalize_kp
from parity_utils import max_abs_diff, random_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "mrfa" / "parity_tiny_64px.npz"
TOL = 1e-4
ORDER = ("encoder", "dense_motion", "decoder", "bg_predictor")


def config_from_upstream(cfg: dict) -> MRFAConfig:
    """Our config from upstream's yaml sections (mtia_kp_detector.MODEL, dense_motion, raft_flow)."""
    m, dm, rf = cfg["mtia_kp_detector"]["MODEL"], cfg["dense_motion"], cfg["raft_flow"]
    s2, s3 = m["EXTRA"]["STAGE2"], m["EXTRA"]["STAGE3"]
    assert m["IMAGE_SIZE"][0] == m["IMAGE_SIZE"][1] == rf["size"]
    return MRFAConfig(
        image_size=rf["size"],
        num_kp=m["NUM_JOINTS"],
        kp_dim=m["DIM"],
        kp_depth=m["TRANSFORMER_DEPTH"],
        kp_heads=m["TRANSFORMER_HEADS"],
        kp_mlp_ratio=m["TRANSFORMER_MLP_RATIO"],
        kp_patch_size=m["PATCH_SIZE"][0],
        hr_stage2_channels=tuple(s2["NUM_CHANNELS"]),
        hr_stage2_blocks=tuple(s2["NUM_BLOCKS"]),
        hr_stage2_modules=s2["NUM_MODULES"],
        hr_stage3_channels=tuple(s3["NUM_CHANNELS"]),
        hr_stage3_blocks=tuple(s3["NUM_BLOCKS"]),
        hr_stage3_modules=s3["NUM_MODULES"],
        dm_block_expansion=dm["block_expansion"],
        dm_max_features=dm["max_features"],
        dm_num_blocks=dm["num_blocks"],
        dm_scale_factor=dm["scale_factor"],
        corr_dim=rf["dim"],
        gen_block_expansion=rf["generator"]["block_expansion"],
        gen_max_features=rf["generator"]["max_features"],
        gen_num_up_blocks=rf["generator"]["num_up_blocks"],
        enc_block_expansion=rf["driving_encoder"]["block_expansion"],
        enc_max_features=rf["driving_encoder"]["max_features"],
        enc_num_blocks=rf["driving_encoder"]["num_blocks"],
        background=True,
    )


@pytest.fixture(scope="module")
def parity():
    data = dict(np.load(FIXTURE))
    cfg = config_from_upstream(json.loads(str(data["config"])))
    nets = build_networks(cfg)
    for i, name in enumerate(ORDER):
        nets[name].load_state_dict(random_state_dict(nets[name], int(data["seed"]) + i))
        nets[name].eval()
    source = torch.from_numpy(data["source_u8"]).float() / 255
    driving = torch.from_numpy(data["driving_u8"]).float() / 255
    with torch.no_grad():
        kp_s, kp_d = nets["encoder"](source), nets["encoder"](driving)
    return data, cfg, nets, source, driving, kp_s, kp_d


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


def test_keypoint_transformer(parity):
    data, _, _, _, _, kp_s, kp_d = parity
    assert max_abs_diff(kp_s["value"], _t(data["kp_source"])) <= TOL
    assert max_abs_diff(kp_s["jacobian"], _t(data["jac_source"])) <= TOL
    assert max_abs_diff(kp_d["value"], _t(data["kp_driving"])) <= TOL
    assert max_abs_diff(kp_d["jacobian"], _t(data["jac_driving"])) <= TOL


@torch.no_grad()
def test_background_predictor(parity):
    data, _, nets, source, driving, _, _ = parity
    bg = nets["bg_predictor"](source, driving)  # source broadcast over the 6 frames
    assert max_abs_diff(bg, _t(data["bg_param"])) <= TOL
    assert torch.equal(bg[:, 2], torch.tensor([0.0, 0.0, 1.0]).expand(6, 3))


@pytest.mark.parametrize("mode", ["absolute", "absolute_bg"])
@torch.no_grad()
def test_dense_motion_and_decoder(parity, mode):
    """Each network on upstream's inputs: dense motion on upstream keypoints, the decoder on
    upstream's prior motion, so a difference is pinned to one network."""
    data, cfg, nets, source, _, _, _ = parity
    kp_s = {"value": _t(data["kp_source"]), "jacobian": _t(data["jac_source"])}
    kp_d = {"value": _t(data["kp_driving"]), "jacobian": _t(data["jac_driving"])}
    bg = _t(data["bg_param"]) if mode == "absolute_bg" else None
    motion = nets["dense_motion"](source, kp_d, kp_s, bg_param=bg)
    assert max_abs_diff(motion["deformation"], _t(data[f"deformation_{mode}"])) <= TOL
    assert max_abs_diff(motion["occlusion"], _t(data[f"occlusion_{mode}"])) <= TOL
    n = 2  # the decoder alone on two frames (all six run end to end below)
    prior = {
        "deformation": _t(data[f"deformation_{mode}"][:n]),
        "occlusion": _t(data[f"occlusion_{mode}"][:n]),
    }
    small = AntiAliasInterpolation2d(3, cfg.dm_scale_factor)(source)
    frames = nets["decoder"](kp_s["value"], kp_d["value"][:n], prior, small, source)
    assert max_abs_diff(frames, _t(data[f"frames_{mode}"][:n])) <= TOL


@pytest.mark.parametrize("mode", ["absolute", "relative", "absolute_bg"])
@torch.no_grad()
def test_six_frames_end_to_end(parity, mode):
    """All 6 driving frames in one batch (upstream: one at a time) through all networks."""
    data, cfg, nets, source, driving, kp_s, kp_d = parity
    rel = mode == "relative"
    initial = {k: v[:1] for k, v in kp_d.items()}
    kp_norm = normalize_kp(kp_s, kp_d, initial, MotionOptions(rel, rel, adapt_movement_scale=True))
    bg = nets["bg_predictor"](source, driving) if mode == "absolute_bg" else None
    motion = nets["dense_motion"](source, kp_norm, kp_s, bg_param=bg)
    small = AntiAliasInterpolation2d(3, cfg.dm_scale_factor)(source)
    frames = nets["decoder"](kp_s["value"], kp_norm["value"], motion, small, source)
    assert frames.shape == (6, 3, cfg.image_size, cfg.image_size)
    assert max_abs_diff(frames, _t(data[f"frames_{mode}"])) <= TOL


def test_state_dict_keys_are_the_released_layout():
    """The full-size networks carry the key names of the released checkpoints (spot checks from
    upstream's state dict at the released config), and nothing of the training-only VGG."""
    with torch.device("meta"):  # shapes only: no time spent initialising 120M parameters
        nets = build_networks(MRFAConfig(background=True))
    enc, dec = nets["encoder"].state_dict(), nets["decoder"].state_dict()
    assert enc["transformer.transformer.layers.0.0.fn.fn.to_qkv.weight"].shape == (576, 192)
    assert enc["transformer.pos_embedding"].shape == (1, 256, 192)
    assert enc["pre_feature.stage3.3.fuse_layers.0.2.0.weight"].shape == (32, 128, 1, 1)
    assert dec["pos_embedding"].shape == (1, 10, 64, 64)
    assert dec["corr_enc.convc1.weight"].shape == (128, 98, 1, 1)
    assert dec["to_context.5.weight"].shape == (192, 64, 1, 1)
    assert dec["generator.channel_block.0.conv1.weight"].shape == (512, 1024, 3, 3)
    assert nets["bg_predictor"].state_dict()["bg_encoder.conv1.weight"].shape == (64, 6, 7, 7)
    assert nets["dense_motion"].state_dict()["down.weight"].shape == (3, 1, 13, 13)
    total = sum(p.numel() for n in ("encoder", "dense_motion", "decoder") for p in nets[n].parameters())
    assert abs(total / 1e6 - (12.283 + 37.730 + 64.325)) < 0.01
