"""DIFT parity: SD-1.5 up-block features and reference keypoint features against upstream DisPose.

Fixture ``parity_dift.safetensors`` was made in a scratch venv (diffusers 0.27.0, transformers
4.44.2, torch 2.14.1, CPU, fp32) from lihxxx/DisPose @ c38ab13: a tiny SD-1.5 diffusers folder
(``dispose_tiny.write_sd15`` configs, weights from ``parity_utils.random_state_dict`` with the seeds
in the metadata, gain 0.5) loaded by ``mimicmotion/utils/dift_utils.py: SDFeaturizer``, whose
``forward(image, prompt="photo of a human", t=[261, 0], up_ft_index=[1, 2], ensemble_size=8)`` gave
the up-block-1 features; the reference keypoint features are the ``ref_point_emb`` lines of
``Ctrl_Pipeline.__call__`` (18 x C zeros, transposed-size bilinear upsample, int truncation) run on
those features for the stored keypoints. Only the device was patched (no CUDA here). The VAE
posterior sample and ``randn_like`` were patched to return the stored ``in.posterior_eps`` and
``in.noise`` tensors, which the test passes to our featurizer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from dispose_tiny import write_sd15
from motionsuite.pipelines.dispose.dift import PROMPT, DiftFeaturizer
from motionsuite.pipelines.dispose.motion import reference_point_embedding
from parity_utils import max_abs_diff, random_state_dict
from safetensors import safe_open
from transformers import CLIPTextModel

FIXTURE = Path(__file__).parent / "fixtures" / "dispose" / "parity_dift.safetensors"


@pytest.fixture(scope="module")
def fixture():
    with safe_open(str(FIXTURE), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
        return tensors, f.metadata()


@pytest.fixture(scope="module")
def featurizer(fixture, tmp_path_factory):
    """Our DIFT featurizer loaded from a tiny SD-1.5 folder holding the upstream run's weights."""
    _, meta = fixture
    folder = tmp_path_factory.mktemp("sd15")
    write_sd15(folder)
    seeds, keys = json.loads(meta["seeds"]), json.loads(meta["keys"])
    for sub, cls in (("unet", UNet2DConditionModel), ("vae", AutoencoderKL), ("text_encoder", CLIPTextModel)):
        module = cls.from_pretrained(folder / sub)
        sd = random_state_dict(module, seeds[sub], gain=float(meta["gain"]))
        # transformers 5 drops CLIPTextModel's "text_model." prefix (a common prefix: same order)
        upstream = [k.removeprefix("text_model.") for k in keys[sub]]
        assert sorted(sd) == upstream, f"{sub}: key layout differs from the upstream run"
        module.load_state_dict(sd)
        module.save_pretrained(folder / sub)
    return DiftFeaturizer.from_folder(folder, dtype=torch.float32)


def test_prompt_embedding_matches(fixture, featurizer):
    t, meta = fixture
    assert meta["prompt"] == PROMPT
    assert max_abs_diff(featurizer.prompt_embeds, t["out.prompt_embeds"]) <= 1e-5


def test_dift_features_and_keypoint_features_match(fixture, featurizer):
    t, meta = fixture
    feats = featurizer(
        t["in.image"],
        timestep=int(meta["timestep"]),
        block=1,
        ensemble=int(meta["ensemble"]),
        noise=(t["in.posterior_eps"], t["in.noise"]),
    )
    assert feats.shape == t["out.features"].shape
    assert max_abs_diff(feats, t["out.features"]) <= 1e-4
    height, width = t["in.image"].shape[-2:]
    bodies = {"candidate": t["in.candidate"].numpy(), "subset": t["in.subset"].numpy()}
    emb = reference_point_embedding(feats, bodies, height, width)
    assert max_abs_diff(emb, t["out.point_emb"]) <= 1e-4
    assert (emb[0, [3, 9, 16]] == 0).all() and (emb.abs().sum(-1)[0] > 0).sum() == 15


def test_seeded_noise_repeats(featurizer):
    image = torch.rand(1, 3, 64, 64) * 2 - 1
    a, b = featurizer(image, ensemble=2, seed=5), featurizer(image, ensemble=2, seed=5)
    assert torch.equal(a, b) and not torch.equal(a, featurizer(image, ensemble=2, seed=6))
