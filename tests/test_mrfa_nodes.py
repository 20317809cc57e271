"""MRFA loader/animate nodes, checkpoint loading, batching, progress/interrupt and the CLI.

Checkpoints are tiny-width networks written in the released layout: ``{'model': state dict with
the DataParallel 'module.' prefix, 'optimizer': ..., 'epoch': ...}``, holding encoder, dense_motion,
decoder (+ bg_predictor for celebvhq) and training-only vgg/pyramid/down entries, loaded through
the same code a user runs (weights_only, strict keys per network).
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from motionsuite.models.mrfa import MRFAConfig, build_networks
from motionsuite.nodes.mrfa import NODE_CLASS_MAPPINGS
from motionsuite.pipelines.core import comfy, weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError, WeightsMismatchError
from motionsuite.pipelines.core.progress import Progress
from motionsuite.pipelines.mrfa import animate, animate_tensors, load_model
from motionsuite.pipelines.mrfa import cli as mrfa_cli
from parity_utils import random_state_dict
from PIL import Image

TINY = MRFAConfig(
    image_size=32,
    kp_dim=16,
    kp_depth=1,
    kp_heads=8,
    hr_stage2_channels=(4, 8),
    hr_stage2_blocks=(1, 1),
    hr_stage2_modules=1,
    hr_stage3_channels=(4, 8, 16),
    hr_stage3_blocks=(1, 1, 1),
    hr_stage3_modules=1,
    dm_block_expansion=4,
    dm_max_features=16,
    dm_num_blocks=3,
    corr_dim=8,
    gen_block_expansion=4,
    gen_max_features=16,
    gen_num_up_blocks=4,  # coarsest level 2x2 at 32 px (a 1x1 level has no pixel grid)
    enc_block_expansion=4,
    enc_max_features=16,
    enc_num_blocks=3,
)


def tiny_checkpoint(path, background: bool) -> dict:
    """Write a released-layout .pth with seeded random weights (jacobian heads not at identity)."""
    nets = build_networks(MRFAConfig(**{**TINY.__dict__, "background": background}))
    sd = {}
    for i, (name, net) in enumerate(sorted(nets.items())):
        for key, value in random_state_dict(net, seed=10 + i, gain=0.5).items():
            sd[f"module.{name}.{key}"] = value
    sd["module.vgg.slice1.0.weight"] = torch.zeros(64, 3, 3, 3)  # training-only, skipped
    sd["module.pyramid.downs.0-5.weight"] = torch.zeros(3, 1, 7, 7)
    sd["module.down.weight"] = torch.zeros(3, 1, 13, 13)
    ckpt = {
        "model": sd,
        "optimizer": {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0]}]},
        "epoch": 99,
    }
    torch.save(ckpt, path)
    return ckpt


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mrfa_weights")
    tiny_checkpoint(d / "vox.pth", background=False)
    tiny_checkpoint(d / "celebvhq.pth", background=True)
    weights.add_search_dir("mrfa", d)
    return d


def _call(cls_name: str, **kwargs):
    cls = NODE_CLASS_MAPPINGS[cls_name]
    spec = cls.INPUT_TYPES()["required"]
    for name, (_type, opts) in ((k, v) for k, v in spec.items() if len(v) > 1):
        assert "tooltip" in opts, f"{cls_name}.{name} has no tooltip"
        if name not in kwargs and "default" in opts:
            kwargs[name] = opts["default"]
    return getattr(cls(), cls.FUNCTION)(**kwargs)


def _images(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g)
    return torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear").permute(0, 2, 3, 1).contiguous()


def test_config_read_from_checkpoint_and_strict_load(weights_dir):
    saved = torch.load(weights_dir / "celebvhq.pth", weights_only=True)["model"]
    model = load_model(weights_dir / "celebvhq.pth")
    assert model.config == MRFAConfig(**{**TINY.__dict__, "background": True})
    for name in ("encoder", "dense_motion", "decoder", "bg_predictor"):
        own = getattr(model, name).state_dict()
        theirs = {k[len(f"module.{name}.") :]: v for k, v in saved.items() if k.startswith(f"module.{name}.")}
        assert set(own) == set(theirs)
        assert all(torch.equal(own[k], theirs[k]) for k in own)
    vox = load_model(weights_dir / "vox.pth")
    assert vox.bg_predictor is None and not vox.config.background


@pytest.mark.parametrize(
    ("checkpoint", "mode", "background"),
    [("vox.pth", "relative", False), ("celebvhq.pth", "absolute", True), ("celebvhq.pth", "relative", True)],
)
def test_nodes_run_as_comfyui_does(weights_dir, checkpoint, mode, background):
    (model,) = _call("MotionSuite_MRFA_Loader", checkpoint=checkpoint)
    source = _images(1, 48, 80, seed=1)  # landscape: cropped, animated, pasted back
    driving = _images(3, 70, 50, seed=2)
    (out,) = _call(
        "MotionSuite_MRFA_Animate",
        model=model,
        source_image=source,
        driving_frames=driving,
        mode=mode,
        background_motion=background,
    )
    assert out.shape == (3, 48, 80, 3)
    assert out.min() >= 0 and out.max() <= 1
    # outside the centre square the source is kept, inside it is replaced by the animation
    assert torch.allclose(out[:, :, :10], source[:, :, :10].expand(3, -1, -1, -1))
    assert not torch.allclose(out[:, :, 16:64], source[:, :, 16:64].expand(3, -1, -1, -1), atol=1e-3)
    if background:  # the background predictor changes the result
        (still,) = _call(
            "MotionSuite_MRFA_Animate", model=model, source_image=source, driving_frames=driving, mode=mode
        )
        assert not torch.allclose(out, still, atol=1e-4)
    else:  # the other fit and no paste-back, once
        (square,) = _call(
            "MotionSuite_MRFA_Animate",
            model=model,
            source_image=source,
            driving_frames=driving,
            mode=mode,
            paste_back=False,
            fit="pad",
        )
        assert square.shape == (3, 32, 32, 3)


def test_batching_progress_and_interrupt(weights_dir):
    model = load_model(weights_dir / "celebvhq.pth")
    src = _images(1, 32, 32, 3).permute(0, 3, 1, 2)
    drv = _images(4, 32, 32, 4).permute(0, 3, 1, 2)
    bar = Progress(4, quiet=True)
    one = animate_tensors(model, src, drv, "relative", True, True, batch_size=1, progress=bar)
    assert bar.value == 4
    many = animate_tensors(model, src, drv, "relative", True, True, batch_size=4)
    assert (one - many).abs().max() < 1e-4  # float reordering only
    ref = animate_tensors(model, src, drv, "relative", True, True, batch_size=4, reference_frame=2)
    assert not torch.allclose(ref, one)
    comfy.request_interrupt()
    try:
        with pytest.raises(KeyboardInterrupt):
            animate_tensors(model, src, drv, "absolute", batch_size=2, progress=Progress(4, quiet=True))
    finally:
        comfy.request_interrupt(False)


def test_bad_inputs(weights_dir, tmp_path):
    (model,) = _call("MotionSuite_MRFA_Loader", checkpoint="vox.pth")
    src, drv = _images(1, 64, 64, 1), _images(2, 64, 64, 2)
    node = "MotionSuite_MRFA_Animate"
    with pytest.raises(InputError, match="mode"):
        _call(node, model=model, source_image=src, driving_frames=drv, mode="standard")
    with pytest.raises(InputError, match="fit"):
        _call(node, model=model, source_image=src, driving_frames=drv, fit="zoom")
    with pytest.raises(InputError, match="reference_frame"):
        _call(node, model=model, source_image=src, driving_frames=drv, reference_frame=5)
    with pytest.raises(InputError, match="IMAGE"):
        _call(node, model=model, source_image=src[0], driving_frames=drv)
    with pytest.raises(InputError, match="no frames"):
        _call(node, model=model, source_image=src, driving_frames=drv[:0])
    with pytest.raises(InputError, match="Loader"):
        _call(node, model="not a model", source_image=src, driving_frames=drv)
    with pytest.raises(InputError, match="batch_size"):
        _call(node, model=model, source_image=src, driving_frames=drv, batch_size=0)
    with pytest.raises(InputError, match="celebvhq"):
        _call(node, model=model, source_image=src, driving_frames=drv, background_motion=True)
    with pytest.raises(MissingWeightsError, match="missing.pth"):
        _call("MotionSuite_MRFA_Loader", checkpoint="missing.pth")
    broken = tmp_path / "broken.pth"
    ckpt = torch.load(weights_dir / "vox.pth", weights_only=True)
    ckpt["model"].pop("module.decoder.kp_head.bias")
    torch.save(ckpt, broken)
    with pytest.raises(WeightsMismatchError, match="kp_head.bias"):
        load_model(broken)
    torch.save({"generator": {"first.conv.weight": torch.zeros(1)}}, broken)
    with pytest.raises(WeightsMismatchError, match="encoder"):
        load_model(broken)


def test_cli_writes_frames(weights_dir, tmp_path):
    src_file = tmp_path / "source.png"
    Image.fromarray((_images(1, 40, 60, 5)[0].numpy() * 255).astype(np.uint8)).save(src_file)
    frames_dir = tmp_path / "driving"
    frames_dir.mkdir()
    for i, img in enumerate(_images(3, 50, 50, 6)):
        Image.fromarray((img.numpy() * 255).astype(np.uint8)).save(frames_dir / f"{i:03d}.png")
    parser = argparse.ArgumentParser()
    mrfa_cli.add_arguments(parser)
    out_dir = tmp_path / "out"
    args = parser.parse_args(
        [
            "--source",
            str(src_file),
            "--driving",
            str(frames_dir),
            "--output",
            str(out_dir),
            "--weights-dir",
            str(weights_dir),
            "--checkpoint",
            "celebvhq.pth",
            "--background-motion",
            "--adapt-scale",
            "--batch-size",
            "2",
        ]
    )
    mrfa_cli.run(args)
    written = sorted(out_dir.glob("*.png"))
    assert len(written) == 3
    assert Image.open(written[0]).size == (60, 40)


class _StubLandmarks:
    """face-alignment stand-in: a ring of 68 points turned by the image's mean brightness."""

    def get_landmarks(self, image: np.ndarray):
        mean = float(image.mean()) / 255
        h, w = image.shape[:2]
        t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
        r = 0.25 * min(h, w) * (1 + 0.3 * np.cos(3 * t))
        ang = t + 3 * mean
        return [np.stack([w / 2 + r * np.cos(ang), h / 2 + r * np.sin(ang)], axis=1)]


def test_find_best_frame(weights_dir):
    model = load_model(weights_dir / "vox.pth")
    base = _images(4, 64, 64, seed=9)
    base = base - base.mean(dim=(1, 2, 3), keepdim=True)
    frames = (base * 0.2 + torch.tensor([0.5, 0.2, 0.49, 0.8]).view(-1, 1, 1, 1)).clamp(0, 1)
    source, driving = frames[:1], frames[1:]
    best = animate(
        model, source, driving, find_best_frame=True, landmark_detector=_StubLandmarks(), batch_size=3
    )
    by_index = animate(model, source, driving, reference_frame=1, batch_size=3)
    assert torch.allclose(best, by_index, atol=1e-6)
