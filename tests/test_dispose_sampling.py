"""DisPose sampling loop: tiles, triangular weights, guidance ramp, noise, parity with upstream.

How the parity fixture was made (scratch, Python 3.11, torch 2.14.1 CPU fp32, system diffusers
0.42.1 so that batched CFG uses the fixed SVD temporal-context broadcast, see
test_dispose_unet_parity): upstream lihxxx/DisPose @ c38ab13 ``Ctrl_Pipeline.__call__`` with the
tiny UNet (seed 11, gain 0.5), tiny ControlNet (seed 21, gain 0.5; PointAdapter widths patched to
the tiny UNet, 1280-d embeddings as released), PoseNet(32) (seed 5), the SVD-XT scheduler config
with ``sigma_max`` lowered from 700 to 20 (at 700 plain fp32 rounding of the 700-scale start latents
alone reaches ~1e-4 after two steps), and the inputs of ``_inputs`` (5 frames at 64x128, tile 4,
overlap 1 -> tiles [0,1,2,3] and [0,2,3,4], 2 steps, guidance 1.5..2.5, noise_aug 0.02, fps 7, CPU
generator seed 7, ``output_type='latent'``). Its CLIP and VAE encodes were replaced by the fixed
tensors E and L (stock calls; the augmentation noise is still drawn first, as upstream). Stored: the
final (scaled) latents.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from dispose_tiny import UNET
from motionsuite.models.dispose.controlnet import DisPoseControlNet
from motionsuite.models.dispose.pose_net import PoseNet
from motionsuite.models.dispose.unet import MimicMotionUNet
from motionsuite.pipelines.core.errors import InputError
from motionsuite.pipelines.dispose import sampling
from motionsuite.pipelines.dispose.motion import reference_point_embedding
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "dispose" / "parity_sampling.safetensors"
TOL = 1e-4


def _inputs(seed: int):
    g = torch.Generator().manual_seed(seed)
    f, h, w = 5, 64, 128
    x = {"E": torch.randn(1, 1, 32, generator=g), "L": torch.randn(1, 4, h // 8, w // 8, generator=g)}
    x["pose"] = torch.rand(f, 3, h, w, generator=g) * 2 - 1
    x["flow"] = torch.randn(1, f - 1, 2, h, w, generator=g) * 3
    x["traj"] = torch.randn(1, f - 1, 2, h, w, generator=g) * 0.1
    x["dift"] = torch.randn(1, 1280, h // 16, w // 16, generator=g)
    cand = torch.rand(f, 18, 2, generator=g).double().numpy()
    subset = np.tile(np.arange(18.0), (f, 1))
    subset[:, [4, 9]] = -1
    subset[2, 0] = -1
    points = [
        {"candidate": cand[i], "subset": subset[i : i + 1], "score": np.ones((1, 18))} for i in range(f)
    ]
    return x, points, (h, w)


@pytest.fixture(scope="module")
def models():
    unet = MimicMotionUNet.from_config(UNET).eval()
    unet.load_state_dict(random_state_dict(unet, 11, gain=0.5))
    cn = DisPoseControlNet.from_unet_config(UNET, point_embedding_channels=1280).eval()
    cn.load_state_dict(random_state_dict(cn, 21, gain=0.5))
    pn = PoseNet(32).eval()
    pn.load_state_dict(random_state_dict(pn, 5))
    return unet, cn, pn


def _guidance(pn, x, points, hw):
    with torch.no_grad():
        pose_latents = pn(x["pose"])
    return sampling.Guidance(
        image_embeds=x["E"],
        image_latent=x["L"],
        pose_latents=pose_latents,
        controlnet_flow=x["flow"],
        traj_flow=x["traj"],
        point_list=points,
        ref_point_emb=reference_point_embedding(x["dift"], points[0], *hw),
    )


def test_two_steps_match_upstream(models):
    unet, cn, pn = models
    with safe_open(str(FIXTURE), "pt") as fh:
        meta = fh.metadata()
        expected = fh.get_tensor("out.latents")
    x, points, hw = _inputs(int(meta["input_seed"]))
    settings = sampling.SamplerSettings(
        steps=2,
        min_guidance=1.5,
        max_guidance=2.5,
        tile=4,
        overlap=1,
        noise_aug_strength=0.02,
        seed=int(meta["noise_seed"]),
    )
    noise, _ = sampling.initial_noise(5, 4, (hw[0] // 8, hw[1] // 8), settings.seed, (1, 3, *hw))
    calls = []
    out = sampling.sample(
        unet,
        cn,
        json.loads(meta["scheduler"]),
        _guidance(pn, x, points, hw),
        settings,
        noise=noise,
        callback=lambda done, total, _: calls.append((done, total)),
    )
    assert max_abs_diff(out * sampling.VAE_SCALING, expected) <= TOL
    assert calls[-1] == (4, 4)
    # CFG halves one at a time (memory switch) give the same result.
    settings.cfg_batched = False
    seq = sampling.sample(
        unet, cn, json.loads(meta["scheduler"]), _guidance(pn, x, points, hw), settings, noise
    )
    assert max_abs_diff(seq * sampling.VAE_SCALING, expected) <= TOL


def test_no_guidance_and_fewer_frames_than_tile(models):
    """Upstream crashes for CFG <= 1 and for fewer frames than a tile; both run here."""
    unet, cn, pn = models
    x, points, hw = _inputs(3)
    settings = sampling.SamplerSettings(steps=1, min_guidance=1.0, max_guidance=1.0, tile=16, overlap=6)
    sched = {
        "prediction_type": "v_prediction",
        "use_karras_sigmas": True,
        "sigma_min": 0.002,
        "sigma_max": 700.0,
        "timestep_type": "continuous",
    }
    out = sampling.sample(unet, cn, sched, _guidance(pn, x, points, hw), settings)
    assert out.shape == (1, 5, 4, 8, 16)
    assert torch.isfinite(out).all()


def test_tiles_and_weights():
    assert sampling.tile_indices(5, 4, 1) == [[0, 1, 2, 3], [0, 2, 3, 4]]
    assert sampling.tile_indices(3, 16, 6) == [[0, 1, 2]]
    tiles = sampling.tile_indices(40, 16, 6)
    assert tiles[0] == [0, *range(1, 16)] and tiles[-1] == [0, *range(25, 40)]
    assert all(len(t) == 16 for t in tiles)
    w = sampling.tile_weights(16)
    assert torch.allclose(w[:8] * 16, torch.arange(1, 16, 2, dtype=torch.float64))
    assert torch.equal(w, w.flip(0))
    with pytest.raises(InputError, match="overlap"):
        sampling.tile_indices(40, 16, 15)
    noise, aug = sampling.initial_noise(10, 4, (2, 2), 0, (1, 3, 16, 16))
    assert torch.equal(noise[:, 0], noise[:, 4]) and aug.shape == (1, 3, 16, 16)


def test_single_frame_is_rejected(models):
    unet, cn, pn = models
    x, points, hw = _inputs(3)
    g = _guidance(pn, x, points, hw)
    g.pose_latents = g.pose_latents[:1]
    with pytest.raises(InputError, match="at least one driving frame"):
        sampling.sample(unet, cn, {}, g, sampling.SamplerSettings(steps=1))
