"""Parity of the Open-Sora 1.1 generation pipeline (``pipelines/opensora_legacy``) with upstream's inference.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU, fp32):
hpcaitech/Open-Sora branch ``opensora/v1.1`` (c37e6d6) with xformers/colossalai stubbed as in the
network parity tests and ``GaussianDiffusion``'s device default set to "cpu". A tiny upstream
``STDiT2(depth 1, hidden 24, heads 2, caption 32, model_max_length 200, qk_norm_legacy)`` got
``parity_utils.random_state_dict(model, 1, gain=0.5)`` (rope.freqs kept), the same weights
``opensora_legacy_tiny.write_stdit2`` saves. A fake text encoder returned the stored T5 features
cut to 200 tokens and ``null(n)`` = the model's ``y_embedding``; ``additional_args`` were
height 48, width 32, num_frames 4, ar, fps 24 as ``scripts/inference.py`` builds them. Recorded:
``IDDPM(num_sampling_steps=3, cfg_scale=7.0, cfg_channel=3).sample`` from
``z = randn((1,4,4,6,4), generator=manual_seed(7))`` after ``torch.manual_seed(11)`` (T2V), and the
same with ``ref`` copied into frame 0 and the frame mask [0, 1, 1, 1] (first-frame conditioning).
The pack side runs the node-level ``generate`` with the 300-token features (it cuts them to the
model's 200) and upstream's step-noise draws substituted for its seeded CPU noise.

PixArt-α (``legacy_pixart_parity.safetensors``): upstream branch ``opensora/v1.2`` (bde3c42),
``PixArt(depth 1, hidden 24, heads 2, caption 32, model_max_length 120, input_size (1,8,8))`` with
``random_state_dict(model, 3, gain=0.5)`` (its fixed ``pos_embed*`` tables kept), the fake text
encoder cutting the stored features to 120 tokens, and ``DPM_SOLVER(num_sampling_steps=3,
cfg_scale=7.0).sample`` for two images from ``z = randn((2,4,8,8), generator=manual_seed(9))``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.models.opensora.pixart import PixArt, PixArtConfig
from motionsuite.pipelines.opensora_legacy import generate
from opensora_legacy_tiny import TINY, write_sd_vae, write_stdit2
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "opensora" / "legacy_pipeline_parity.safetensors"
PIXART_FIXTURE = FIXTURE.with_name("legacy_pixart_parity.safetensors")
REL_TOL = 1e-5  # outputs reach |x| ≈ 10³ after 3 respaced steps from random weights


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    with safe_open(str(FIXTURE), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    root = tmp_path_factory.mktemp("parity")
    model = generate.load_model(
        "1.1", write_stdit2(root / "dit"), write_sd_vae(root / "vae"), height=48, width=32, num_frames=4
    )
    return model, tensors


def _upstream_noise(seed: int):
    torch.manual_seed(seed)  # upstream: global RNG, randn_like on the doubled CFG batch
    return lambda shape: torch.randn((2 * shape[0], *shape[1:]))[: shape[0]]


def _run(model, tensors, monkeypatch, **kw) -> torch.Tensor:
    monkeypatch.setattr(generate, "seeded_noise", lambda seed, device=None: _upstream_noise(11))
    latent = generate.generate(model, (tensors["y"], tensors["mask"]), seed=7, steps=3, guidance=7.0, **kw)
    return (latent["samples"] * model.vae.scaling_factor).permute(1, 0, 2, 3)[None]


def test_v11_text_to_video_matches_upstream(setup, monkeypatch):
    model, tensors = setup
    ours, ref = _run(model, tensors, monkeypatch), tensors["t2v"]
    assert max_abs_diff(ours, ref) <= REL_TOL * ref.abs().max()


def test_v11_first_frame_matches_upstream(setup, monkeypatch):
    model, tensors = setup
    reference = {"samples": tensors["ref"][None] / model.vae.scaling_factor}
    ours = _run(model, tensors, monkeypatch, reference=reference, mode="first frame")
    ref = tensors["first_frame"]
    assert max_abs_diff(ours, ref) <= REL_TOL * ref.abs().max()


def _read(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118


def test_pixart_alpha_images_match_upstream(tmp_path):
    """Released layout: ``{"state_dict"}`` .pth with the 2-D patch kernel, a same-named .json config."""
    tensors = _read(PIXART_FIXTURE)
    config = PixArtConfig(**TINY, model_max_length=120, input_size=(8, 8))
    ours = PixArt(config).state_dict()
    upstream_keys = {**ours, "pos_embed": torch.zeros(1, 16, 24), "pos_embed_temporal": torch.zeros(1, 1, 24)}
    sd = {k: v for k, v in random_state_dict(upstream_keys, 3, gain=0.5).items() if k in ours}
    sd["x_embedder.proj.weight"] = sd["x_embedder.proj.weight"][:, :, 0]
    path = tmp_path / "PixArt-XL-2-512x512.pth"
    torch.save({"state_dict": sd}, path)
    path.with_suffix(".json").write_text(json.dumps(config.to_dict()))
    model = generate.load_model(
        "pixart-alpha", path, write_sd_vae(tmp_path / "vae"), height=64, width=64, num_frames=2
    )
    latent = generate.generate(model, (tensors["y"], tensors["mask"]), seed=9, steps=3, guidance=7.0)
    ref = tensors["pixart_alpha"]
    assert max_abs_diff(latent["samples"] * model.vae.scaling_factor, ref) <= REL_TOL * ref.abs().max()
