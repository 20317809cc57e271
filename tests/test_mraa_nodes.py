"""MRAA loader/animate nodes, checkpoint loading and the CLI, with a tiny-width checkpoint.

The checkpoint is written in the released ``vox256.pth`` layout (entries region_predictor, generator,
avd_network, bg_predictor, optimizers, epoch counters; see ``mraa_tiny.py``) and loaded through the
same code a user runs (weights_only, strict keys).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest
import torch
from motionsuite.nodes.mraa import NODE_CLASS_MAPPINGS
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError, WeightsMismatchError
from motionsuite.pipelines.mraa import animate, animate_tensors, load_model
from motionsuite.pipelines.mraa import cli as mraa_cli
from motionsuite.pipelines.mraa.model import default_image_size
from mraa_tiny import TINY, write_checkpoint
from PIL import Image


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mraa_weights")
    write_checkpoint(d / "vox256.pth")
    write_checkpoint(d / "noavd.pth", with_avd=False)
    write_checkpoint(d / "mgif256.pth", dataclasses.replace(TINY, bg_type="zero"))
    weights.add_search_dir("mraa", d)
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
    model = load_model(weights_dir / "vox256.pth", image_size=64)
    assert model.config == TINY
    saved = torch.load(weights_dir / "vox256.pth", weights_only=True)
    for key in ("region_predictor", "generator", "avd_network", "bg_predictor"):
        own = getattr(model, key).state_dict()
        assert set(own) == set(saved[key])
        assert all(torch.equal(own[k], saved[key][k]) for k in own)
    zero_bg = load_model(weights_dir / "mgif256.pth")
    assert zero_bg.config.bg_type == "zero" and zero_bg.config.image_size == 256
    assert default_image_size("ted384.pth") == 384 and default_image_size("mine.pth") == 256


@pytest.mark.parametrize("mode", ["avd", "relative", "standard"])
def test_nodes_run_as_comfyui_does(weights_dir, mode):
    (model,) = _call("MotionSuite_MRAA_Loader", checkpoint="vox256.pth", image_size=64)
    source = _images(1, 48, 80, seed=1)  # landscape: cropped, animated, pasted back
    driving = _images(3, 70, 50, seed=2)
    (out,) = _call(
        "MotionSuite_MRAA_Animate", model=model, source_image=source, driving_frames=driving, mode=mode
    )
    assert out.shape == (3, 48, 80, 3)
    assert out.min() >= 0 and out.max() <= 1
    # outside the centre square the source is kept, inside it is replaced by the animation
    assert torch.allclose(out[:, :, :10], source[:, :, :10].expand(3, -1, -1, -1))
    assert not torch.allclose(out[:, :, 16:64], source[:, :, 16:64].expand(3, -1, -1, -1), atol=1e-3)
    if mode == "standard":  # the other fit, background motion and no paste-back, once
        (square,) = _call(
            "MotionSuite_MRAA_Animate",
            model=model,
            source_image=source,
            driving_frames=driving,
            mode=mode,
            paste_back=False,
            fit="pad",
            background_motion=True,
        )
        assert square.shape == (3, 64, 64, 3)


def test_batching_does_not_change_frames(weights_dir):
    model = load_model(weights_dir / "vox256.pth", image_size=64)
    src = _images(1, 64, 64, 3).permute(0, 3, 1, 2)
    drv = _images(5, 64, 64, 4).permute(0, 3, 1, 2)
    for mode in ("avd", "relative"):
        one = animate_tensors(model, src, drv, mode, batch_size=1)
        many = animate_tensors(model, src, drv, mode, batch_size=4)
        assert (one - many).abs().max() < 1e-4  # float reordering only
    ref = animate_tensors(model, src, drv, "relative", batch_size=5, reference_frame=2)
    assert not torch.allclose(ref, one)


def test_bad_inputs(weights_dir, tmp_path):
    (model,) = _call("MotionSuite_MRAA_Loader", checkpoint="vox256.pth", image_size=64)
    src, drv = _images(1, 64, 64, 1), _images(2, 64, 64, 2)
    node = "MotionSuite_MRAA_Animate"
    with pytest.raises(InputError, match="mode"):
        _call(node, model=model, source_image=src, driving_frames=drv, mode="absolute")
    with pytest.raises(InputError, match="fit"):
        _call(node, model=model, source_image=src, driving_frames=drv, fit="zoom")
    with pytest.raises(InputError, match="reference_frame"):
        _call(node, model=model, source_image=src, driving_frames=drv, mode="relative", reference_frame=5)
    with pytest.raises(InputError, match="IMAGE"):
        _call(node, model=model, source_image=src[0], driving_frames=drv)
    with pytest.raises(InputError, match="no frames"):
        _call(node, model=model, source_image=src, driving_frames=drv[:0])
    with pytest.raises(InputError, match="Loader"):
        _call(node, model="not a model", source_image=src, driving_frames=drv)
    with pytest.raises(InputError, match="batch_size"):
        _call(node, model=model, source_image=src, driving_frames=drv, batch_size=0)
    with pytest.raises(InputError, match="multiple of 32"):
        _call("MotionSuite_MRAA_Loader", checkpoint="vox256.pth", image_size=100)
    (no_avd,) = _call("MotionSuite_MRAA_Loader", checkpoint="noavd.pth", image_size=64)
    with pytest.raises(InputError, match="AVD"):
        _call(node, model=no_avd, source_image=src, driving_frames=drv, mode="avd")
    (zero_bg,) = _call("MotionSuite_MRAA_Loader", checkpoint="mgif256.pth", image_size=64)
    with pytest.raises(InputError, match="background"):
        _call(node, model=zero_bg, source_image=src, driving_frames=drv, background_motion=True)
    with pytest.raises(MissingWeightsError, match="missing.pth"):
        _call("MotionSuite_MRAA_Loader", checkpoint="missing.pth")
    broken = tmp_path / "broken.pth"
    ckpt = torch.load(weights_dir / "vox256.pth", weights_only=True)
    ckpt["generator"].pop("final.bias")
    torch.save(ckpt, broken)
    with pytest.raises(WeightsMismatchError, match="final.bias"):
        load_model(broken, image_size=64)
    ckpt["region_predictor"]["jacobian.weight"] = torch.zeros(4, 20, 7, 7)
    torch.save(ckpt, broken)
    with pytest.raises(WeightsMismatchError, match="pca_based"):
        load_model(broken)
    torch.save({"kp_detector": {}}, broken)
    with pytest.raises(WeightsMismatchError, match="region_predictor"):
        load_model(broken)


def test_cli_writes_frames(weights_dir, tmp_path):
    src_file = tmp_path / "source.png"
    Image.fromarray((_images(1, 40, 60, 5)[0].numpy() * 255).astype(np.uint8)).save(src_file)
    frames_dir = tmp_path / "driving"
    frames_dir.mkdir()
    for i, img in enumerate(_images(3, 50, 50, 6)):
        Image.fromarray((img.numpy() * 255).astype(np.uint8)).save(frames_dir / f"{i:03d}.png")
    parser = argparse.ArgumentParser()
    mraa_cli.add_arguments(parser)
    out_dir = tmp_path / "out"
    argv = ["--source", str(src_file), "--driving", str(frames_dir), "--output", str(out_dir)]
    argv += [
        "--weights-dir",
        str(weights_dir),
        "--image-size",
        "64",
        "--batch-size",
        "2",
        "--mode",
        "relative",
    ]
    mraa_cli.run(parser.parse_args(argv))
    written = sorted(out_dir.glob("*.png"))
    assert len(written) == 3
    assert Image.open(written[0]).size == (60, 40)


class _StubLandmarks:
    """face-alignment stand-in: 68 points on a ring around the image centre; no face on dark images."""

    def get_landmarks(self, image: np.ndarray):
        if float(image.mean()) / 255 < 0.05:
            return None
        h, w = image.shape[:2]
        t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
        r = 0.2 * min(h, w)
        return [np.stack([w / 2 + r * np.cos(t), h / 2 + r * np.sin(t)], axis=1)]


def test_face_fit(weights_dir):
    model = load_model(weights_dir / "vox256.pth", image_size=64)
    source, driving = _images(1, 64, 96, 7), _images(2, 64, 64, 8)
    out = animate(model, source, driving, fit="face", landmark_detector=_StubLandmarks(), batch_size=2)
    assert out.shape == (2, 64, 96, 3)
    with pytest.raises(InputError, match="no face"):
        animate(model, source * 0, driving, fit="face", landmark_detector=_StubLandmarks())
