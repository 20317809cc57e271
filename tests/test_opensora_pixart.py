"""Parity of PixArt-α / Σ / MS with upstream Open-Sora and loading of the released ``.pth`` format.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU, fp32):
upstream ``opensora/models/pixart/pixart.py`` of hpcaitech/Open-Sora branch ``opensora/v1.2``
(bde3c42), xformers' ``memory_efficient_attention`` replaced by SDPA under a block-diagonal mask and
colossalai/bs4 imports stubbed, built four tiny models (metadata ``base`` + each case's ``kw``):
PixArt-α on a non-square 8×12 latent; with the 1-frame temporal table (``no_temporal_pos_emb``
False, space_scale 0.5); the Σ-2K style (space_scale 4, ``base_size`` 48 px = 24 patches); and
PixArtMS (space_scale 2) with ``data_info`` hw/ar. Each got ``parity_utils.random_state_dict(model,
seed)`` (fixed ``pos_embed*`` tables kept) and recorded outputs with the caption mask, without it,
and (MS) for a 512×768 size/ratio condition.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.models.opensora import legacy_loading
from motionsuite.models.opensora.pixart import PixArt, PixArtConfig
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "opensora" / "pixart_parity.safetensors"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def build(meta, name):
    """Our model for one upstream case, with the upstream seeded weights (2-D → 3-D names kept)."""
    base, case = json.loads(meta["base"]), json.loads(meta[name])
    kw = case["kw"]
    base_size = kw.get("base_size")
    config = PixArtConfig(
        **{k: base[k] for k in ("depth", "hidden_size", "num_heads", "in_channels", "caption_channels")},
        model_max_length=base["model_max_length"],
        patch_size=tuple(base["patch_size"][1:]),
        input_size=tuple(kw["input_size"][1:]),
        base_size=None if base_size is None else base_size // base["patch_size"][1],
        space_scale=kw["space_scale"],
        no_temporal_pos_emb=kw["no_temporal_pos_emb"],
        micro_conditions=name == "ms",
    )
    model = PixArt(config).eval()
    ours = model.state_dict()
    assert sorted(ours) == [k for k in case["keys"] if not k.startswith("pos_embed")]
    sd = random_state_dict(_upstream_shapes(ours, config, kw), case["seed"])
    model.load_state_dict({k: v for k, v in sd.items() if not k.startswith("pos_embed")})
    return model, sd


def _upstream_shapes(ref, config, kw):
    """Upstream's state-dict shapes, so the seeded generator draws the same numbers in the same order."""
    c = config.hidden_size
    t, h, w = kw["input_size"]
    s = (h // config.patch_size[0]) * (w // config.patch_size[1])
    return {**ref, "pos_embed": torch.zeros(1, s, c), "pos_embed_temporal": torch.zeros(1, t, c)}


@pytest.mark.parametrize("name", ["alpha", "alpha_tpe", "sigma2k", "ms"])
@torch.no_grad()
def test_forward_matches_upstream(fixture, name):
    meta, f = fixture
    model, _ = build(meta, name)
    x, t, y, mask = f[f"{name}_x"], f["t"], f["y"], f["mask"]
    assert max_abs_diff(model(x, t, y, mask=mask), f[f"{name}_mask"]) <= TOL
    assert max_abs_diff(model(x, t, y), f[f"{name}_nomask"]) <= TOL
    image = model(x[:, :, 0], t, y, mask=mask)  # 4-D images in, 4-D out
    assert max_abs_diff(image, f[f"{name}_mask"][:, :, 0]) <= TOL
    if name == "ms":
        out = model(x, t, y, mask=mask, height=512, width=768)
        assert max_abs_diff(out, f["ms_hw"]) <= TOL


def test_released_pth_loads(tmp_path, fixture):
    """``{"state_dict": ...}`` with a 2-D patch kernel and the stored table, as PixArt-alpha ships it."""
    meta, f = fixture
    model, sd = build(meta, "alpha")
    stored = dict(sd)
    stored["x_embedder.proj.weight"] = sd["x_embedder.proj.weight"][:, :, 0]
    path = tmp_path / "PixArt-XL-2-256x256.pth"
    torch.save({"state_dict": stored}, path)
    assert legacy_loading.pixart_config_for(path).input_size == (32, 32)
    loaded = legacy_loading.load_pixart(path, config=model.config)
    with torch.no_grad():
        out = loaded(f["alpha_x"], f["t"], f["y"], mask=f["mask"])
    assert max_abs_diff(out, f["alpha_mask"]) <= TOL


def test_configs_from_released_names():
    cfg = legacy_loading.pixart_config_for("PixArt-XL-2-1024-MS.pth")
    assert cfg.micro_conditions and cfg.input_size == (128, 128) and cfg.space_scale == 2.0
    cfg = legacy_loading.pixart_config_for("PixArt-Sigma-XL-2-2K-MS.pth")
    assert cfg.model_max_length == 300 and cfg.grid_base == 128 and cfg.space_scale == 4.0
    assert not cfg.micro_conditions


def test_video_input_with_frames_is_refused(fixture):
    meta, f = fixture
    model, _ = build(meta, "alpha_tpe")
    with pytest.raises(ValueError, match="single images"):
        model(torch.zeros(1, 4, 2, 8, 8), torch.zeros(1), f["y"][:1])


def test_missing_file_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="PixArt-alpha"):
        legacy_loading.load_pixart(tmp_path / "PixArt-XL-2-512x512.pth")
