"""FSRT loader/animate nodes, checkpoint loading, the pipeline options and the CLI, with tiny weights.

The checkpoints are written in the released layout (``vox256.pt``: encoder, decoder,
expression_encoder next to optimizer/discriminator/counters; ``kp_detector.pt``: a plain state
dict) with small widths and loaded through the same code a user runs (weights_only, strict keys).
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from fsrt_tiny import TINY, write_checkpoints
from motionsuite.nodes.fsrt import NODE_CLASS_MAPPINGS
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError, WeightsMismatchError
from motionsuite.pipelines.fsrt import animate, animate_tensors, load_model
from motionsuite.pipelines.fsrt import cli as fsrt_cli
from motionsuite.pipelines.fsrt.model import with_image_size
from PIL import Image


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fsrt_weights")
    write_checkpoints(d)
    write_checkpoints(d, "vox256_2Source.pt", seed=10)
    weights.add_search_dir("fsrt", d)
    return d


@pytest.fixture(scope="module")
def model(weights_dir):
    return load_model(weights_dir / "vox256.pt", weights_dir / "kp_detector.pt", image_size=64)


@pytest.fixture(scope="module")
def small(model):
    """The same networks at 32x32 (4x4 latent tokens): keeps the pipeline tests quick."""
    return with_image_size(model, 32)


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


def test_config_read_from_checkpoint_and_strict_load(weights_dir, model):
    assert model.config == TINY
    saved = torch.load(weights_dir / "vox256.pt", weights_only=True)
    saved["kp_detector"] = torch.load(weights_dir / "kp_detector.pt", weights_only=True)
    for key in ("kp_detector", "expression_encoder", "encoder", "decoder"):
        own = getattr(model, key).state_dict()
        assert set(own) == set(saved[key])
        assert all(torch.equal(own[k], saved[key][k]) for k in own)


def test_nodes_run_as_comfyui_does(weights_dir):
    (model,) = _call("MotionSuite_FSRT_Loader", checkpoint="vox256_2Source.pt", image_size=64)
    sources = _images(2, 48, 80, seed=1)  # two views, landscape: cropped, animated, pasted back
    driving = _images(2, 70, 50, seed=2)
    (out,) = _call("MotionSuite_FSRT_Animate", model=model, source_images=sources, driving_frames=driving,
                   relative=True, adapt_scale=True)
    assert out.shape == (2, 48, 80, 3)
    assert out.min() >= 0 and out.max() <= 1
    # outside the centre square the first source is kept, inside it is replaced by the rendering
    assert torch.allclose(out[:, :, :10], sources[:1, :, :10].expand(2, -1, -1, -1))
    assert not torch.allclose(out[:, :, 16:64], sources[:1, :, 16:64].expand(2, -1, -1, -1), atol=1e-3)
    (one_source,) = _call("MotionSuite_FSRT_Animate", model=model, source_images=sources[:1],
                          driving_frames=driving, relative=True, adapt_scale=True)
    assert not torch.allclose(one_source, out, atol=1e-4)  # the second view is used
    (square,) = _call("MotionSuite_FSRT_Animate", model=model, source_images=sources, driving_frames=driving,
                      fit="pad", paste_back=False, max_num_pixels=1000)
    assert square.shape == (2, 64, 64, 3)
    (stretched,) = _call("MotionSuite_FSRT_Animate", model=model, source_images=sources,
                         driving_frames=driving, fit="stretch")
    assert stretched.shape == (2, 64, 64, 3)


def test_chunks_and_batches_do_not_change_frames(small):
    src = _images(2, 32, 32, 3).permute(0, 3, 1, 2)
    drv = _images(4, 32, 32, 4).permute(0, 3, 1, 2)
    rays = 4 * 32 * 32
    done: list[int] = []
    chunked = animate_tensors(small, src, drv, relative=True, max_num_pixels=300, batch_size=1,
                              progress=done.append)
    assert sum(done) == rays and len(done) == -(-rays // 300)
    whole = animate_tensors(small, src, drv, relative=True, max_num_pixels=rays, batch_size=4)
    assert (chunked - whole).abs().max() < 1e-5  # float reordering only
    # relative mode with another reference frame changes the keypoints, hence the frames
    ref = animate_tensors(small, src, drv, relative=True, max_num_pixels=rays, reference_frame=2)
    assert not torch.allclose(ref, whole)
    absolute = animate_tensors(small, src, drv, relative=False, max_num_pixels=rays)
    assert not torch.allclose(absolute, whole)


def test_bf16_weights_render_close_to_fp32(weights_dir, small):
    half = load_model(weights_dir / "vox256.pt", weights_dir / "kp_detector.pt", image_size=32,
                      dtype=torch.bfloat16)
    assert next(half.decoder.parameters()).dtype == torch.bfloat16
    assert next(half.kp_detector.parameters()).dtype == torch.float32
    src = _images(1, 32, 32, 3).permute(0, 3, 1, 2)
    drv = _images(2, 32, 32, 4).permute(0, 3, 1, 2)
    ref = animate_tensors(small, src, drv, relative=True)
    out = animate_tensors(half, src, drv, relative=True)
    assert out.dtype == torch.float32 and out.isfinite().all()
    assert (out - ref).abs().mean() < 0.02


def test_interrupt_stops_rendering(small):
    src = _images(1, 32, 32, 3).permute(0, 3, 1, 2)
    drv = _images(3, 32, 32, 4).permute(0, 3, 1, 2)
    calls: list[int] = []

    def interrupt(count: int) -> None:
        calls.append(count)
        raise KeyboardInterrupt("stop")

    with pytest.raises(KeyboardInterrupt):
        animate_tensors(small, src, drv, max_num_pixels=1024, progress=interrupt)
    assert calls == [1024]


def test_bad_inputs(weights_dir, small, tmp_path):
    model = small
    src, drv = _images(1, 32, 32, 1), _images(2, 32, 32, 2)
    node = "MotionSuite_FSRT_Animate"
    with pytest.raises(InputError, match="fit"):
        _call(node, model=model, source_images=src, driving_frames=drv, fit="zoom")
    with pytest.raises(InputError, match="reference_frame"):
        _call(node, model=model, source_images=src, driving_frames=drv, reference_frame=5)
    with pytest.raises(InputError, match="IMAGE"):
        _call(node, model=model, source_images=src[0], driving_frames=drv)
    with pytest.raises(InputError, match="no frames"):
        _call(node, model=model, source_images=src, driving_frames=drv[:0])
    with pytest.raises(InputError, match="Loader"):
        _call(node, model="not a model", source_images=src, driving_frames=drv)
    with pytest.raises(InputError, match="max_num_pixels"):
        _call(node, model=model, source_images=src, driving_frames=drv, max_num_pixels=0)
    with pytest.raises(InputError, match="at most 8"):
        _call(node, model=model, source_images=_images(9, 32, 32, 1), driving_frames=drv)
    with pytest.raises(InputError, match="multiple of 32"):  # tiny detector: 4x down, 3 hourglass blocks
        _call("MotionSuite_FSRT_Loader", checkpoint="vox256.pt", image_size=96 + 8)
    with pytest.raises(InputError, match="precision"):
        _call("MotionSuite_FSRT_Loader", checkpoint="vox256.pt", precision="fp8")
    with pytest.raises(InputError, match="at least 64"):
        _call("MotionSuite_FSRT_Loader", checkpoint="vox256.pt", image_size=32)
    with pytest.raises(InputError, match="kp_detector input"):
        _call("MotionSuite_FSRT_Loader", checkpoint="kp_detector.pt")
    with pytest.raises(MissingWeightsError, match="missing.pt"):
        _call("MotionSuite_FSRT_Loader", checkpoint="missing.pt")
    broken = tmp_path / "broken.pt"
    ckpt = torch.load(weights_dir / "vox256.pt", weights_only=True)
    ckpt["decoder"].pop("render_mlp.4.bias")
    torch.save(ckpt, broken)
    with pytest.raises(WeightsMismatchError, match="render_mlp.4.bias"):
        load_model(broken, weights_dir / "kp_detector.pt")
    torch.save({"generator": {}}, broken)
    with pytest.raises(WeightsMismatchError, match="encoder, decoder, expression_encoder"):
        load_model(broken, weights_dir / "kp_detector.pt")
    with pytest.raises(WeightsMismatchError, match="kp.weight"):
        load_model(weights_dir / "vox256.pt", weights_dir / "vox256.pt")


def test_cli_two_sources_writes_frames(weights_dir, tmp_path):
    source_dir = tmp_path / "views"  # a folder of frames: views picked with --source-idx, as upstream
    source_dir.mkdir()
    for i, img in enumerate(_images(3, 40, 60, 5)):
        Image.fromarray((img.numpy() * 255).astype(np.uint8)).save(source_dir / f"{i:03d}.png")
    frames_dir = tmp_path / "driving"
    frames_dir.mkdir()
    for i, img in enumerate(_images(3, 50, 50, 6)):
        Image.fromarray((img.numpy() * 255).astype(np.uint8)).save(frames_dir / f"{i:03d}.png")
    parser = argparse.ArgumentParser()
    fsrt_cli.add_arguments(parser)
    out_dir = tmp_path / "out"
    args = parser.parse_args(["--source", str(source_dir), "--source-idx", "0", "-1", "--driving",
                              str(frames_dir), "--output", str(out_dir), "--weights-dir", str(weights_dir),
                              "--image-size", "64",
                              "--checkpoint", "vox256_2Source.pt", "--relative", "--adapt-scale",
                              "--max-num-pixels", "4096", "--max-frames", "2"])
    fsrt_cli.run(args)
    written = sorted(out_dir.glob("*.png"))
    assert len(written) == 2
    assert Image.open(written[0]).size == (60, 40)
    with pytest.raises(InputError, match="source-idx"):
        fsrt_cli.run(parser.parse_args(["--source", str(source_dir), "--source-idx", "5", "--driving",
                                        str(frames_dir), "--output", str(out_dir)]))


class _StubLandmarks:
    """face-alignment stand-in: 68 points on a ring turned by the image's mean brightness (similar
    brightness = similar 'pose'); no face on dark images."""

    def get_landmarks(self, image: np.ndarray):
        mean = float(image.mean()) / 255
        if mean < 0.05:
            return None
        h, w = image.shape[:2]
        t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
        r = 0.25 * min(h, w) * (1 + 0.3 * np.cos(3 * t))
        ang = t + 3 * mean
        return [np.stack([w / 2 + r * np.cos(ang), h / 2 + r * np.sin(ang)], axis=1)]


def _flat(means: list[float], h: int, w: int) -> torch.Tensor:
    base = _images(len(means), h, w, seed=9)
    base = base - base.mean(dim=(1, 2, 3), keepdim=True)
    return (base * 0.2 + torch.tensor(means).view(-1, 1, 1, 1)).clamp(0, 1)


def test_find_best_frame_and_face_fit(small):
    model = small
    stub = _StubLandmarks()
    source = _flat([0.5], 64, 96)
    driving = _flat([0.2, 0.49, 0.8], 64, 64)
    kw = {"relative": True, "max_num_pixels": 3 * 1024}
    best = animate(model, source, driving, find_best_frame=True, landmark_detector=stub, **kw)
    by_index = animate(model, source, driving, reference_frame=1, **kw)
    first = animate(model, source, driving, reference_frame=0, **kw)
    assert torch.allclose(best, by_index, atol=1e-6)
    assert not torch.allclose(best, first, atol=1e-4)
    face = animate(model, source, driving, fit="face", landmark_detector=stub, **kw)
    assert face.shape == (3, 64, 96, 3)
    with pytest.raises(InputError, match="no face"):
        animate(model, source * 0, driving, find_best_frame=True, landmark_detector=stub)


def test_face_options_without_face_alignment(small):
    try:
        import face_alignment  # noqa: F401

        pytest.skip("face-alignment is installed; the missing-package message is not reachable")
    except ImportError:
        pass
    with pytest.raises(InputError, match="face-alignment"):
        _call("MotionSuite_FSRT_Animate", model=small, source_images=_images(1, 32, 32, 1),
              driving_frames=_images(2, 32, 32, 2), find_best_frame=True)


def test_long_driving_video_is_converted_in_slices(small):
    """More frames than one conversion slice (16): every frame comes out, in order."""
    src = _images(1, 40, 40, 1)
    drv = _images(17, 24, 30, 2)
    out = animate(small, src, drv, fit="pad", paste_back=False, max_num_pixels=8 * 1024)
    assert out.shape == (17, 32, 32, 3)
    again = animate(small, src, drv[16:], fit="pad", paste_back=False, reference_frame=0, relative=False)
    single = animate(small, src, drv, fit="pad", paste_back=False, relative=False)
    assert (again[0] - single[16]).abs().max() < 1e-5


def test_animate_node_stops_on_interrupt(small):
    """The runtime's interrupt flag (ComfyUI's cancel button inside ComfyUI) stops the node at the
    first chunk boundary."""
    from motionsuite.pipelines.core import comfy

    comfy.request_interrupt(True)
    try:
        with pytest.raises(KeyboardInterrupt):
            _call("MotionSuite_FSRT_Animate", model=small, source_images=_images(1, 32, 32, 1),
                  driving_frames=_images(2, 32, 32, 2), max_num_pixels=256)
    finally:
        comfy.request_interrupt(False)
