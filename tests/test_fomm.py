"""FOMM pipeline, nodes and CLI on tiny random-weight checkpoints in the released file layout."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from motionsuite.nodes.fomm import NODE_CLASS_MAPPINGS, MotionSuite_FOMM_Animate, MotionSuite_FOMM_Loader
from motionsuite.pipelines.core import video, weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError, WeightsMismatchError
from motionsuite.pipelines.fomm import animate as animate_mod
from motionsuite.pipelines.fomm.animate import AnimateOptions, animate, animate_frame_by_frame
from motionsuite.pipelines.fomm.model import FOLDER, build_fomm, infer_params, load_fomm_checkpoint
from motionsuite.pipelines.fomm.motion import MotionOptions
from parity_utils import random_state_dict

TINY = {
    "common_params": {"num_kp": 4, "num_channels": 3, "estimate_jacobian": True},
    "kp_detector_params": {"temperature": 0.1, "block_expansion": 4, "max_features": 16, "scale_factor": 0.25,
                           "num_blocks": 5},
    "generator_params": {"block_expansion": 4, "max_features": 16, "num_down_blocks": 2,
                         "num_bottleneck_blocks": 2, "estimate_occlusion_map": True,
                         "dense_motion_params": {"block_expansion": 4, "max_features": 16, "num_blocks": 5,
                                                 "scale_factor": 0.25}},
}


def _save_tiny(path, seed=0):
    """A checkpoint with the released vox-cpk.pth.tar structure (training entries included)."""
    gen, kpd = build_fomm(TINY)
    torch.save({"generator": random_state_dict(gen, seed), "kp_detector": random_state_dict(kpd, seed + 1),
                "discriminator": {"down_blocks.0.conv.weight": torch.zeros(2, 2)},
                "optimizer_generator": {"state": {}, "param_groups": []},
                "optimizer_kp_detector": {"state": {}, "param_groups": []},
                "optimizer_discriminator": {"state": {}, "param_groups": []}, "epoch": 99}, path)
    return path


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "_extra_dirs", {})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = tmp_path / "w"
    d.mkdir()
    _save_tiny(d / "vox-adv-cpk.pth.tar")
    weights.add_search_dir(FOLDER, d)
    return d


@pytest.fixture
def model(weights_dir):
    return load_fomm_checkpoint(weights_dir / "vox-adv-cpk.pth.tar", name="vox-adv")


def _images(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h // 8, w // 8, generator=g)
    return torch.nn.functional.interpolate(x, size=(h, w), mode="bilinear").clamp(0, 1)


def _node_kwargs(cls, **given):
    """Defaults read from INPUT_TYPES, overridden by ``given``, as ComfyUI would pass them."""
    kwargs = {}
    for name, spec in cls.INPUT_TYPES()["required"].items():
        opts = spec[1] if len(spec) > 1 else {}
        if name in given:
            kwargs[name] = given[name]
        elif "default" in opts:
            kwargs[name] = opts["default"]
    return kwargs


def test_params_read_from_released_shapes():
    gen, kpd = build_fomm()
    params = infer_params(gen.state_dict(), kpd.state_dict())
    gen2, kpd2 = build_fomm(params)
    for a, b in ((gen, gen2), (kpd, kpd2)):
        shapes_a = {k: v.shape for k, v in a.state_dict().items()}
        assert shapes_a == {k: v.shape for k, v in b.state_dict().items()}


def test_loader_node_loads_released_layout(weights_dir):
    spec = MotionSuite_FOMM_Loader.INPUT_TYPES()["required"]["model_name"]
    assert "vox-adv-cpk.pth.tar" in spec[0] and "vox-cpk.pth.tar" in spec[0]
    cls = NODE_CLASS_MAPPINGS["MotionSuite_FOMM_Loader"]
    (m,) = getattr(cls(), cls.FUNCTION)(**_node_kwargs(cls, model_name="vox-adv-cpk.pth.tar"))
    ref = torch.load(weights_dir / "vox-adv-cpk.pth.tar", weights_only=True)
    for k, v in ref["kp_detector"].items():
        assert torch.equal(m.kp_detector.state_dict()[k], v)
    assert m.name == "vox-adv" and not m.generator.training


def test_loader_missing_file_names_file_folder_and_source(weights_dir):
    with pytest.raises(MissingWeightsError, match=r"vox-cpk\.pth\.tar.*first-order-model"):
        MotionSuite_FOMM_Loader().load("vox-cpk.pth.tar")
    with pytest.raises(InputError):
        MotionSuite_FOMM_Loader().load("")


def test_loader_rejects_foreign_checkpoint(tmp_path):
    torch.save({"generator": {"x": torch.zeros(1)}}, tmp_path / "bad.pth.tar")
    with pytest.raises(WeightsMismatchError, match="kp_detector"):
        load_fomm_checkpoint(tmp_path / "bad.pth.tar")


def test_animate_node_as_comfyui_runs_it(model):
    cls = NODE_CLASS_MAPPINGS["MotionSuite_FOMM_Animate"]
    src = _images(1, 300, 200, 1).permute(0, 2, 3, 1)
    drv = _images(3, 120, 160, 2).permute(0, 2, 3, 1)
    (out,) = getattr(cls(), cls.FUNCTION)(**_node_kwargs(cls, fomm_model=model, source=src, driving=drv))
    assert out.shape == (3, 256, 256, 3) and out.dtype == torch.float32
    assert float(out.min()) >= 0 and float(out.max()) <= 1 and float(out.std()) > 0
    (pasted,) = cls().animate(model, src, drv, crop="pad", paste_back=True, batch_size=2)
    assert pasted.shape == (3, 300, 200, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"fomm_model": "nope"}, "Load Model"),
    ({"source": torch.zeros(8, 8, 3)}, "source"),
    ({"driving": torch.zeros(0, 8, 8, 3)}, "driving"),
    ({"driving": torch.zeros(2, 8, 8, 5)}, "channels"),
    ({"batch_size": 0}, "batch_size"),
    ({"crop": "zoom"}, "crop"),
])
def test_animate_node_bad_inputs(model, kwargs, match):
    base = {"fomm_model": model, "source": torch.rand(1, 64, 64, 3), "driving": torch.rand(2, 64, 64, 3)}
    with pytest.raises(InputError, match=match):
        MotionSuite_FOMM_Animate().animate(**{**base, **kwargs})


@pytest.mark.parametrize("relative", [True, False])
def test_batched_equals_frame_by_frame(model, relative):
    opts = MotionOptions(relative, relative, relative)
    src, drv = _images(1, 256, 256, 3), _images(5, 256, 256, 4)
    batched = animate(model, src, drv, AnimateOptions(motion=opts), batch_size=4)
    reference = animate_frame_by_frame(model, src, drv, opts)
    assert (batched - reference).abs().max() < 1e-5


def test_oom_halves_batch_and_finishes(model, monkeypatch):
    src, drv = _images(1, 256, 256, 3), _images(4, 256, 256, 4)
    expected = animate(model, src, drv, batch_size=4)
    sizes, real = [], model.generator.forward

    def flaky(source, kp_driving, kp_source, **kw):
        sizes.append(kp_driving["value"].shape[0])
        if kp_driving["value"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(source, kp_driving, kp_source, **kw)

    monkeypatch.setattr(model.generator, "forward", flaky)
    got = animate(model, src, drv, batch_size=4)
    assert sizes == [4, 2, 2] and (got - expected).abs().max() < 1e-5


class FakeDetector:
    """Landmarks = a square whose size tells the frames apart; frame ``nofaces`` have no face."""

    def __init__(self, sizes, nofaces=()):
        self.sizes, self.nofaces, self.calls = sizes, set(nofaces), 0

    def get_landmarks(self, image):
        i = self.calls
        self.calls += 1
        if i in self.nofaces:
            return None
        s = self.sizes[i]
        pts = np.array([[0, 0], [s, 0], [s, s], [0, s], [s / 2, s / 3]], dtype=np.float64) + 100
        return [pts]


def test_find_best_frame_uses_best_frame_as_reference(model):
    src, drv = _images(1, 256, 256, 3), _images(4, 256, 256, 4)
    # call 0 is the source; calls 1..4 are driving frames 0..3, all skewed except frame 2
    det = FakeDetector([10, 10, 10, 10, 10])
    det.get_landmarks = _skewed(det.get_landmarks, skew={1: 3.0, 2: 2.0, 4: 5.0})
    got = animate(model, src, drv, AnimateOptions(find_best_frame=True), landmark_detector=det)
    opts = MotionOptions()
    ref = animate_frame_by_frame(model, src, torch.cat([drv[2:3], drv]), opts)[1:]
    assert (got - ref).abs().max() < 1e-5


def _skewed(fn, skew):
    calls = {"n": 0}

    def wrapped(image):
        i = calls["n"]
        calls["n"] += 1
        out = fn(image)
        if out is not None and skew.get(i):
            out[0][:, 0] += skew[i] * out[0][:, 1] / 10
        return out
    return wrapped


def test_face_errors(model, monkeypatch):
    src, drv = _images(1, 64, 64, 3), _images(2, 64, 64, 4)
    monkeypatch.setitem(sys.modules, "face_alignment", None)
    with pytest.raises(InputError, match="face-alignment"):
        animate(model, src, drv, AnimateOptions(find_best_frame=True))
    with pytest.raises(InputError, match="no face.*source"):
        animate(model, src, drv, AnimateOptions(find_best_frame=True),
                landmark_detector=FakeDetector([], {0}))
    with pytest.raises(InputError, match="no face.*driving"):
        animate(model, src, drv, AnimateOptions(find_best_frame=True),
                landmark_detector=FakeDetector([10], {1, 2}))
    with pytest.raises(InputError, match="crop 'face'"):
        animate(model, src, drv, AnimateOptions(crop="face"), landmark_detector=FakeDetector([], {0}))


def test_face_crop_centres_on_landmarks(model):
    src, drv = _images(1, 300, 400, 3), _images(2, 200, 200, 4)
    got = animate(model, src, drv, AnimateOptions(crop="face", paste_back=True),
                  landmark_detector=FakeDetector([50, 50]))
    assert got.shape == (2, 3, 300, 400)
    assert animate_mod.faces is not None


@pytest.mark.parametrize("out_name", ["out.mp4", "frames"])
def test_cli_image_and_video(weights_dir, tmp_path, out_name):
    import cli

    src = tmp_path / "src.png"
    video.write_frames(_images(1, 96, 128, 5).permute(0, 2, 3, 1), tmp_path / "srcdir")
    (tmp_path / "srcdir" / "frame_00000.png").rename(src)
    drv = video.write_frames(_images(3, 64, 64, 6).permute(0, 2, 3, 1), tmp_path / "drv.mp4", fps=10)
    out = tmp_path / out_name
    rc = cli.main(["fomm", "--source", str(src), "--driving", str(drv), "--output", str(out),
                   "--weights-dir", str(weights_dir), "--model", "vox-adv", "--batch-size", "2",
                   "--device", "cpu"])
    assert rc == 0
    frames, _ = video.read_frames(out)
    assert frames.shape == (3, 256, 256, 3)
    assert cli.main(["fomm", "--source", str(src), "--driving", str(drv), "--output", str(out),
                     "--weights-dir", str(weights_dir), "--model", "vox"]) == 2
