"""Parity of STDiT (Open-Sora 1.0) with upstream and loading of the released ``.pth`` format.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU, fp32):
upstream ``opensora/models/stdit/stdit.py`` of hpcaitech/Open-Sora branch ``opensora/v1.0``
(d7518da), xformers' ``memory_efficient_attention`` replaced by SDPA under a block-diagonal mask and
colossalai/bs4 imports stubbed, built ``STDiT(input_size=(5, 8, 12), **config)`` with the tiny config
in the metadata (space_scale 0.5, time_scale 2/3, enable_flashattn/layernorm kernel off). All tensors
were set with ``parity_utils.random_state_dict(model, weight_seed, gain)`` except the fixed tables
``pos_embed``/``pos_embed_temporal``, which are stored in the fixture. Outputs were recorded with the
caption mask, without it, and for a CFG batch (two prompts + two null captions, prompt mask reused).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.models.opensora import legacy_loading
from motionsuite.models.opensora.stdit import STDiT, STDiTConfig, sincos_1d, sincos_2d
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "opensora" / "stdit_parity.safetensors"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    model = STDiT(STDiTConfig.from_dict(json.loads(meta["config"]))).eval()
    upstream_keys = json.loads(meta["keys"])
    assert sorted(model.state_dict()) == [k for k in upstream_keys if not k.startswith("pos_embed")]
    # the seeded values follow upstream's sorted key order, which includes the two tables
    ref = {k: model.state_dict().get(k, tensors.get(k)) for k in upstream_keys}
    sd = random_state_dict(ref, int(meta["weight_seed"]), gain=float(meta["gain"]))
    model.load_state_dict({k: v for k, v in sd.items() if not k.startswith("pos_embed")})
    return model, tensors, sd


def test_position_tables_match_upstream(fixture):
    model, f, _ = fixture
    c = model.config.hidden_size
    assert max_abs_diff(sincos_2d(4, 6, c, 0.5)[None], f["pos_embed"]) <= 1e-6
    assert (
        max_abs_diff(
            sincos_1d(torch.arange(5, dtype=torch.float64) * 1.5, c)[None].float(), f["pos_embed_temporal"]
        )
        <= 1e-6
    )


@torch.no_grad()
def test_forward_matches_upstream(fixture):
    model, f, _ = fixture
    x, t, y, mask = f["x"], f["t"], f["y"], f["mask"]
    assert max_abs_diff(model(x, t, y, mask=mask), f["out_mask"]) <= TOL
    assert max_abs_diff(model(x, t, y), f["out_nomask"]) <= TOL
    y4 = torch.cat([y.squeeze(1), model.null_caption(2)])
    assert max_abs_diff(model(torch.cat([x, x]), torch.cat([t, t]), y4, mask=mask), f["out_cfg"]) <= TOL


def test_released_pth_loads(tmp_path, fixture):
    """A training-format .pth with the positional tables and a longer null caption loads; the
    tables are dropped and the caption table cut to model_max_length."""
    model, f, sd = fixture
    stored = dict(sd)
    stored["y_embedder.y_embedding"] = torch.cat([sd["y_embedder.y_embedding"], torch.zeros(3, 32)])
    path = tmp_path / "OpenSora-v1-HQ-16x256x256.pth"
    torch.save(stored, path)
    assert legacy_loading.stdit_config_for(path).space_scale == 0.5
    loaded = legacy_loading.load_stdit(path, config=model.config)
    with torch.no_grad():
        out = loaded(f["x"], f["t"], f["y"], mask=f["mask"])
    assert max_abs_diff(out, f["out_mask"]) <= TOL


def test_short_caption_table_is_padded_with_last_row():
    sd = {"y_embedder.y_embedding": torch.arange(6.0).reshape(3, 2)}
    legacy_loading.fit_caption_table(sd, 5)
    assert sd["y_embedder.y_embedding"].tolist() == [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]]


def test_wrong_file_is_explained(tmp_path, fixture):
    model, _, sd = fixture
    path = tmp_path / "broken.pth"
    torch.save({k: v for k, v in sd.items() if "attn_temp" not in k}, path)
    with pytest.raises(ValueError, match="attn_temp"):
        legacy_loading.load_stdit(path, config=model.config)
    with pytest.raises(FileNotFoundError, match="hpcai-tech/Open-Sora"):
        legacy_loading.load_stdit(tmp_path / "missing.pth")
