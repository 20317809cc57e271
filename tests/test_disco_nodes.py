"""DisCo nodes run as ComfyUI runs them (INPUT_TYPES → FUNCTION), with a tiny checkpoint on disk."""

from __future__ import annotations

import pytest
import torch
from disco_tiny import tiny_model, write_base_folder, write_deepspeed_checkpoint
from motionsuite.nodes import disco as nodes
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError
from motionsuite.pipelines.disco import loading


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("models_disco")
    write_base_folder(root / nodes.BASE_FOLDER_NAME)
    released = loading.released_state_dict(tiny_model(seed=5))
    write_deepspeed_checkpoint(root / "tiktok_nocfg" / "mp_rank_00_model_states.pt", released)
    write_deepspeed_checkpoint(root / "tiktok_cfg" / "mp_rank_00_model_states.pt", released)
    weights.add_search_dir(nodes.FOLDER, root)
    return root


def run(cls, **kwargs):
    """Call a node the way ComfyUI does, checking the kwargs against its INPUT_TYPES."""
    spec = cls.INPUT_TYPES()
    allowed = set(spec["required"]) | set(spec.get("optional", {}))
    assert set(kwargs) <= allowed, set(kwargs) - allowed
    assert set(spec["required"]) <= set(kwargs) | {
        k for k, v in spec["required"].items() if "default" in v[1]
    }
    for name, (_, opts) in {**spec["required"], **spec.get("optional", {})}.items():
        assert opts.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    assert isinstance(out, tuple) and len(out) == len(cls.RETURN_TYPES)
    return out


@pytest.fixture(scope="module")
def model(weights_dir):
    assert (
        "tiktok_nocfg/mp_rank_00_model_states.pt"
        in nodes.DiscoLoader.INPUT_TYPES()["required"]["checkpoint"][0]
    )
    (m,) = run(
        nodes.DiscoLoader,
        checkpoint="tiktok_nocfg/mp_rank_00_model_states.pt",
        base_folder=nodes.BASE_FOLDER_NAME,
        precision="fp32",
    )
    return m


def _person(h=96, w=80, n=1):
    image = torch.rand(n, h, w, 3)
    mask = torch.zeros(n, h, w)
    mask[:, 20:80, 20:60] = 1
    return image, mask


def test_full_graph(model):
    image, mask = _person()
    (cond,) = run(
        nodes.DiscoEncoder, model=model, reference=image, reference_mask=mask, cfg_mode="auto", size=64
    )
    assert cond.cfg_mode == "zero_embedding"  # *_nocfg checkpoint
    assert cond.tokens.shape == (1, 257, 32) and torch.count_nonzero(cond.uncond) == 0
    assert cond.background_latent.shape == (1, 4, 8, 8)
    poses = torch.rand(3, 64, 64, 3)
    kwargs = dict(
        model=model,
        condition=cond,
        poses=poses,
        steps=2,
        guidance=0.0,
        eta=0.0,
        pose_scale=1.0,
        background_scale=1.0,
        seed=1,
        keep_model_loaded=False,
    )
    (lat_a,) = run(nodes.DiscoSampler, batch_size=2, **kwargs)
    (lat_b,) = run(nodes.DiscoSampler, batch_size=3, **kwargs)
    assert lat_a["samples"].shape == (3, 4, 8, 8)
    assert torch.isfinite(lat_a["samples"]).all()
    torch.testing.assert_close(
        lat_a["samples"], lat_b["samples"], atol=2e-4, rtol=1e-3
    )  # batching only reorders float sums
    (images,) = run(nodes.DiscoDecoder, model=model, latent=lat_a, batch_size=2)
    assert images.shape == (3, 64, 64, 3) and images.min() >= 0 and images.max() <= 1


def test_cfg_mode_and_guidance_change_result(model):
    image, mask = _person()
    (c1,) = run(
        nodes.DiscoEncoder, model=model, reference=image, reference_mask=mask, cfg_mode="zero_image", size=64
    )
    assert torch.count_nonzero(c1.uncond) > 0
    poses = torch.rand(1, 64, 64, 3)
    outs = [
        run(nodes.DiscoSampler, model=model, condition=c1, poses=poses, steps=1, guidance=g)[0]["samples"]
        for g in (1.0, 3.0)
    ]
    assert not torch.allclose(outs[0], outs[1])


