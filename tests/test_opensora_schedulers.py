"""Parity of the IDDPM (respaced) and DPM-Solver++ samplers with upstream Open-Sora on a toy denoiser.

How the fixture was made (scratch venv outside the repo, Python 3.11, torch 2.14.1 CPU, fp32):
hpcaitech/Open-Sora branch ``opensora/v1.1`` (c37e6d6), ``opensora/schedulers/iddpm`` and
``opensora/schedulers/dpms`` with colossalai stubbed and ``GaussianDiffusion``'s device default set to
"cpu". The denoiser is the ``Toy`` module below (same code in the scratch script) with
``parity_utils.random_state_dict(toy, 3)``; a fake text encoder returns the stored ``y``/``cap_mask``
and ``y_null``. Recorded: ``IDDPM(num_sampling_steps=7, cfg_scale=7, cfg_channel=3).sample`` (T2V),
``IDDPM(6 steps, cfg 4)`` with the stored frame mask (conditioning frames and an edit ratio of 0.5),
``DMP_SOLVER(5 | 12 steps, cfg 4.5).sample`` (lower-order final below 10 steps), each after
``torch.manual_seed(seed)`` (upstream draws its step noise with ``randn_like`` on the doubled CFG
batch), and ``space_timesteps(1000, str(n))`` for several n.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.pipelines.opensora_schedulers import (
    DPMSolverPP,
    classifier_free,
    sample_dpm_solver,
    sample_iddpm,
    seeded_noise,
    space_timesteps,
)
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open
from torch import nn

FIXTURE = Path(__file__).parent / "fixtures" / "opensora" / "schedulers_parity.safetensors"
TOL = 1e-4


class Toy(nn.Module):
    """Tiny denoiser with the Open-Sora call signature (ε ≈ x keeps x̂0 bounded; variance in (−1, 1))."""

    def __init__(self, channels=4, caption=8):
        super().__init__()
        self.conv = nn.Conv3d(channels, 2 * channels, 1)
        self.t_proj = nn.Linear(1, 2 * channels)
        self.y_proj = nn.Linear(caption, 2 * channels)

    def forward(self, x, timestep, y, mask=None, x_mask=None, **_):
        b = x.shape[0]
        y = y.reshape(y.shape[0], -1, y.shape[-1]).mean(1)
        y = y.repeat(b // y.shape[0], 1) if y.shape[0] != b else y
        h = self.conv(x) * 0.5 + self.t_proj(timestep.float()[:, None] / 1000)[:, :, None, None, None]
        h = h + self.y_proj(y)[:, :, None, None, None]
        if x_mask is not None:
            h = h + 0.1 * x_mask.float()[:, None, :, None, None]
        h = torch.tanh(h)
        c = x.shape[1]
        return torch.cat([0.9 * x + 0.1 * h[:, :c], h[:, c:]], dim=1)


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    toy = Toy().eval()
    toy.load_state_dict(random_state_dict(toy, int(meta["toy_seed"])))
    return toy, meta, tensors


def upstream_noise(seed: int):
    """Upstream's draws: global RNG, ``randn_like`` on the doubled CFG batch, first half used."""
    torch.manual_seed(seed)
    return lambda shape: torch.randn((2 * shape[0], *shape[1:]))[: shape[0]]


def test_respacing_matches_upstream(fixture):
    _, meta, _ = fixture
    for n, expected in json.loads(meta["spacing"]).items():
        assert space_timesteps(1000, int(n)) == expected
    with pytest.raises(ValueError, match="steps"):
        space_timesteps(1000, 0)


def test_iddpm_t2v_matches_upstream(fixture):
    toy, meta, f = fixture
    denoise = classifier_free(toy, f["y"], f["y_null"][None].repeat(2, 1, 1, 1), 7.0, 3, mask=f["cap_mask"])
    seed = json.loads(meta["seeds"])["iddpm_t2v"]
    out = sample_iddpm(denoise, f["z"], 7, upstream_noise(seed))
    assert max_abs_diff(out, f["iddpm_t2v"]) <= TOL


def test_iddpm_conditioning_frames_match_upstream(fixture):
    toy, meta, f = fixture
    denoise = classifier_free(toy, f["y"], f["y_null"][None].repeat(2, 1, 1, 1), 4.0, mask=f["cap_mask"])
    seed = json.loads(meta["seeds"])["iddpm_mask"]
    steps = []
    out = sample_iddpm(
        denoise,
        f["z"],
        6,
        upstream_noise(seed),
        mask=f["frame_mask"],
        callback=lambda i, n, x: steps.append(i),
    )
    assert max_abs_diff(out, f["iddpm_mask"]) <= TOL
    assert steps == list(range(6))  # the steps input is honoured, one callback per step


@pytest.mark.parametrize("steps", [5, 12])
def test_dpm_solver_matches_upstream(fixture, steps):
    toy, _, f = fixture
    denoise = classifier_free(toy, f["y"], f["y_null"][None].repeat(2, 1, 1, 1), 4.5, mask=f["cap_mask"])
    out = sample_dpm_solver(denoise, f["z"], steps)
    assert max_abs_diff(out, f[f"dpm{steps}"]) <= TOL


def test_seeded_noise_is_reproducible_and_dpm_validates_steps(fixture):
    a, b = seeded_noise(5)((2, 3)), seeded_noise(5)((2, 3))
    assert torch.equal(a, b) and not torch.equal(a, seeded_noise(6)((2, 3)))
    toy, _, f = fixture
    with pytest.raises(ValueError, match="at least 2"):
        sample_dpm_solver(classifier_free(toy, f["y"], f["y"], 1.0), f["z"], 1)


def test_vp_schedule_endpoints():
    vp = DPMSolverPP()
    alpha, sigma, _ = vp.coefficients(torch.tensor([1.0 / 1000, 1.0]))
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    ac = torch.cumprod(1 - betas, 0)
    assert torch.allclose(alpha.double() ** 2, ac[[0, -1]], rtol=1e-4)
    assert torch.allclose(sigma**2 + alpha**2, torch.ones(2), atol=1e-6)
