"""TPSMM loader/animate nodes, checkpoint loading and the CLI, with a tiny-width checkpoint.

The checkpoint is written in the released ``vox.pth.tar`` layout (entries kp_detector,
dense_motion_network, inpainting_network, avd_network, optimizer_avd, epoch) with small widths and
loaded through the same code a user runs (weights_only, strict keys).
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from motionsuite.models.tpsmm.config import TPSMMConfig, build_networks
from motionsuite.nodes.tpsmm import NODE_CLASS_MAPPINGS
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError, WeightsMismatchError
from motionsuite.pipelines.tpsmm import animate_tensors, config_from_state_dicts, load_model
from motionsuite.pipelines.tpsmm import cli as tpsmm_cli
from PIL import Image

TINY = TPSMMConfig(
    num_tps=3,
    gen_block_expansion=4,
    gen_max_features=16,
    gen_num_down_blocks=3,
    dm_block_expansion=4,
    dm_max_features=16,
    dm_num_blocks=3,
    id_bottle_size=8,
    pose_bottle_size=8,
    image_size=64,
)


def _tiny_checkpoint(path, with_avd: bool = True) -> dict:
    torch.manual_seed(3)
    nets = build_networks(TINY)
    ckpt = {key: net.state_dict() for key, net in nets.items()}
    ckpt["epoch"] = 7
    ckpt["optimizer_avd"] = {"state": {}, "param_groups": [{"lr": 2e-4, "params": [0, 1]}]}
    if not with_avd:
        del ckpt["avd_network"], ckpt["optimizer_avd"]
    torch.save(ckpt, path)
    return ckpt


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tpsmm_weights")
    _tiny_checkpoint(d / "vox.pth.tar")
    _tiny_checkpoint(d / "noavd.pth.tar", with_avd=False)
    weights.add_search_dir("tpsmm", d)
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
    model = load_model(weights_dir / "vox.pth.tar", image_size=64)
    assert model.config == TINY
    saved = torch.load(weights_dir / "vox.pth.tar", weights_only=True)
    for key in ("kp_detector", "dense_motion_network", "inpainting_network", "avd_network"):
        own = getattr(model, key).state_dict()
        assert set(own) == set(saved[key])
        assert all(torch.equal(own[k], saved[key][k]) for k in own)
    assert config_from_state_dicts(saved).dm_scale_factor == 0.25


@pytest.mark.parametrize("mode", ["relative", "standard", "avd"])
def test_nodes_run_as_comfyui_does(weights_dir, mode):
    (model,) = _call("MotionSuite_TPSMM_Loader", checkpoint="vox.pth.tar", image_size=64)
    source = _images(1, 48, 80, seed=1)  # landscape: cropped, animated, pasted back
    driving = _images(3, 70, 50, seed=2)
    (out,) = _call(
        "MotionSuite_TPSMM_Animate", model=model, source_image=source, driving_frames=driving, mode=mode
    )
    assert out.shape == (3, 48, 80, 3)
    assert out.min() >= 0 and out.max() <= 1
    # outside the centre square the source is kept, inside it is replaced by the animation
    assert torch.allclose(out[:, :, :10], source[:, :, :10].expand(3, -1, -1, -1))
    assert not torch.allclose(out[:, :, 16:64], source[:, :, 16:64].expand(3, -1, -1, -1), atol=1e-3)
    if mode == "standard":  # the other fit and no paste-back, once
        (square,) = _call(
            "MotionSuite_TPSMM_Animate",
            model=model,
            source_image=source,
            driving_frames=driving,
            mode=mode,
            paste_back=False,
            fit="pad",
        )
        assert square.shape == (3, 64, 64, 3)


def test_batching_does_not_change_frames(weights_dir):
    model = load_model(weights_dir / "vox.pth.tar", image_size=64)
    src = _images(1, 64, 64, 3).permute(0, 3, 1, 2)
    drv = _images(5, 64, 64, 4).permute(0, 3, 1, 2)
    one = animate_tensors(model, src, drv, "relative", batch_size=1)
    many = animate_tensors(model, src, drv, "relative", batch_size=4)
    assert (one - many).abs().max() < 1e-4  # float reordering only
    # relative mode: the reference frame reproduces the source pose, so its flow is near identity
    ref = animate_tensors(model, src, drv, "relative", batch_size=5, reference_frame=2)
    assert not torch.allclose(ref, one)


def test_bad_inputs(weights_dir, tmp_path):
    (model,) = _call("MotionSuite_TPSMM_Loader", checkpoint="vox.pth.tar", image_size=64)
    src, drv = _images(1, 64, 64, 1), _images(2, 64, 64, 2)
    animate_node = "MotionSuite_TPSMM_Animate"
    with pytest.raises(InputError, match="mode"):
        _call(animate_node, model=model, source_image=src, driving_frames=drv, mode="absolute")
    with pytest.raises(InputError, match="fit"):
        _call(animate_node, model=model, source_image=src, driving_frames=drv, fit="zoom")
    with pytest.raises(InputError, match="reference_frame"):
        _call(animate_node, model=model, source_image=src, driving_frames=drv, reference_frame=5)
    with pytest.raises(InputError, match="IMAGE"):
        _call(animate_node, model=model, source_image=src[0], driving_frames=drv)
    with pytest.raises(InputError, match="no frames"):
        _call(animate_node, model=model, source_image=src, driving_frames=drv[:0])
    with pytest.raises(InputError, match="Loader"):
        _call(animate_node, model="not a model", source_image=src, driving_frames=drv)
    with pytest.raises(InputError, match="batch_size"):
        _call(animate_node, model=model, source_image=src, driving_frames=drv, batch_size=0)
    with pytest.raises(InputError, match="multiple of 32"):
        _call("MotionSuite_TPSMM_Loader", checkpoint="vox.pth.tar", image_size=100)
    (no_avd,) = _call("MotionSuite_TPSMM_Loader", checkpoint="noavd.pth.tar", image_size=64)
    with pytest.raises(InputError, match="AVD"):
        _call(animate_node, model=no_avd, source_image=src, driving_frames=drv, mode="avd")
    with pytest.raises(MissingWeightsError, match="missing.pth.tar"):
        _call("MotionSuite_TPSMM_Loader", checkpoint="missing.pth.tar")
    broken = tmp_path / "broken.pth.tar"
    ckpt = torch.load(weights_dir / "vox.pth.tar", weights_only=True)
    ckpt["inpainting_network"].pop("final.bias")
    torch.save(ckpt, broken)
    with pytest.raises(WeightsMismatchError, match="final.bias"):
        load_model(broken, image_size=64)
    torch.save({"generator": {}}, broken)
    with pytest.raises(WeightsMismatchError, match="kp_detector"):
        load_model(broken)


def test_cli_writes_frames(weights_dir, tmp_path):
    src_file = tmp_path / "source.png"
    Image.fromarray((_images(1, 40, 60, 5)[0].numpy() * 255).astype(np.uint8)).save(src_file)
    frames_dir = tmp_path / "driving"
    frames_dir.mkdir()
    for i, img in enumerate(_images(3, 50, 50, 6)):
        Image.fromarray((img.numpy() * 255).astype(np.uint8)).save(frames_dir / f"{i:03d}.png")
    parser = argparse.ArgumentParser()
    tpsmm_cli.add_arguments(parser)
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
            "--image-size",
            "64",
            "--batch-size",
            "2",
        ]
    )
    tpsmm_cli.run(args)
    written = sorted(out_dir.glob("*.png"))
    assert len(written) == 3
    assert Image.open(written[0]).size == (60, 40)


class _StubLandmarks:
    """face-alignment stand-in: a ring of 68 points around the centre, turned by the image's mean
    brightness (so frames of similar brightness have similar 'pose'); no face on dark images."""

    def get_landmarks(self, image: np.ndarray):
        mean = float(image.mean()) / 255
        if mean < 0.05:
            return None
        h, w = image.shape[:2]
        t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
        r = 0.25 * min(h, w) * (1 + 0.3 * np.cos(3 * t))
        ang = t + 3 * mean
        return [np.stack([w / 2 + r * np.cos(ang), h / 2 + r * np.sin(ang)], axis=1)]


def _flat(n_means: list[float], h: int, w: int) -> torch.Tensor:
    base = _images(len(n_means), h, w, seed=9)
    base = base - base.mean(dim=(1, 2, 3), keepdim=True)  # zero-mean texture
    return (base * 0.2 + torch.tensor(n_means).view(-1, 1, 1, 1)).clamp(0, 1)


def test_find_best_frame_and_face_fit(weights_dir):
    from motionsuite.pipelines.tpsmm import animate

    model = load_model(weights_dir / "vox.pth.tar", image_size=64)
    stub = _StubLandmarks()
    source = _flat([0.5], 64, 96)
    driving = _flat([0.2, 0.49, 0.8], 64, 64)
    best = animate(model, source, driving, find_best_frame=True, landmark_detector=stub, batch_size=3)
    by_index = animate(model, source, driving, reference_frame=1, batch_size=3)
    first = animate(model, source, driving, reference_frame=0, batch_size=3)
    assert torch.allclose(best, by_index, atol=1e-6)
    assert not torch.allclose(best, first, atol=1e-4)
    face = animate(model, source, driving, fit="face", landmark_detector=stub, batch_size=3)
    assert face.shape == (3, 64, 96, 3)
    with pytest.raises(InputError, match="no face"):
        animate(model, source * 0, driving, find_best_frame=True, landmark_detector=stub)


def test_face_options_without_face_alignment(weights_dir):
    try:
        import face_alignment  # noqa: F401

        pytest.skip("face-alignment is installed; the missing-package message is not reachable")
    except ImportError:
        pass
    (model,) = _call("MotionSuite_TPSMM_Loader", checkpoint="vox.pth.tar", image_size=64)
    src, drv = _images(1, 64, 64, 1), _images(2, 64, 64, 2)
    with pytest.raises(InputError, match="face-alignment"):
        _call(
            "MotionSuite_TPSMM_Animate",
            model=model,
            source_image=src,
            driving_frames=drv,
            find_best_frame=True,
        )
