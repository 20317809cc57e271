"""Parity of the MimicMotion/DisPose UNet and PoseNet with upstream lihxxx/DisPose @ c38ab13.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU fp32, the
upstream pins diffusers 0.27.0 / huggingface_hub 0.25.2, transformers 4.44.2): upstream
``mimicmotion/modules/unet.py::UNetSpatioTemporalConditionModel`` was built with the tiny config of
``dispose_tiny.UNET`` and ``mimicmotion/modules/pose_net.py::PoseNet(320)``; their state dicts were
overwritten with ``parity_utils.random_state_dict`` (UNet seed 11, gain 0.5; PoseNet seed 5). With
the inputs drawn below (``_inputs``, same generator order) it recorded the UNet output (v) with pose
latents + 12 down residuals + mid residual, with pose latents only, and plain; and the PoseNet
output. Only the outputs, seeds, config and upstream key list are stored.

Batch 1 on purpose: diffusers 0.27's ``TransformerSpatioTemporalModel`` broadcast the temporal
cross-attention context in (pixel, batch) order while the hidden states are (batch, pixel), so with
a batch of 2 different contexts (upstream's batched CFG: zeros and the CLIP embedding) the temporal
layers of pixel p in item b read the context of item (b*h*w + p) % 2. Later diffusers fixed it; the pack
follows the fixed behaviour, which equals upstream for batch 1 (and Tencent's per-half CFG).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from dispose_tiny import UNET
from motionsuite.models.dispose.pose_net import PoseNet
from motionsuite.models.dispose.unet import SVD_SKIP_MULTIPLIERS, MimicMotionUNet, skip_multipliers
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "dispose" / "parity_unet.safetensors"
TOL = 1e-4
SKIP_SHAPES = [(32, 8)] * 3 + [(32, 4)] + [(64, 4)] * 2 + [(64, 2)] + [(64, 2)] * 2 + [(64, 1)] * 3


def _inputs(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    b, f, h = 1, 3, 8
    x = {
        "sample": torch.randn(b, f, 8, h, h, generator=g),
        "timestep": torch.tensor(0.7),
        "enc": torch.randn(b, 1, 32, generator=g),
        "time_ids": torch.tensor([[6.0, 127.0, 0.02]] * b),
        "pose_latents": torch.randn(b * f, 32, h, h, generator=g),
    }
    x["res"] = [torch.randn(b * f, c, s, s, generator=g) for c, s in SKIP_SHAPES]
    x["mid"] = torch.randn(b * f, 64, 1, 1, generator=g)
    x["pose_image"] = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    return x


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        out = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    return meta, out, _inputs(99)


@pytest.fixture(scope="module")
def unet(fixture):
    meta, _, _ = fixture
    assert json.loads(meta["unet_config"]) == UNET
    model = MimicMotionUNet.from_config(UNET).eval()
    assert sorted(model.state_dict()) == json.loads(meta["unet_keys"])
    model.load_state_dict(random_state_dict(model, int(meta["weight_seed"]), gain=float(meta["gain"])))
    return model


def test_skip_multipliers_match_released_quirk(unet):
    assert tuple(skip_multipliers(unet)) == SVD_SKIP_MULTIPLIERS


@torch.no_grad()
@pytest.mark.parametrize("case", ["full", "pose", "plain"])
def test_unet_matches_upstream(unet, fixture, case):
    _, out, x = fixture
    kwargs = {}
    if case in ("full", "pose"):
        kwargs["pose_latents"] = x["pose_latents"]
    if case == "full":
        kwargs["down_block_additional_residuals"] = x["res"]
        kwargs["mid_block_additional_residual"] = x["mid"]
    v = unet(x["sample"], x["timestep"], x["enc"], x["time_ids"], return_dict=False, **kwargs)[0]
    assert max_abs_diff(v, out[f"out.unet_{case}"]) <= TOL


@torch.no_grad()
def test_residuals_do_not_leak_between_calls(unet, fixture):
    """The hooks read per-call inputs only: a plain call after a conditioned one is the stock UNet."""
    _, out, x = fixture
    unet(
        x["sample"],
        x["timestep"],
        x["enc"],
        x["time_ids"],
        pose_latents=x["pose_latents"],
        down_block_additional_residuals=x["res"],
        mid_block_additional_residual=x["mid"],
    )
    v = unet(x["sample"], x["timestep"], x["enc"], x["time_ids"]).sample
    assert max_abs_diff(v, out["out.unet_plain"]) <= TOL


def test_wrong_residual_count_is_rejected(unet, fixture):
    _, _, x = fixture
    with pytest.raises(ValueError, match="12 down-block residuals"):
        unet(
            x["sample"], x["timestep"], x["enc"], x["time_ids"], down_block_additional_residuals=x["res"][:4]
        )


@torch.no_grad()
def test_pose_net_matches_upstream(fixture):
    meta, out, x = fixture
    net = PoseNet().eval()
    net.load_state_dict(random_state_dict(net, int(meta["pose_net_seed"])))
    assert max_abs_diff(net(x["pose_image"]), out["out.pose_net"]) <= TOL
