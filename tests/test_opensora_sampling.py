"""Parity of the rectified-flow sampler with upstream Open-Sora 1.2 ``RFLOW``.

How the fixture was made (scratch venv, torch 2.14.1 CPU fp32, hpcaitech/Open-Sora ``opensora/v1.2``
bde3c42, xformers/colossalai stubbed as for ``test_opensora_stdit3``): the tiny upstream STDiT3 of
the metadata config with ``random_state_dict(model, weight_seed)`` (true ``rope.freqs``), a fake text
encoder returning the stored-seed caption (6 valid tokens) and the model's null caption, and
``RFLOW(num_sampling_steps=3, cfg_scale=7.0, use_timestep_transform=True).sample`` at 96×128 px,
17 frames, fps 24. Inputs come from ``torch.Generator().manual_seed(input_seed)`` in the order
caption, noise (1,4,5,6,8), reference 0 (4,1,6,8), reference 1 (4,3,6,8). Recorded: a text-only
sample, the frame mask of ``apply_mask_strategy`` for the stored strategy (first frame hard, last
frame from reference 1 with edit ratio 0.4) and the conditioned sample, for which upstream's
``torch.randn_like`` was redirected to a generator seeded with ``input_seed + 1``. Also the 30
shifted timesteps of ``timestep_transform`` for 240×426×51, 720×1280×102 and a 240×426 image.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.models.opensora import STDiT3, STDiT3Config
from motionsuite.pipelines.core.errors import InputError
from motionsuite.pipelines.opensora import sampling
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open

FIXTURE = Path(__file__).parent / "fixtures" / "opensora" / "rflow_parity.safetensors"
TOL = 1e-4


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    model = STDiT3(STDiT3Config.from_dict(json.loads(meta["config"]))).eval()
    sd = random_state_dict(model, int(meta["weight_seed"]))
    sd["rope.freqs"] = model.state_dict()["rope.freqs"].clone()
    model.load_state_dict(sd)
    g = torch.Generator().manual_seed(int(meta["input_seed"]))
    inputs = {
        "y": torch.randn(1, 1, 10, 32, generator=g)[:, 0],
        "noise": torch.randn(1, 4, 5, 6, 8, generator=g),
        "ref0": torch.randn(4, 1, 6, 8, generator=g),
        "ref1": torch.randn(4, 3, 6, 8, generator=g),
    }
    mask = torch.zeros(1, 10, dtype=torch.long)
    mask[0, :6] = 1
    inputs["mask"] = mask
    return model, meta, tensors, inputs


def _run(model, inp, noise, **kw):
    return sampling.sample(
        model,
        noise,
        inp["y"],
        inp["mask"],
        model.null_caption(1),
        height=96,
        width=128,
        num_frames=17,
        fps=24,
        settings=sampling.RFSettings(steps=3, guidance=7.0),
        **kw,
    )


def test_timestep_shift_matches_upstream(fixture):
    _, _, f, _ = fixture
    for name, (h, w, n) in {
        "240x426x51": (240, 426, 51),
        "720x1280x102": (720, 1280, 102),
        "240x426x1": (240, 426, 1),
    }.items():
        ours = torch.stack(sampling.timesteps(30, h, w, n))
        assert max_abs_diff(ours, f[f"ts_{name}"]) <= 1e-3, name
    assert abs(float(f["ts_240x426x51"][-1]) - 77.0) < 0.1


def test_text_to_video_sample_matches_upstream(fixture):
    model, _, f, inp = fixture
    assert max_abs_diff(_run(model, inp, inp["noise"].clone()), f["t2v"]) <= TOL


def test_conditioned_sample_matches_upstream(fixture):
    model, meta, f, inp = fixture
    z = inp["noise"].clone()
    frame_mask = sampling.apply_mask_strategy(z, [inp["ref0"], inp["ref1"]], meta["strategy"])
    assert torch.equal(frame_mask, f["frame_mask"])
    out = _run(model, inp, z, frame_mask=frame_mask, generator=torch.Generator().manual_seed(22))
    assert max_abs_diff(out, f["i2v"]) <= TOL
    assert torch.equal(out[0, :, 0], inp["ref0"][:, 0])  # hard-conditioned frame is kept exactly


def test_mask_strategy_parsing_and_alignment():
    assert sampling.parse_mask_strategy("0") == [(0, 0, 0, 0, 1, 0.0)]
    assert sampling.parse_mask_strategy("0,0,0,-8,8;0,1,0,0,2,0.5") == [
        (0, 0, 0, -8, 8, 0.0),
        (0, 1, 0, 0, 2, 0.5),
    ]
    z = torch.zeros(1, 4, 15, 2, 2)
    mask = sampling.apply_mask_strategy(z, [torch.ones(4, 1, 2, 2)] * 2, "0;0,1,0,-1,1", align=5)
    assert (mask[0] == 0).nonzero().flatten().tolist() == [0, 10]  # upstream snaps the last frame to 10


@pytest.mark.parametrize(
    "text, match",
    [("0,0,0,0,1,0.5,3", "at most 6"), ("a,b", "not numbers"), ("0,0,0,0,1,2", "between 0 and 1")],
)
def test_bad_mask_strategy(text, match):
    with pytest.raises(InputError, match=match):
        sampling.parse_mask_strategy(text)


def test_reference_index_out_of_range():
    with pytest.raises(InputError, match="reference 1"):
        sampling.apply_mask_strategy(torch.zeros(1, 4, 5, 2, 2), [torch.ones(4, 1, 2, 2)], "0,1")