def test_draw_poses_node():
    kp = [0.0] * 54
    kp[0:3] = [0.5, 0.2, 1.0]  # nose only → one full-colour joint, no limb
    frame = {"canvas_width": 64, "canvas_height": 48, "people": [{"pose_keypoints_2d": kp}]}
    (images,) = run(nodes.DiscoDrawPoses, pose_keypoint=[frame, {"canvas_width": 64, "canvas_height": 48}])
    assert images.shape == (2, 48, 64, 3)
    torch.testing.assert_close(images[0, 10, 32], torch.tensor([1.0, 0.0, 0.0]))
    assert images[1].max() == 0


def test_bad_inputs(model, weights_dir):
    image, mask = _person()
    with pytest.raises(InputError, match="mask size"):
        run(nodes.DiscoEncoder, model=model, reference=image, reference_mask=mask[:, :50], size=64)
    with pytest.raises(InputError, match="multiple of 64"):
        run(nodes.DiscoEncoder, model=model, reference=image, size=100)
    with pytest.raises(InputError, match="IMAGE"):
        run(nodes.DiscoEncoder, model=model, reference=torch.rand(1, 32, 32), size=64)
    (cond,) = run(nodes.DiscoEncoder, model=model, reference=image, size=64)
    with pytest.raises(InputError, match="at least one"):
        run(nodes.DiscoSampler, model=model, condition=cond, poses=torch.rand(0, 64, 64, 3), steps=1)
    with pytest.raises(InputError, match="LATENT"):
        run(nodes.DiscoDecoder, model=model, latent=torch.zeros(1, 4, 8, 8))
    with pytest.raises(InputError, match=r"\(F,4,h,w\)"):
        run(nodes.DiscoDecoder, model=model, latent={"samples": torch.zeros(1, 3, 8, 8)})
    with pytest.raises(MissingWeightsError, match="not found"):
        run(nodes.DiscoLoader, checkpoint="nope.pt", base_folder=nodes.BASE_FOLDER_NAME, precision="fp32")
    with pytest.raises(InputError, match="sd-image-variations"):
        run(
            nodes.DiscoLoader,
            checkpoint="tiktok_cfg/mp_rank_00_model_states.pt",
            base_folder="missing",
            precision="fp32",
        )
    with pytest.raises(InputError, match="no frames"):
        run(nodes.DiscoDrawPoses, pose_keypoint=[])


def test_cli_writes_frames(weights_dir, tmp_path):
    import argparse

    import numpy as np
    from motionsuite.pipelines.disco import cli
    from PIL import Image

    poses = tmp_path / "poses"
    poses.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(poses / f"{i:03d}.png")
    Image.fromarray(rng.integers(0, 255, (80, 72, 3), dtype=np.uint8)).save(tmp_path / "ref.png")
    mask = np.zeros((80, 72), dtype=np.uint8)
    mask[10:70, 20:50] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        [
            "--reference",
            str(tmp_path / "ref.png"),
            "--reference-mask",
            str(tmp_path / "mask.png"),
            "--poses",
            str(poses),
            "--output",
            str(tmp_path / "out"),
            "--weights-dir",
            str(weights_dir),
            "--checkpoint",
            "tiktok_cfg/mp_rank_00_model_states.pt",
            "--steps",
            "1",
            "--size",
            "64",
            "--precision",
            "fp32",
            "--fps",
            "8",
        ]
    )
    cli.run(args)
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    bad = parser.parse_args(
        [
            "--reference",
            "x.png",
            "--poses",
            str(poses),
            "--output",
            "o",
            "--weights-dir",
            str(weights_dir),
            "--checkpoint",
            "missing.pt",
        ]
    )
    with pytest.raises(FileNotFoundError, match="DisCo README"):
        cli.run(bad)


def test_sampler_interrupt_stops_between_steps(model):
    from motionsuite.pipelines.core import comfy

    image, mask = _person()
    (cond,) = run(nodes.DiscoEncoder, model=model, reference=image, reference_mask=mask, size=64)
    comfy.request_interrupt(True)
    try:
        with pytest.raises(KeyboardInterrupt):
            run(nodes.DiscoSampler, model=model, condition=cond, poses=torch.rand(2, 64, 64, 3), steps=3)
    finally:
        comfy.request_interrupt(False)
