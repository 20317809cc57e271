"""Parity of the temporal DisCo model with upstream ``TemConvNet`` (Wangt-CN/DisCo @ c4fa48a).

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU fp32, pins
diffusers 0.14.0 / transformers 4.27.4 / tokenizers 0.13.3 / huggingface_hub 0.25.2): from the same
tiny sd-image-variations folder as the image parity test (configs of ``disco_tiny.py``), upstream
``config/disco_w_tm/tem_disco_temp_attn/net.py::TemConvNet`` was built with ``nframes=4`` and the
released models' args (refer_sdvae, combine_clip_local, drop_ref 0.05, DDIM); every tensor of its
``state_dict()`` (1298 keys: zero-initialised temporal convs/attention outputs and zero convs
included) was overwritten with ``parity_utils.random_state_dict(sd, 11, gain=0.5)``. With inputs from
``torch.Generator().manual_seed(77)`` (reference 224², 4 pose frames 128², background 128², noise
(1,4,4,16,16); 128 px keeps the test fast while the 2×2 mid block keeps GroupNorm well conditioned)
it recorded CLIP tokens, the background's VAE posterior mean, both ControlNets' residuals at t=501
on the CFG batch (pose scale 0.8, background scale 1.2), the CFG ε (guidance 1.5) and upstream
``forward`` (5 DDIM steps) with that noise and a posterior-mean background patched in.
Upstream's 5-D ``(b, c, f, h, w)`` tensors were stored as ``(b·f, c, h, w)``; down residuals every
2nd pixel (file size).
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

FIXTURE = Path(__file__).parent / "fixtures" / "disco" / "parity_temporal.safetensors"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    frames, size = int(meta["frames"]), int(meta["size"])
    g = torch.Generator().manual_seed(int(meta["input_seed"]))
    inputs = {
        "ref": torch.randn(1, 3, 224, 224, generator=g),
        "pose": torch.rand(1, 3, frames, size, size, generator=g)[0].transpose(0, 1),  # (f,3,H,W)
        "bg": torch.rand(1, 3, size, size, generator=g) * 2 - 1,
        "noise": torch.randn(1, 4, frames, size // 8, size // 8, generator=g)[0].transpose(0, 1),
    }
    configs = {"unet": UNET, "vae": VAE, "clip": CLIPVisionConfig(**CLIP), "scheduler": SCHEDULER}
    model = loading.build_model(configs, temporal=True)
    released = loading.released_state_dict(model)
    released["clip_image_encoder.vision_model.embeddings.position_ids"] = torch.arange(257)[None]
    assert sorted(released) == json.loads(meta["keys"])
    weights = random_state_dict(released, int(meta["weight_seed"]), gain=float(meta["gain"]))
    assert loading.is_temporal_state_dict(weights)
    loading.load_weights(model, weights)
    return model, meta, tensors, inputs


def _settings(meta, **extra) -> sampling.SamplerSettings:
    return sampling.SamplerSettings(
        guidance=float(meta["guidance"]),
        pose_scale=float(meta["pose_scale"]),
        background_scale=float(meta["background_scale"]),
        **extra,
    )


def test_temporal_key_layout(fixture):
    _, meta, _, _ = fixture
    keys = json.loads(meta["keys"])
    assert len(keys) == 1298
    assert "unet.mid_block.resnets.1.tem_conv.weight" in keys
    assert "controlnet.nets.1.down_blocks.0.attentions.0.transformer_blocks.0.tem_attn.to_q.weight" in keys


def test_tokens_and_background(fixture):
    model, _, ref, inputs = fixture
    cond, uncond = sampling.encode_reference(model, inputs["ref"], "zero_image")
    assert max_abs_diff(cond, ref["tokens_cond"]) <= TOL
    assert max_abs_diff(uncond, ref["tokens_uncond_zero_image"]) <= TOL
    assert max_abs_diff(sampling.encode_background(model, inputs["bg"]), ref["bg_latent_raw"]) <= TOL


def test_controlnet_residuals_and_cfg_eps(fixture):
    model, meta, ref, inputs = fixture
    cond, uncond = sampling.encode_reference(model, inputs["ref"], "zero_image")
    frames = int(meta["frames"])
    sched = sampling.make_scheduler(model)
    x = inputs["noise"] * sched.init_noise_sigma
    bg = (ref["bg_latent_raw"] * 0.18215).expand(frames, -1, -1, -1)
    model.set_num_frames(frames)
    eps, (down_p, mid_p, down_b, mid_b) = sampling.predict_noise(
        model,
        x,
        torch.tensor(int(meta["timestep"])),
        cond.expand(frames, -1, -1),
        uncond.expand(frames, -1, -1),
        inputs["pose"],
        bg,
        _settings(meta),
        return_residuals=True,
    )
    assert max_abs_diff(mid_p, ref["mid_pose"]) <= TOL
    assert max_abs_diff(mid_b, ref["mid_background"]) <= TOL
    for i, (p, b) in enumerate(zip(down_p, down_b, strict=True)):
        assert max_abs_diff(p[..., ::2, ::2], ref[f"down_pose_{i}"]) <= TOL, i
        assert max_abs_diff(b[..., ::2, ::2], ref[f"down_background_{i}"]) <= TOL, i
    assert ref["eps_cfg"].abs().mean() > 0.1
    assert max_abs_diff(eps, ref["eps_cfg"]) <= TOL


def test_ddim_sample_one_window(fixture):
    model, meta, ref, inputs = fixture
    cond, uncond = sampling.encode_reference(model, inputs["ref"], "zero_image")
    settings = _settings(meta, steps=int(meta["steps"]), window=16)
    latents = sampling.sample(
        model, cond, uncond, inputs["pose"], ref["bg_latent_raw"], settings, noise=inputs["noise"]
    )
    assert max_abs_diff(latents, ref["sample_raw"]) <= TOL
