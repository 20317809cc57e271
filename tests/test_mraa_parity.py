"""Parity of our MRAA networks and batched animation with upstream, on identical random weights.

Fixture ``fixtures/mraa/parity.npz`` was made with upstream snap-research/articulated-animation
@ 03f1968 (torch 2.14.1 CPU, scratch script ``make_fixture.py``), networks built as upstream's
``demo.py:load_checkpoints`` does and filled with ``parity_utils.random_state_dict(net, seed + i)``
(i over the sorted names avd_network, bg_predictor, generator, region_predictor), eval mode, fp32.
The AVD decoder's output bias then gets +0.5 on the diagonal affine entries of every region: with
purely random weights the decoded region frames are nearly singular, A_s A_d^-1 reaches ~50 and
1e-7 float noise (batched vs single-frame matmuls) grows to ~2e-4 in the frames; trained models
decode well-conditioned frames, as this does.

- ``vox_*``: the released ``config/vox256.yaml`` widths, seed 2024, on a 128x128 source and 2 driving
  frames (smooth random images stored as uint8, /255): region predictor outputs for all 3 images,
  the generator (prediction, occlusion, deformed source) on relative-mode params of frame 2 w.r.t.
  frame 1, the AVD network (source params repeated per frame) and the background predictor.
- ``small_*``: the same code with smaller widths and 4-block hourglasses (the yaml is stored in
  ``small_model_params``), seed 77, 64x64 source and 6 driving frames, animated one frame at a time
  as ``demo.py:make_animation`` with ``animate.py:get_animation_region_params`` in the standard,
  relative and avd modes, plus standard mode with the background predictor's motion (``bg``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from motionsuite.models.mraa import MRAAConfig, build_networks
from motionsuite.pipelines.mraa import MRAAModel, animate_tensors, relative_region_params
from parity_utils import max_abs_diff, random_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "mraa" / "parity.npz"
TOL = 1e-4
AVD_FRAME = 0.5  # added to the AVD output bias of the affine entries (see the module docstring)


def _config(mp: dict, size: int) -> MRAAConfig:
    """Our config from an upstream ``model_params`` dict."""
    rp, gen, avd, bg = (
        mp[k]
        for k in ("region_predictor_params", "generator_params", "avd_network_params", "bg_predictor_params")
    )
    flow = gen["pixelwise_flow_predictor_params"]
    return MRAAConfig(
        num_regions=mp["num_regions"],
        num_channels=mp["num_channels"],
        revert_axis_swap=mp["revert_axis_swap"],
        rp_block_expansion=rp["block_expansion"],
        rp_max_features=rp["max_features"],
        rp_num_blocks=rp["num_blocks"],
        rp_scale_factor=rp["scale_factor"],
        temperature=rp["temperature"],
        gen_block_expansion=gen["block_expansion"],
        gen_max_features=gen["max_features"],
        gen_num_down_blocks=gen["num_down_blocks"],
        gen_num_bottleneck_blocks=gen["num_bottleneck_blocks"],
        skips=gen["skips"],
        flow_block_expansion=flow["block_expansion"],
        flow_max_features=flow["max_features"],
        flow_num_blocks=flow["num_blocks"],
        flow_scale_factor=flow["scale_factor"],
        use_deformed_source=flow["use_deformed_source"],
        use_covar_heatmap=flow["use_covar_heatmap"],
        estimate_occlusion_map=flow["estimate_occlusion_map"],
        id_bottle_size=avd["id_bottle_size"],
        pose_bottle_size=avd["pose_bottle_size"],
        bg_block_expansion=bg["block_expansion"],
        bg_max_features=bg["max_features"],
        bg_num_blocks=bg["num_blocks"],
        bg_type=bg["bg_type"],
        image_size=size,
    )


def _model(cfg: MRAAConfig, seed: int) -> MRAAModel:
    nets = build_networks(cfg)
    for i, name in enumerate(sorted(nets)):
        sd = random_state_dict(nets[name], seed + i)
        if name == "avd_network":
            sd["decoder.9.bias"] += torch.tensor([0, 0, AVD_FRAME, 0, 0, AVD_FRAME]).repeat(cfg.num_regions)
        nets[name].load_state_dict(sd)
    return MRAAModel(**nets, config=cfg)


@pytest.fixture(scope="module")
def data():
    return dict(np.load(FIXTURE))


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


def test_released_state_dict_layout(data):
    """Same key names and shapes as upstream's networks built from config/vox256.yaml."""
    upstream = json.loads(data["vox_state_dict_layout"].tobytes().decode())
    ours = {
        k: {n: list(v.shape) for n, v in m.state_dict().items()}
        for k, m in build_networks(MRAAConfig()).items()
    }
    assert ours == upstream


