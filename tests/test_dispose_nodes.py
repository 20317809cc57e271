"""DisPose nodes run as ComfyUI runs them (INPUT_TYPES -> FUNCTION), with tiny weights on disk."""

from __future__ import annotations

import pytest
import torch
from dispose_tiny import person, write_sd15, write_weights
from motionsuite.nodes import dispose as nodes
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError
from motionsuite.pipelines.dispose import generate, motion


@pytest.fixture(scope="module", autouse=True)
def small_cmp_input():
    """CMP (real ResNet-50 widths) runs at 64 px here instead of 384 px: the same code at 1/36 of the
    cost. CMP parity is tested in test_dispose_cmp, the 384-px sparse inputs in test_cmp_sparse_inputs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(motion, "CMP_SIZE", 64)
        yield


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models_dispose")
    write_weights(root)
    write_sd15(root / "sd15")
    weights.add_search_dir(nodes.FOLDER, root)
    return root


def run(cls, **kwargs):
    """Call a node the way ComfyUI does, checking the kwargs against its INPUT_TYPES."""
    spec = cls.INPUT_TYPES()
    allowed = set(spec["required"]) | set(spec.get("optional", {}))
    assert set(kwargs) <= allowed, set(kwargs) - allowed
    for name, (_, opts) in {**spec["required"], **spec.get("optional", {})}.items():
        assert opts.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    assert isinstance(out, tuple) and len(out) == len(cls.RETURN_TYPES)
    return out


LOADER_ARGS = {
    "base_folder": nodes.BASE_FOLDER_NAME,
    "mimicmotion": "MimicMotion_1-1.pth",
    "controlnet": "DisPose.pth",
    "cmp": "ckpt_iter_42000.pth.tar",
    "precision": "fp32",
}


@pytest.fixture(scope="module")
def model(weights_dir):
    (m,) = run(nodes.DisPoseLoader, **LOADER_ARGS, dift_folder="sd15")
    assert m.dift is not None
    return m


@pytest.fixture(scope="module")
def condition(model):
    reference = torch.rand(1, 80, 60, 3)
    driving = [person(dx, h=120, w=90) for dx in (0.0, 0.03, 0.06)]
    cond, preview = run(
        nodes.DisPoseMotionEncoder,
        model=model,
        reference=reference,
        reference_pose=[person()],
        driving_pose=driving,
        width=128,
        height=64,
        fit="crop",
        retarget="global",
    )
    return cond, preview, reference, driving


def test_encoder_outputs_and_cache(model, condition):
    cond, preview, reference, driving = condition
    assert preview.shape == (4, 64, 128, 3) and preview.min() >= 0 and preview.max() <= 1
    assert preview[1:].sum() > 0  # driving skeletons were drawn
    assert cond.controlnet_flow.shape == (1, 3, 2, 64, 128) and cond.traj_flow.shape == (1, 3, 2, 64, 128)
    assert cond.traj_flow.abs().sum() > 0
    # DIFT keypoint features: one row per visible reference keypoint, finite and non-zero.
    assert cond.ref_point_emb.shape == (1, 18, 48)
    assert torch.isfinite(cond.ref_point_emb).all() and (cond.ref_point_emb.abs().sum(-1) > 0).all()
    again, _ = run(
        nodes.DisPoseMotionEncoder,
        model=model,
        reference=reference,
        reference_pose=[person()],
        driving_pose=driving,
        width=128,
        height=64,
    )
    assert again is cond  # re-queue with the same inputs reuses the motion fields


def test_sampler_and_decoder(model, condition):
    cond = condition[0]
    (latent,) = run(
        nodes.DisPoseSampler,
        model=model,
        condition=cond,
        steps=1,
        min_guidance=1.5,
        max_guidance=2.0,
        tile_size=3,
        tile_overlap=1,
        seed=1,
    )
    assert latent["samples"].shape == (3, 4, 8, 16)
    (with_ref,) = run(
        nodes.DisPoseSampler,
        model=model,
        condition=cond,
        steps=1,
        max_guidance=1.0,
        min_guidance=1.0,
        tile_size=16,
        include_reference=True,
    )
    assert with_ref["samples"].shape == (4, 4, 8, 16)
    (images,) = run(nodes.DisPoseDecoder, model=model, latent=latent, chunk_size=2, chunk_overlap=1)
    assert images.shape == (3, 64, 128, 3) and torch.isfinite(images).all()
    whole = generate.decode_latents(model, latent["samples"], chunk=3, overlap=0)
    assert whole.shape == images.shape


def test_bad_inputs(model, weights_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ref = torch.rand(1, 64, 64, 3)
    with pytest.raises(InputError, match="multiples of 64"):
        run(
            nodes.DisPoseMotionEncoder,
            model=model,
            reference=ref,
            reference_pose=[person()],
            driving_pose=[person()],
            width=100,
            height=64,
        )
    with pytest.raises(InputError, match="no person found"):
        run(
            nodes.DisPoseMotionEncoder,
            model=model,
            reference=ref,
            reference_pose=[{"people": []}],
            driving_pose=[person()],
            width=64,
            height=64,
        )
    with pytest.raises(InputError, match="no frames"):
        run(
            nodes.DisPoseMotionEncoder,
            model=model,
            reference=ref,
            reference_pose=[person()],
            driving_pose=[],
            width=64,
            height=64,
        )
    with pytest.raises(InputError, match="exactly one person"):
        run(
            nodes.DisPoseMotionEncoder,
            model=model,
            reference=ref,
            reference_pose=[person()],
            driving_pose=[{"people": []}],
            width=64,
            height=64,
        )
    with pytest.raises(InputError, match="LATENT"):
        run(nodes.DisPoseDecoder, model=model, latent=torch.zeros(1))
    with pytest.raises(InputError, match="motion encoder"):
        run(nodes.DisPoseSampler, model=model, condition={})
    with pytest.raises(InputError, match="base folder"):
        run(nodes.DisPoseLoader, **{**LOADER_ARGS, "base_folder": "nope"})
    with pytest.raises(InputError, match="DIFT folder"):
        run(nodes.DisPoseLoader, **LOADER_ARGS, dift_folder="no_such_sd")
    with pytest.raises(MissingWeightsError, match="missing.pth"):
        run(nodes.DisPoseLoader, **{**LOADER_ARGS, "cmp": "missing.pth"})
    (weights_dir / "vae_backup").mkdir()
    base = weights_dir / nodes.BASE_FOLDER_NAME
    (base / "vae" / "config.json").rename(weights_dir / "vae_backup" / "config.json")
    try:
        with pytest.raises(MissingWeightsError, match="vae/config.json"):
            run(nodes.DisPoseLoader, **LOADER_ARGS)
    finally:
        (weights_dir / "vae_backup" / "config.json").rename(base / "vae" / "config.json")


def test_cli_end_to_end(weights_dir, tmp_path):
    import argparse
    import json

    from motionsuite.pipelines.core import video
    from motionsuite.pipelines.dispose import cli

    ref = tmp_path / "ref.png"
    video.write_image(torch.rand(1, 48, 40, 3), ref)
    (tmp_path / "ref.json").write_text(json.dumps([person()]))
    (tmp_path / "drive.json").write_text(json.dumps([person(0.02, 100, 80), person(0.05, 100, 80)]))
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    out = tmp_path / "frames"
    args = parser.parse_args(
        [
            "--reference",
            str(ref),
            "--reference-pose",
            str(tmp_path / "ref.json"),
            "--driving-pose",
            str(tmp_path / "drive.json"),
            "--output",
            str(out),
            "--weights-dir",
            str(weights_dir),
            "--width",
            "64",
            "--height",
            "64",
            "--steps",
            "1",
            "--max-guidance",
            "1",
            "--min-guidance",
            "1",
            "--precision",
            "fp32",
        ]
    )
    cli.run(args)
    assert len(list(out.glob("*.png"))) == 2


def test_fp8_storage_loader(model, condition):
    """Loader precision 'fp8_e4m3fn (storage)': UNet/ControlNet weights in fp8, output close to fp32."""
    from motionsuite.pipelines.core.device import get_torch_device, resolve_dtype

    (q,) = run(nodes.DisPoseLoader, **{**LOADER_ARGS, "precision": nodes.FP8_STORAGE})
    assert q.unet.conv_in.weight.dtype == torch.float8_e4m3fn
    assert q.controlnet.conv_in.weight.dtype == torch.float8_e4m3fn
    assert q.vae.dtype == q.dtype == resolve_dtype("auto", get_torch_device())
    kwargs = {"condition": condition[0], "steps": 1, "max_guidance": 2.0, "tile_size": 16, "seed": 1}
    (full,) = run(nodes.DisPoseSampler, model=model, **kwargs)
    (small,) = run(nodes.DisPoseSampler, model=q, **kwargs)
    a, b = full["samples"], small["samples"]
    assert 0 < float((a - b).norm() / a.norm()) < 0.15  # random tiny weights: ~8 %
