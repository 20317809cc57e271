"""Parity of the DisPose ControlNet (flow/trajectory embedding, PointAdapter, residuals) with upstream.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU fp32, the
upstream pins diffusers 0.27.0 / huggingface_hub 0.25.2, transformers 4.44.2): upstream
lihxxx/DisPose @ c38ab13 ``mimicmotion/modules/controlnet.py::ControlNetSVDModel.from_unet`` was
built on the tiny UNet config of ``dispose_tiny.UNET``. Upstream hard-codes the PointAdapter widths
(1280-d embeddings, 320/640/1280/1280 channels), so for the tiny model only those numbers were
patched to ``POINT_EMBED`` and the UNet widths. Its state dict was overwritten with
``parity_utils.random_state_dict(sd, 21, gain=0.5)`` (zero convs included). With the inputs of
``_inputs`` below (same generator order; CFG batch 2 with one CLIP context, as upstream always
duplicates the keypoint features; 64x128 pixels; 3 frames; keypoints with -1 entries, dropped subsets
and a shared grid cell) it recorded the 12 down residuals (the first four every 2nd pixel), the mid
residual (``conditioning_scale`` 0.8), the motion-field embedding (every 2nd pixel) and the four
PointAdapter levels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dispose_tiny import POINT_EMBED, UNET
from motionsuite.models.dispose.controlnet import DisPoseControlNet
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "dispose" / "parity_controlnet.safetensors"
TOL = 1e-4


def _inputs(seed: int) -> tuple[dict, list[dict], tuple[int, int]]:
    g = torch.Generator().manual_seed(seed)
    b, f, h, w = 2, 3, 64, 128
    x = {
        "sample": torch.randn(b, f, 8, h // 8, w // 8, generator=g),
        "timestep": torch.tensor(-0.3),
        "enc": torch.randn(1, 1, 32, generator=g).repeat(b, 1, 1),
        "time_ids": torch.tensor([[6.0, 127.0, 0.0]] * b),
        "flow": torch.randn(b, f - 1, 2, h, w, generator=g) * 5,
        "traj": torch.randn(b, f - 1, 2, h, w, generator=g) * 0.1,
        "ref_emb": torch.randn(1, 18, POINT_EMBED, generator=g),
    }
    x["ref_emb"][0, [3, 7]] = 0
    cand = torch.rand(f, 18, 2, generator=g).double()
    subset = torch.arange(18.0).repeat(f, 1)
    subset[torch.rand(f, 18, generator=g) < 0.2] = -1
    cand[torch.rand(f, 18, generator=g) < 0.1] = -1.0
    cand[:, 5] = cand[:, 6]
    frames = [
        {"candidate": cand[i].numpy(), "subset": subset[i : i + 1].numpy(), "score": np.ones((1, 18))}
        for i in range(f)
    ]
    return x, frames, (h, w)


@pytest.fixture(scope="module")
def setup():
    with safe_open(str(FIXTURE), "pt") as fh:
        meta = fh.metadata()
        out = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no iterator)
    net = DisPoseControlNet.from_unet_config(UNET, point_embedding_channels=POINT_EMBED).eval()
    assert sorted(net.state_dict()) == json.loads(meta["keys"])
    net.load_state_dict(random_state_dict(net, int(meta["weight_seed"]), gain=float(meta["gain"])))
    return net, meta, out, _inputs(int(meta["input_seed"]))


@torch.no_grad()
def test_residuals_match_upstream(setup):
    net, meta, out, (x, frames, _) = setup
    down, mid = net(
        x["sample"],
        x["timestep"],
        x["enc"],
        x["time_ids"],
        x["flow"],
        x["traj"],
        frames,
        x["ref_emb"],
        conditioning_scale=float(meta["conditioning_scale"]),
    )
    assert len(down) == 12
    for i, d in enumerate(down):
        assert max_abs_diff(d[:, :, ::2, ::2] if i < 4 else d, out[f"out.down{i}"]) <= TOL, i
    assert max_abs_diff(mid, out["out.mid"]) <= TOL


@torch.no_grad()
def test_motion_field_embedding_matches_upstream(setup):
    net, _, out, (x, _, _) = setup
    emb = net.controlnet_cond_embedding(x["flow"], x["traj"])
    assert max_abs_diff(emb[:, :, ::2, ::2], out["out.cond_embedding"]) <= TOL


@torch.no_grad()
def test_point_adapter_matches_upstream(setup):
    net, _, out, (x, frames, (h, w)) = setup
    levels = net.point_adapter(frames, x["ref_emb"], h, w)
    for i, level in enumerate(levels):
        assert max_abs_diff(level[None], out[f"out.adapter{i}"]) <= TOL, i


@torch.no_grad()
def test_batch_one_without_guidance(setup):
    """Upstream crashes for CFG <= 1 (it always doubles the keypoint features); here batch 1 works."""
    net, _, out, (x, frames, _) = setup
    down, mid = net(
        x["sample"][:1],
        x["timestep"],
        x["enc"][:1],
        x["time_ids"][:1],
        x["flow"][:1],
        x["traj"][:1],
        frames,
        x["ref_emb"],
        conditioning_scale=0.8,
    )
    assert max_abs_diff(mid, out["out.mid"][:3]) <= TOL
    assert max_abs_diff(down[11], out["out.down11"][:3]) <= TOL
