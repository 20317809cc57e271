"""Parity of the DisCo image model with upstream ``Net`` (Wangt-CN/DisCo @ c4fa48a).

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU fp32, the
upstream pins diffusers 0.14.0 / transformers 4.27.4 / tokenizers 0.13.3 / huggingface_hub 0.25.2):
a tiny sd-image-variations folder with the configs of ``disco_tiny.py`` was saved, upstream
``config/ref_attn_clip_combine_controlnet/net.py::Net`` was built from it (args of the released
``*_cfg`` models: refer_sdvae, combine_clip_local, drop_ref 0.05, DDIM), every tensor of
``Net.state_dict()`` was overwritten with ``parity_utils.random_state_dict(sd, 7, gain=0.5)`` (zero
convs included), and with inputs drawn from ``torch.Generator().manual_seed(99)`` it recorded: CLIP
tokens (cond, zero-image uncond, zero-embedding uncond), the VAE posterior mean of the background,
both ControlNets' residuals at t=501 (pose scale 0.8, background scale 1.2, CFG batch), the
CFG-combined ε (guidance 1.5), and the result of upstream ``Net.forward`` (5 DDIM steps) with the
initial noise and a posterior-mean background latent patched in. Residuals and the decoded image are
stored subsampled (every 4th pixel) to keep the file small. Upstream's state-dict key list is stored
in the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from disco_tiny import CLIP, SCHEDULER, UNET, VAE
from motionsuite.pipelines.disco import loading, sampling
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open
from transformers import CLIPVisionConfig

FIXTURE = Path(__file__).parent / "fixtures" / "disco" / "parity_image.safetensors"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    g = torch.Generator().manual_seed(int(meta["input_seed"]))
    inputs = {
        "ref": torch.randn(1, 3, 224, 224, generator=g),
        "pose": torch.rand(1, 3, 256, 256, generator=g),
        "bg": torch.rand(1, 3, 256, 256, generator=g) * 2 - 1,
        "noise": torch.randn(1, 4, 32, 32, generator=g),
    }
    model = loading.build_model(
        {"unet": UNET, "vae": VAE, "clip": CLIPVisionConfig(**CLIP), "scheduler": SCHEDULER}
    )
    upstream_keys = json.loads(meta["keys"])
    released = loading.released_state_dict(model)
    released["clip_image_encoder.vision_model.embeddings.position_ids"] = torch.arange(257)[None]
    assert sorted(released) == upstream_keys
    weights = random_state_dict(released, int(meta["weight_seed"]), gain=float(meta["gain"]))
    loading.load_weights(model, weights)
    return model, meta, tensors, inputs


def test_key_layout_matches_upstream(fixture):
    _, meta, _, _ = fixture
    keys = json.loads(meta["keys"])
    assert len(keys) == 1068 and "refer_clip_proj.weight" in keys


def test_clip_tokens(fixture):
    model, _, ref, inputs = fixture
    cond, uncond = sampling.encode_reference(model, inputs["ref"], "zero_image")
    assert max_abs_diff(cond, ref["tokens_cond"]) <= TOL
    assert max_abs_diff(uncond, ref["tokens_uncond_zero_image"]) <= TOL
    _, zeros = sampling.encode_reference(model, inputs["ref"], "zero_embedding")
    assert max_abs_diff(zeros, ref["tokens_uncond_zero_embedding"]) <= TOL


def test_background_latent(fixture):
    model, _, ref, inputs = fixture
    assert max_abs_diff(sampling.encode_background(model, inputs["bg"]), ref["bg_latent_raw"]) <= TOL


def test_controlnet_residuals_and_cfg_eps(fixture):
    model, meta, ref, inputs = fixture
    cond, uncond = sampling.encode_reference(model, inputs["ref"], "zero_image")
    settings = sampling.SamplerSettings(
        guidance=float(meta["guidance"]),
        pose_scale=float(meta["pose_scale"]),
        background_scale=float(meta["background_scale"]),
    )
    sched = sampling.make_scheduler(model)
    x = inputs["noise"] * sched.init_noise_sigma
    bg = ref["bg_latent_raw"] * 0.18215
    eps, (down_p, mid_p, down_b, mid_b) = sampling.predict_noise(
        model,
        x,
        torch.tensor(int(meta["timestep"])),
        cond,
        uncond,
        inputs["pose"],
        bg,
        settings,
        return_residuals=True,
    )
    assert max_abs_diff(mid_p, ref["mid_pose"]) <= TOL
    assert max_abs_diff(mid_b, ref["mid_background"]) <= TOL
    for i, (p, b) in enumerate(zip(down_p, down_b, strict=True)):
        assert max_abs_diff(p[..., ::4, ::4], ref[f"down_pose_{i}"]) <= TOL, i
        assert max_abs_diff(b[..., ::4, ::4], ref[f"down_background_{i}"]) <= TOL, i
    assert ref["eps_cfg"].abs().mean() > 0.1  # non-trivial prediction
    assert max_abs_diff(eps, ref["eps_cfg"]) <= TOL


def test_ddim_sample_and_decode(fixture):
    model, meta, ref, inputs = fixture
    cond, uncond = sampling.encode_reference(model, inputs["ref"], "zero_image")
    settings = sampling.SamplerSettings(
        steps=int(meta["steps"]),
        guidance=float(meta["guidance"]),
        pose_scale=float(meta["pose_scale"]),
        background_scale=float(meta["background_scale"]),
    )
    latents = sampling.sample(
        model, cond, uncond, inputs["pose"], ref["bg_latent_raw"], settings, noise=inputs["noise"]
    )
    assert max_abs_diff(latents, ref["sample_raw"]) <= TOL
    image = sampling.decode_latents(model, latents)
    assert max_abs_diff(image[..., ::4, ::4], ref["decoded0"]) <= TOL
