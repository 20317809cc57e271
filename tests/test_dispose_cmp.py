"""CMP parity with upstream and loading from the released ``.pth.tar`` layout.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU fp32,
diffusers 0.27.0): upstream lihxxx/DisPose @ c38ab13
``mimicmotion/modules/cmp/models/modules/cmp.py::CMP`` was built from the released
``semiauto_annot/resnet50_vip+mpii_liteflow/config.yaml`` (28,516,422 params, 455 state-dict
entries), filled with ``parity_utils.random_state_dict(sd, 31)`` (BN statistics included), and the
upstream wrapper ``cmp_model.CMP.run`` (``image*2-1``, fp16 attempt falling back to fp32, 99-bin
``Fuser``, bilinear upsampling) was called with the 64x64 inputs of ``_inputs`` below. Upstream's
``.cuda()`` calls were neutralised for the CPU run. Stored: the raw logits (every 2nd pixel) and the
flow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.models.dispose.cmp import CMP
from motionsuite.pipelines.core.errors import WeightsMismatchError
from motionsuite.pipelines.dispose.loading import load_cmp
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "dispose" / "parity_cmp.safetensors"
TOL = 1e-4


def _inputs(seed: int, size: int):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, size, size, generator=g)
    sparse, mask = torch.zeros(1, 2, size, size), torch.zeros(1, 2, size, size)
    ys = torch.randint(0, size, (10,), generator=g)
    xs = torch.randint(0, size, (10,), generator=g)
    vec = torch.randn(10, 2, generator=g) * 8
    sparse[0, :, ys, xs] = vec.T
    mask[0, :, ys, xs] = 1
    return image, sparse, mask


@pytest.fixture(scope="module")
def setup():
    with safe_open(str(FIXTURE), "pt") as fh:
        meta = fh.metadata()
        out = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open has no iterator)
    net = CMP().eval()
    assert sorted(net.state_dict()) == json.loads(meta["keys"])
    net.load_state_dict(random_state_dict(net, int(meta["weight_seed"])))
    return net, meta, out


@torch.no_grad()
def test_cmp_matches_upstream(setup):
    net, meta, out = setup
    image, sparse, mask = _inputs(int(meta["input_seed"]), int(meta["size"]))
    logits = net(image * 2 - 1, torch.cat([sparse, mask], 1))
    assert max_abs_diff(logits[:, :, ::2, ::2], out["out.logits"]) <= TOL
    assert max_abs_diff(net.flow(image, sparse, mask), out["out.flow"]) <= TOL


@torch.no_grad()
def test_load_released_checkpoint_layout(setup, tmp_path):
    net, meta, out = setup
    ckpt = {
        "step": 42000,
        "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "momentum": 0.9, "params": [0, 1]}]},
    }
    path = tmp_path / "ckpt_iter_42000.pth.tar"
    torch.save(ckpt, path)
    loaded = load_cmp(path)
    image, sparse, mask = _inputs(int(meta["input_seed"]), int(meta["size"]))
    assert max_abs_diff(loaded.flow(image, sparse, mask), out["out.flow"]) <= TOL


def test_wrong_file_is_rejected(tmp_path):
    path = tmp_path / "ckpt_iter_42000.pth.tar"
    torch.save({"state_dict": {"module.foo.weight": torch.zeros(1)}}, path)
    with pytest.raises(WeightsMismatchError, match="MOFA-Video-Hybrid"):
        load_cmp(path)


def test_cmp_sparse_inputs():
    """Keypoint displacements reach CMP at 384x384: reference position scaled, frame minus reference."""
    import numpy as np
    from motionsuite.pipelines.dispose import motion

    g = np.random.default_rng(0)
    ref = g.uniform(0.1, 0.9, (18, 2))
    shifts = [np.zeros(2), np.array([0.05, 0.0]), np.array([-0.1, 0.02])]
    ids, score = np.arange(18.0)[None], np.ones((1, 18))
    frames = [{"candidate": ref + d, "subset": ids, "score": score} for d in shifts]
    sparse, mask = motion.cmp_sparse_inputs(frames, 200, 100)
    assert sparse.shape == mask.shape == (2, 2, 384, 384)
    for k in range(18):
        x = int(min(max(ref[k, 0] * 100, 0), 99) * 384 / 100)
        y = int(min(max(ref[k, 1] * 200, 0), 199) * 384 / 200)
        assert mask[:, :, y, x].eq(1).all()
    nose_x, nose_y = int(ref[0, 0] * 100 * 384 / 100), int(ref[0, 1] * 200 * 384 / 200)
    expected = torch.tensor([[0.05 * 384, 0.0], [-0.1 * 384, 0.02 * 384]], dtype=torch.float32)
    assert torch.allclose(sparse[:, :, nose_y, nose_x], expected, atol=1e-3)