def test_networks_at_released_widths(data):
    model = _model(MRAAConfig(image_size=128), int(data["vox_seed"]))
    x = t(data["vox_images_u8"]).float() / 255
    with torch.no_grad():
        rp = model.region_predictor(x)
        for key in ("shift", "covar", "affine", "heatmap"):
            assert max_abs_diff(rp[key], t(data[f"vox_rp_{key}"])) <= TOL, key
        src, drv = {k: v[:1] for k, v in rp.items()}, {k: v[1:] for k, v in rp.items()}
        frame2, frame1 = ({k: v[i : i + 1] for k, v in rp.items()} for i in (2, 1))
        new = relative_region_params(src, frame2, frame1)
        assert max_abs_diff(new["shift"], t(data["vox_rel_shift"])) <= TOL
        assert max_abs_diff(new["affine"], t(data["vox_rel_affine"])) <= TOL
        out = model.generator(x[:1], new, src, return_deformed=True)
        for key in ("prediction", "occlusion_map", "deformed"):
            assert max_abs_diff(out[key], t(data[f"vox_gen_{key}"])) <= TOL, key
        avd = model.avd_network(src, drv)  # source batch 1 broadcast over the 2 frames
        for key in ("shift", "affine", "covar"):
            assert max_abs_diff(avd[key], t(data[f"vox_avd_{key}"])) <= TOL, key
        assert max_abs_diff(model.bg_predictor(x[:1], x[1:]), t(data["vox_bg"])) <= TOL
    assert out["prediction"].std() > 0.01  # a real image, not a constant


@pytest.fixture(scope="module")
def small(data):
    mp = yaml.safe_load(data["small_model_params"].tobytes().decode())
    model = _model(_config(mp, 64), int(data["small_seed"]))
    x = t(data["small_images_u8"]).float() / 255
    return model, x[:1], x[1:]


@pytest.mark.parametrize("mode", ["standard", "relative", "avd", "bg"])
def test_animation_matches_upstream(data, small, mode):
    model, source, driving = small
    frames = animate_tensors(
        model,
        source,
        driving,
        mode="standard" if mode == "bg" else mode,
        batch_size=4,
        background_motion=mode == "bg",
    )
    assert frames.shape == (6, 3, 64, 64)
    assert frames.std() > 0.01
    assert max_abs_diff(frames, t(data[f"small_{mode}_prediction"])) <= TOL


def test_svd_signs_follow_the_cpu_path():
    """The principal-axis frames come from a CPU float32 SVD whatever the input dtype/device, so
    ``affine`` never depends on where the network runs; A A^T reproduces the covariance."""
    from motionsuite.models.mraa.region_predictor import covariance_sqrt

    g = torch.Generator().manual_seed(0)
    m = torch.randn(5, 10, 2, 2, generator=g, dtype=torch.float64)
    covar = m @ m.transpose(-1, -2) * 0.05
    a64 = covariance_sqrt(covar)
    a32 = covariance_sqrt(covar.float())
    u, s, _ = torch.linalg.svd(covar.float().reshape(-1, 2, 2))
    assert a64.dtype == torch.float64
    assert max_abs_diff(a64, a32) <= 1e-6
    assert max_abs_diff(a32.reshape(-1, 2, 2), u * s.sqrt().unsqueeze(-2)) == 0
    assert max_abs_diff(a32 @ a32.transpose(-1, -2), covar.float()) <= 1e-6
