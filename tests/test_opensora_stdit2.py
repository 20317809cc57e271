"""Parity of STDiT2 (Open-Sora 1.1) with upstream and loading through the released layout.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU, fp32):
upstream ``opensora/models/stdit/stdit2.py`` of hpcaitech/Open-Sora branch ``opensora/v1.1``
(c37e6d6; RoPE before q/k norm, i.e. ``qk_norm_legacy``), with xformers' ``memory_efficient_attention``
replaced by SDPA under a block-diagonal mask and colossalai/pandarallel imports stubbed, built
``STDiT2(STDiT2Config(**config, enable_flash_attn=False, enable_layernorm_kernel=False))`` with the
tiny config stored in the metadata. Every tensor was set with ``parity_utils.random_state_dict(model,
weight_seed, gain)`` except ``rope.freqs`` (deterministic). It recorded the outputs for the stored
inputs with height 240, width 426, ar 240/426, num_frames 16, fps 24: with caption mask and
``x_mask``, with the caption mask only, without masks, and a CFG batch (two prompts + two null
captions, prompt masks reused).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.models.opensora import legacy_loading
from motionsuite.models.opensora.stdit2 import STDiT2, STDiT2Config
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "opensora" / "stdit2_parity.safetensors"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    model = STDiT2(STDiT2Config.from_dict(json.loads(meta["config"]))).eval()
    assert sorted(model.state_dict()) == json.loads(meta["keys"])
    sd = random_state_dict(model, int(meta["weight_seed"]), gain=float(meta["gain"]))
    sd["rope.freqs"] = model.state_dict()["rope.freqs"].clone()
    model.load_state_dict(sd)
    return model, tensors


def _args(batch=2):
    return dict(
        height=torch.full((batch,), 240.0),
        width=torch.full((batch,), 426.0),
        num_frames=torch.full((batch,), 16.0),
        ar=torch.full((batch,), 240 / 426),
        fps=torch.full((batch,), 24.0),
    )


@torch.no_grad()
def test_forward_matches_upstream(fixture):
    model, f = fixture
    x, t, y, mask, x_mask = f["x"], f["t"], f["y"], f["mask"], f["x_mask"].bool()
    cases = {
        "out_mask_xmask": model(x, t, y, mask=mask, x_mask=x_mask, **_args()),
        "out_mask": model(x, t, y, mask=mask, **_args()),
        "out_nomask": model(x, t, y, **_args()),
    }
    for name, out in cases.items():
        assert max_abs_diff(out, f[name]) <= TOL, name


@torch.no_grad()
def test_cfg_batch_with_scalar_conditioning(fixture):
    """Null captions with the prompt mask reused; scalar size/fps inputs broadcast over the batch."""
    model, f = fixture
    x, t, y, mask, x_mask = f["x"], f["t"], f["y"], f["mask"], f["x_mask"].bool()
    y4 = torch.cat([y.squeeze(1), model.null_caption(2)])
    out = model(
        torch.cat([x, x]), torch.cat([t, t]), y4, mask=mask, x_mask=x_mask.repeat(2, 1),
        height=240, width=426, num_frames=16, fps=24,
    )  # fmt: skip
    assert max_abs_diff(out, f["out_cfg"]) <= TOL


@torch.no_grad()
def test_rope_order_matters(fixture):
    """The legacy order (RoPE before q/k norm) is what reproduces v1.1; the 1.2 order differs."""
    model, f = fixture
    config = STDiT2Config(**{**model.config.__dict__, "qk_norm_legacy": False})
    other = STDiT2(config).eval()
    other.load_state_dict(model.state_dict())
    out = other(f["x"], f["t"], f["y"], mask=f["mask"], **_args())
    assert max_abs_diff(out, f["out_mask"]) > 1e-3


def test_released_layout_roundtrip(tmp_path, fixture):
    """config.json + model.safetensors (hpcai-tech/OpenSora-STDiT-v2-stage3 layout) load back."""
    model, f = fixture
    folder = tmp_path / "OpenSora-STDiT-v2-stage3"
    legacy_loading.save_pretrained(model, folder)
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["model_type"] == "stdit2" and cfg["hidden_size"] == 48
    loaded = legacy_loading.load_stdit2(folder)
    assert loaded.config.qk_norm_legacy  # released config.json has no such field: legacy is the default
    with torch.no_grad():
        out = loaded(f["x"], f["t"], f["y"], mask=f["mask"], **_args())
    assert max_abs_diff(out, f["out_mask"]) <= TOL


def test_pth_checkpoint_without_rope_loads(tmp_path, fixture):
    """A training-format .pth (``{"model": sd}`` or a bare sd) next to its config loads too."""
    model, f = fixture
    sd = {k: v for k, v in model.state_dict().items() if k != "rope.freqs"}
    path = tmp_path / "stdit2.pth"
    torch.save(sd, path)
    path.with_suffix(".json").write_text(json.dumps(model.config.to_dict()))
    loaded = legacy_loading.load_stdit2(path)
    with torch.no_grad():
        out = loaded(f["x"], f["t"], f["y"], mask=f["mask"], **_args())
    assert max_abs_diff(out, f["out_mask"]) <= TOL


def test_missing_and_wrong_files_are_explained(tmp_path, fixture):
    model, _ = fixture
    with pytest.raises(FileNotFoundError, match="OpenSora-STDiT-v2-stage3"):
        legacy_loading.load_stdit2(tmp_path / "nothing")
    folder = legacy_loading.save_pretrained(model, tmp_path / "bad")
    sd = dict(model.state_dict())
    sd.pop("t_block_temp.1.weight")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="t_block_temp.1.weight"):
        legacy_loading.load_stdit2(folder)
