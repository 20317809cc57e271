"""Parity of STDiT3 with upstream Open-Sora 1.2 and loading through the released layout.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU, fp32):
upstream ``opensora/models/stdit/stdit3.py`` of hpcaitech/Open-Sora branch ``opensora/v1.2``
(bde3c42), with xformers' ``memory_efficient_attention`` replaced by SDPA under a block-diagonal
mask and colossalai imports stubbed, built ``STDiT3(STDiT3Config(**config, enable_flash_attn=False,
enable_layernorm_kernel=False))`` with the tiny config stored in the metadata. All tensors were set
with ``parity_utils.random_state_dict(model, weight_seed, gain)`` except ``rope.freqs``, which kept
its deterministic value. It recorded the outputs for the stored inputs with fps 24 and a 240×426
pixel size: with caption mask and ``x_mask`` (conditioning frames), with the caption mask only,
without masks, and a CFG batch (two prompts + two null captions, prompt masks reused).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.models.opensora import STDiT3, STDiT3Config
from motionsuite.pipelines.opensora import loading
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "opensora" / "stdit3_parity.safetensors"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    config = STDiT3Config.from_dict(json.loads(meta["config"]))
    model = STDiT3(config).eval()
    assert sorted(model.state_dict()) == json.loads(meta["keys"])
    sd = random_state_dict(model, int(meta["weight_seed"]), gain=float(meta["gain"]))
    sd["rope.freqs"] = model.state_dict()["rope.freqs"].clone()
    model.load_state_dict(sd)
    return model, tensors


def _args(tensors, batch=2):
    return dict(
        fps=torch.full((batch,), 24.0),
        height=torch.full((batch,), 240.0),
        width=torch.full((batch,), 426.0),
    )


@torch.no_grad()
def test_forward_matches_upstream(fixture):
    model, f = fixture
    x, t, y, mask, x_mask = f["x"], f["t"], f["y"], f["mask"], f["x_mask"].bool()
    cases = {
        "out_mask_xmask": model(x, t, y, mask=mask, x_mask=x_mask, **_args(f)),
        "out_mask": model(x, t, y, mask=mask, **_args(f)),
        "out_nomask": model(x, t, y, **_args(f)),
    }
    for name, out in cases.items():
        assert max_abs_diff(out, f[name]) <= TOL, name


@torch.no_grad()
def test_cfg_batch_reuses_prompt_mask_for_null_caption(fixture):
    model, f = fixture
    x, t, y, mask, x_mask = f["x"], f["t"], f["y"], f["mask"], f["x_mask"].bool()
    y4 = torch.cat([y.squeeze(1), model.null_caption(2)])
    out = model(
        torch.cat([x, x]),
        torch.cat([t, t]),
        y4,
        mask=mask,
        x_mask=x_mask.repeat(2, 1),
        fps=24.0,
        height=240,
        width=426,
    )
    assert max_abs_diff(out, f["out_cfg"]) <= TOL


@torch.no_grad()
def test_conditioning_frames_change_only_through_t0(fixture):
    """With every frame unmasked, x_mask=all True must equal no x_mask at all."""
    model, f = fixture
    x, t, y, mask = f["x"], f["t"], f["y"], f["mask"]
    ones = torch.ones(2, x.shape[2], dtype=torch.bool)
    a = model(x, t, y, mask=mask, x_mask=ones, **_args(f))
    assert max_abs_diff(a, f["out_mask"]) <= TOL


def test_released_layout_roundtrip(tmp_path, fixture):
    """config.json + model.safetensors (the HF repo layout) load back into an identical model."""
    model, f = fixture
    folder = tmp_path / "OpenSora-STDiT-v3"
    loading.save_stdit3(model, folder)
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["hidden_size"] == 64 and cfg["patch_size"] == [1, 2, 2]
    loaded = loading.load_stdit3(folder)
    with torch.no_grad():
        out = loaded(f["x"], f["t"], f["y"], mask=f["mask"], **_args(f))
    assert max_abs_diff(out, f["out_mask"]) <= TOL


def test_missing_rope_freqs_is_filled(tmp_path, fixture):
    model, _ = fixture
    sd = {k: v for k, v in model.state_dict().items() if k != "rope.freqs"}
    fresh = STDiT3(model.config)
    loading.load_stdit3_state_dict(fresh, sd)
    assert torch.equal(fresh.rope.freqs, model.rope.freqs)


def test_wrong_checkpoint_names_the_problem(fixture):
    model, _ = fixture
    sd = dict(model.state_dict())
    sd.pop("final_layer.linear.weight")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="final_layer.linear.weight"):
        loading.load_stdit3_state_dict(STDiT3(model.config), sd)
