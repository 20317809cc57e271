"""Parity of the FOMM networks with upstream first-order-model.

Fixture ``tests/fixtures/fomm/parity_vox256_128px.npz`` was made by running upstream
AliaksandrSiarohin/first-order-model @ c027484 (modules/generator.py, modules/keypoint_detector.py,
animate.py:normalize_kp) in a scratch venv (torch 2.14.1 CPU, fp32) with the vox-256.yaml model
params, generator weights ``random_state_dict(generator, 1234)`` and keypoint-detector weights
``random_state_dict(kp_detector, 1235)`` (tests/parity_utils.py), on a smooth random 128x128 source
and 3 driving frames (stored as uint8), frame by frame as upstream demo.py:make_animation does, in
two modes: relative (movement + jacobian, adapt_movement_scale) and absolute. Here the same weights
run batched over all driving frames at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from motionsuite.pipelines.fomm.model import FommModel, build_fomm
from motionsuite.pipelines.fomm.motion import MotionOptions, normalize_kp
from parity_utils import max_abs_diff, random_state_dict

FIX = Path(__file__).parent / "fixtures" / "fomm"
TOL = 1e-4


@pytest.fixture(scope="module")
def setup():
    data = dict(np.load(FIX / "parity_vox256_128px.npz"))
    params = json.loads((FIX / "vox-256_model_params.json").read_text())["model_params"]
    generator, kp_detector = build_fomm(params)
    seed = int(data["seed"])
    generator.load_state_dict(random_state_dict(generator, seed))
    kp_detector.load_state_dict(random_state_dict(kp_detector, seed + 1))
    return data, FommModel(generator, kp_detector)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


def test_keypoints_match_upstream(setup):
    data, model = setup
    with torch.no_grad():
        kp_s = model.kp_detector(_t(data["source_u8"]).float() / 255)
        kp_d = model.kp_detector(_t(data["driving_u8"]).float() / 255)
    assert max_abs_diff(kp_s["value"], _t(data["kp_source_value"])) <= TOL
    assert max_abs_diff(kp_s["jacobian"], _t(data["kp_source_jacobian"])) <= TOL
    assert max_abs_diff(kp_d["value"], _t(data["kp_driving_value"])) <= TOL
    assert max_abs_diff(kp_d["jacobian"], _t(data["kp_driving_jacobian"])) <= TOL


@pytest.mark.parametrize("mode", ["relative", "absolute"])
def test_generated_frames_match_upstream(setup, mode):
    data, model = setup
    rel = mode == "relative"
    options = MotionOptions(relative_movement=rel, relative_jacobian=rel, adapt_movement_scale=rel)
    source = _t(data["source_u8"]).float() / 255
    driving = _t(data["driving_u8"]).float() / 255
    with torch.no_grad():
        kp_s = model.kp_detector(source)
        kp_d = model.kp_detector(driving)
        kp_init = {k: v[:1] for k, v in kp_d.items()}
        kp_norm = normalize_kp(kp_s, kp_d, kp_init, options)
        out = model.generator(source, kp_norm, kp_s)
    assert max_abs_diff(kp_norm["value"], _t(data[f"{mode}_kp_norm_value"])) <= TOL
    assert max_abs_diff(kp_norm["jacobian"], _t(data[f"{mode}_kp_norm_jacobian"])) <= TOL
    assert max_abs_diff(out["occlusion_map"], _t(data[f"{mode}_occlusion"])) <= TOL
    assert max_abs_diff(out["prediction"], _t(data[f"{mode}_prediction"])) <= TOL
    assert float(out["prediction"].std()) > 1e-3  # the frames carry signal, not a constant
