"""Parity of the Open-Sora 1.2 video VAE with upstream, and loading through the released layout.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU, fp32):
upstream ``VideoAutoencoderPipeline`` of hpcaitech/Open-Sora branch ``opensora/v1.2`` (bde3c42),
``opensora/models/vae/vae.py`` + ``vae_temporal.py``, built with ``micro_frame_size=17``, the
released shift/scale, a ``VideoAutoencoderKL`` whose diffusers AutoencoderKL has the tiny config
stored in the metadata (``spatial``) and a ``VAE_Temporal`` with the tiny ``temporal`` config. All
tensors except shift/scale were set with ``parity_utils.random_state_dict(vae, weight_seed, gain)``.
Both posteriors were patched to return their means (upstream samples with the unseeded global
RNG). With inputs from ``torch.Generator().manual_seed(input_seed)`` (a 22-frame 64×48 clip = one
full 17-frame micro-chunk + 5 frames, one image, then a 15×4×4 latent) it recorded: latents of the
clip and the image, their decodes with ``num_frames`` 22 and 1, and the decode of the random latent
with ``num_frames=51`` (3 chunks). Decoded videos are stored at every 4th pixel.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.models.opensora.vae_temporal import TemporalVAEConfig
from motionsuite.models.opensora.video_vae import OpenSoraVAE
from motionsuite.pipelines.opensora import loading
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "opensora" / "vae_parity.safetensors"
TOL = 1e-4


def tiny_vae(meta: dict) -> OpenSoraVAE:
    spatial = json.loads(meta["spatial"])
    temporal = json.loads(meta["temporal"])
    temporal["channel_multipliers"] = tuple(temporal["channel_multipliers"])
    temporal["temporal_downsample"] = tuple(temporal["temporal_downsample"])
    return OpenSoraVAE(spatial, TemporalVAEConfig(**temporal))


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    vae = tiny_vae(meta).eval()
    assert sorted(vae.state_dict()) == json.loads(meta["keys"])
    sd = random_state_dict(vae, int(meta["weight_seed"]), gain=float(meta["gain"]))
    sd["scale"], sd["shift"] = vae.scale.clone(), vae.shift.clone()
    vae.load_state_dict(sd)
    g = torch.Generator().manual_seed(int(meta["input_seed"]))
    inputs = {
        "video": torch.rand(1, 3, 22, 64, 48, generator=g) * 2 - 1,
        "image": torch.rand(1, 3, 1, 64, 48, generator=g) * 2 - 1,
    }
    torch.randn(1, 4, 7, 8, 6, generator=g)
    inputs["z51"] = torch.randn(1, 4, 15, 4, 4, generator=g)
    return vae, tensors, inputs


def test_encode_matches_upstream(fixture):
    vae, f, inp = fixture
    assert max_abs_diff(vae.encode(inp["video"], sample=False), f["z_video"]) <= TOL
    assert max_abs_diff(vae.encode(inp["image"], sample=False), f["z_image"]) <= TOL


def test_decode_matches_upstream_with_exact_frame_counts(fixture):
    vae, f, inp = fixture
    video = vae.decode(f["z_video"], num_frames=22)
    assert video.shape[2] == 22
    assert max_abs_diff(video[..., ::4, ::4], f["x_video"]) <= TOL
    image = vae.decode(f["z_image"], num_frames=1)
    assert image.shape[2] == 1
    assert max_abs_diff(image[..., ::4, ::4], f["x_image"]) <= TOL
    long = vae.decode(inp["z51"], num_frames=51)
    assert long.shape[2] == 51
    assert max_abs_diff(long[..., ::4, ::4], f["x_rand_51"]) <= TOL


def test_default_frame_count_inverts_latent_count(fixture):
    vae, _, _ = fixture
    for frames in (1, 5, 17, 22, 34, 51, 102, 60):
        assert vae.frames_for_latents(vae.latent_frames(frames)) == frames
    assert vae.latent_frames(51) == 15 and vae.latent_frames(102) == 30 and vae.latent_frames(22) == 7


def test_decode_rejects_wrong_frame_count(fixture):
    vae, f, _ = fixture
    with pytest.raises(ValueError, match="cannot decode"):
        vae.decode(f["z_video"], num_frames=40)


def test_sampling_is_seeded_and_centred_on_mean(fixture):
    vae, f, inp = fixture
    a = vae.encode(inp["image"], generator=torch.Generator().manual_seed(1))
    b = vae.encode(inp["image"], generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.equal(a, f["z_image"])


def test_released_layout_roundtrip(tmp_path, fixture):
    vae, f, _ = fixture
    folder = loading.save_vae(vae, tmp_path / "OpenSora-VAE-v1.2")
    loaded = loading.load_vae(folder)
    assert loaded.micro_frame_size == 17
    assert loaded.temporal_vae.cfg.num_res_blocks == 1 and loaded.temporal_vae.cfg.filters == 32
    assert max_abs_diff(loaded.decode(f["z_image"], num_frames=1)[..., ::4, ::4], f["x_image"]) <= TOL


def test_not_a_vae_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="OpenSora-VAE-v1.2"):
        loading.build_vae({"foo.weight": torch.zeros(1)})
