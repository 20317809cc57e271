"""The v1.0/v1.1/PixArt networks driven by their samplers, as the Open-Sora pipeline uses them.

Tiny random-weight models (released key layout) run a few IDDPM / DPM-Solver++ steps with
classifier-free guidance; checks are behavioural: reproducible for a seed, reference frames kept
exactly where the frame mask is 0, finite output in bf16.
"""

from __future__ import annotations

import pytest
import torch
from motionsuite.models.opensora.pixart import PixArt, PixArtConfig
from motionsuite.models.opensora.stdit import STDiT, STDiTConfig
from motionsuite.models.opensora.stdit2 import STDiT2, STDiT2Config
from motionsuite.pipelines.opensora_schedulers import (
    classifier_free,
    sample_dpm_solver,
    sample_iddpm,
    seeded_noise,
)
from parity_utils import random_state_dict

TINY = dict(depth=1, hidden_size=24, num_heads=2, caption_channels=16, model_max_length=6)


def _random(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    sd = random_state_dict(model, seed, gain=0.5)
    if "rope.freqs" in sd:
        sd["rope.freqs"] = model.state_dict()["rope.freqs"]
    model.load_state_dict(sd)
    return model.eval()


def _caption(batch: int = 1):
    g = torch.Generator().manual_seed(1)
    y = torch.randn(batch, 1, 6, 16, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0]] * batch)
    return y, mask


def test_stdit2_iddpm_first_frame_conditioning_is_reproducible():
    model = _random(STDiT2(STDiT2Config(**TINY)))
    y, mask = _caption()
    denoise = classifier_free(
        model, y, model.null_caption(1)[:, None], 7.0, 3, mask=mask, height=32, width=48, num_frames=3, fps=24
    )
    z = seeded_noise(0)((1, 4, 3, 4, 6))
    reference = torch.randn(1, 4, 1, 4, 6)
    z[:, :, :1] = reference
    frame_mask = torch.tensor([[0.0, 1.0, 1.0]])
    a = sample_iddpm(denoise, z, 4, seeded_noise(3), mask=frame_mask)
    b = sample_iddpm(denoise, z, 4, seeded_noise(3), mask=frame_mask)
    assert torch.equal(a, b) and torch.isfinite(a).all()
    # the reference frame is held until the last step, where upstream noises it to level 0 once
    assert (a[:, :, 0] - reference[:, :, 0]).abs().max() < 0.2
    assert not torch.allclose(a[:, :, 1], z[:, :, 1])


def test_stdit_dpm_solver_runs_in_bfloat16():
    model = _random(STDiT(STDiTConfig(**TINY))).to(torch.bfloat16)
    y, mask = _caption(2)
    denoise = classifier_free(model, y, model.null_caption(2)[:, None], 4.5, mask=mask)
    out = sample_dpm_solver(denoise, seeded_noise(0)((2, 4, 2, 4, 4)), 3)
    assert out.dtype == torch.float32 and out.shape == (2, 4, 2, 4, 4) and torch.isfinite(out).all()


@pytest.mark.parametrize("sampler", ["dpm", "iddpm"])
def test_pixart_images(sampler):
    model = _random(PixArt(PixArtConfig(**TINY, input_size=(8, 8), micro_conditions=True)))
    y, mask = _caption()
    denoise = classifier_free(model, y, model.null_caption(1)[:, None], 4.5, mask=mask, height=64, width=96)
    z = seeded_noise(0)((1, 4, 8, 12))
    out = (
        sample_dpm_solver(denoise, z, 3) if sampler == "dpm" else sample_iddpm(denoise, z, 3, seeded_noise(1))
    )
    assert out.shape == (1, 4, 8, 12) and torch.isfinite(out).all()
