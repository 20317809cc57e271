"""Part-swap nodes, checkpoint loading (both released layouts + the face parser), pipeline and CLI,
on tiny-width checkpoints written as the released files and loaded through the user's code path."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from motionsuite.nodes.partswap import NODE_CLASS_MAPPINGS
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError, WeightsMismatchError
from motionsuite.pipelines.partswap import (
    SwapOptions,
    load_face_parser,
    load_partswap_checkpoint,
    parse_segments,
    swap_tensors,
)
from motionsuite.pipelines.partswap import cli as partswap_cli
from motionsuite.pipelines.partswap.visualize import overlay, palette
from partswap_tiny import fomm_checkpoint, parser_file, segments_checkpoint
from PIL import Image

SWAP = "MotionSuite_PartSwap_Swap"
LOADER = "MotionSuite_PartSwap_Loader"


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("partswap_weights")
    segments_checkpoint(d / "vox-10segments.pth.tar", 10)
    segments_checkpoint(d / "vox-5segments.pth.tar", 5)
    fomm_checkpoint(d / "vox-first-order.pth.tar")
    fomm_checkpoint(d / "fomm-semantic.pth.tar", semantic_seg=True)
    parser_file(d / "79999_iter.pth")
    weights.add_search_dir("partswap", d)
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


def test_checkpoints_load_strictly(weights_dir):
    saved = torch.load(weights_dir / "vox-10segments.pth.tar", weights_only=True)
    model = load_partswap_checkpoint(weights_dir / "vox-10segments.pth.tar", image_size=64)
    own = model.segmentation.state_dict()
    assert set(own) == set(saved["segmentation_module"])
    assert all(torch.equal(own[k], saved["segmentation_module"][k]) for k in own)
    assert not model.first_order and model.learned_segmentation and model.num_segments == 10
    fomm = load_partswap_checkpoint(weights_dir / "vox-first-order.pth.tar", image_size=64)
    saved = torch.load(weights_dir / "vox-first-order.pth.tar", weights_only=True)
    assert fomm.first_order and not fomm.learned_segmentation
    assert torch.equal(fomm.segmentation.shift.weight, saved["kp_detector"]["kp.weight"])
    assert torch.equal(fomm.segmentation.affine.bias, saved["kp_detector"]["jacobian.bias"])
    assert torch.equal(
        fomm.generator.dense_motion_network.mask.weight,
        saved["generator"]["dense_motion_network.mask.weight"],
    )
    semantic = load_partswap_checkpoint(weights_dir / "fomm-semantic.pth.tar", image_size=64)
    assert semantic.learned_segmentation
    parser = load_face_parser(weights_dir / "79999_iter.pth")
    assert parser.n_classes == 19 and parser.cp.resnet.conv1.out_channels == 8


@pytest.mark.parametrize(
    "checkpoint, face_parser, segments, use_parser, source_seg, hard",
    [
        ("vox-10segments.pth.tar", "none", "eyes, mouth", False, False, False),
        ("vox-5segments.pth.tar", "none", "hair, 1", False, True, True),
        ("vox-first-order.pth.tar", "79999_iter.pth", "hair, skin, nose", True, True, False),
    ],
)
def test_nodes_run_as_comfyui_does(
    weights_dir, checkpoint, face_parser, segments, use_parser, source_seg, hard
):
    (model,) = _call(LOADER, checkpoint=checkpoint, face_parser=face_parser, image_size=64)
    source = _images(1, 70, 50, seed=1)
    driving = _images(3, 48, 80, seed=2)  # landscape: cropped, swapped, pasted back
    out, src_viz, drv_viz = _call(
        SWAP,
        model=model,
        source_image=source,
        driving_frames=driving,
        segments=segments,
        use_face_parser=use_parser,
        use_source_segmentation=source_seg,
        hard_edges=hard,
    )
    assert out.shape == (3, 48, 80, 3) and out.min() >= 0 and out.max() <= 1
    # outside the centre square the target frames are kept, inside they are replaced
    assert torch.allclose(out[:, :, :10], driving[:, :, :10])
    assert not torch.allclose(out[:, :, 16:64], driving[:, :, 16:64], atol=1e-3)
    assert src_viz.shape == (1, 64, 64, 3) and drv_viz.shape == (3, 64, 64, 3)


def test_chooser_nodes_feed_part_swap(weights_dir):
    (names,) = _call("MotionSuite_PartSwap_Parts10", eyes=True, mouth=True)
    assert names == "mouth, eyes"
    assert parse_segments(
        names, load_partswap_checkpoint(weights_dir / "vox-10segments.pth.tar").segment_names
    ) == (2, 7)
    (five,) = _call("MotionSuite_PartSwap_Parts5")
    assert five == "hair"
    (face,) = _call("MotionSuite_PartSwap_FaceParts", hair=False, u_lip=True, l_lip=True)
    assert face == "u_lip, l_lip"
    (fifteen,) = _call("MotionSuite_PartSwap_Parts15", eyes=False, neck=True)
    assert fifteen == "neck"
    with pytest.raises(InputError, match="at least one"):
        _call("MotionSuite_PartSwap_Parts10", eyes=False)


def test_batching_and_mask_options_change_what_they_should(weights_dir):
    model = load_partswap_checkpoint(weights_dir / "vox-10segments.pth.tar", image_size=64)
    src = _images(1, 64, 64, 3).permute(0, 3, 1, 2)
    drv = _images(5, 64, 64, 4).permute(0, 3, 1, 2)
    opts = SwapOptions((2, 7))
    one, _, labels_one = swap_tensors(model, src, drv, opts, batch_size=1)
    many, _, labels_many = swap_tensors(model, src, drv, opts, batch_size=4)
    assert (one - many).abs().max() < 1e-4 and torch.equal(labels_one, labels_many)
    everything = swap_tensors(model, src, drv, SwapOptions(tuple(range(11))), batch_size=5)[0]
    assert not torch.allclose(one, everything, atol=1e-4)
    soft = swap_tensors(model, src, drv, SwapOptions((2, 7), blend_scale=0.5), batch_size=5)[0]
    assert not torch.allclose(soft, many, atol=1e-5)


def test_segmentation_pictures():
    colours = palette(11)
    assert torch.equal(colours[0], torch.zeros(3)) and torch.allclose(
        colours[1], torch.tensor([1.0, 0.0, 0.16])
    )
    assert torch.allclose(colours[-1], torch.tensor([1.0, 0.0, 0.75]))
    labels = torch.tensor([[[0, 1], [2, 10]]])
    pic = overlay(torch.ones(1, 3, 2, 2), labels, 11, alpha=1.0)
    assert torch.equal(pic[0, :, 0, 0], torch.zeros(3)) and torch.allclose(pic[0, :, 1, 1], colours[10])
    grey = overlay(torch.zeros(1, 3, 2, 2), labels, 11, alpha=1.0, highlight=[1])
    assert torch.allclose(grey[0, :, 0, 1], colours[1]) and float(grey[0, :, 1, 0].std()) == 0


def test_bad_inputs(weights_dir, tmp_path):
    (model,) = _call(LOADER, checkpoint="vox-10segments.pth.tar", image_size=64)
    (fomm,) = _call(LOADER, checkpoint="vox-first-order.pth.tar", image_size=64)
    src, drv = _images(1, 64, 64, 1), _images(2, 64, 64, 2)
    base = dict(model=model, source_image=src, driving_frames=drv)
    with pytest.raises(InputError, match="unknown part 'nose'"):
        _call(SWAP, **base, segments="nose")
    with pytest.raises(InputError, match="out of range"):
        _call(SWAP, **base, segments="11")
    with pytest.raises(InputError, match="at least one part"):
        _call(SWAP, **base, segments=" , ")
    with pytest.raises(InputError, match="no face parser"):
        _call(SWAP, **base, use_face_parser=True)
    with pytest.raises(InputError, match="use_face_parser"):
        _call(SWAP, model=fomm, source_image=src, driving_frames=drv)
    with pytest.raises(InputError, match="blend_scale"):
        _call(SWAP, **base, blend_scale="0.3")
    with pytest.raises(InputError, match="fit"):
        _call(SWAP, **base, fit="zoom")
    with pytest.raises(InputError, match="viz_alpha"):
        _call(SWAP, **base, viz_alpha=2.0)
    with pytest.raises(InputError, match="batch_size"):
        _call(SWAP, **base, batch_size=0)
    with pytest.raises(InputError, match="IMAGE"):
        _call(SWAP, model=model, source_image=src[0], driving_frames=drv)
    with pytest.raises(InputError, match="no frames"):
        _call(SWAP, model=model, source_image=src, driving_frames=drv[:0])
    with pytest.raises(InputError, match="Loader"):
        _call(SWAP, model="not a model", source_image=src, driving_frames=drv)
    with pytest.raises(InputError, match="multiple of 32"):
        _call(LOADER, checkpoint="vox-10segments.pth.tar", image_size=100)
    with pytest.raises(MissingWeightsError, match="missing.pth.tar"):
        _call(LOADER, checkpoint="missing.pth.tar")
    broken = tmp_path / "broken.pth.tar"
    ckpt = torch.load(weights_dir / "vox-10segments.pth.tar", weights_only=True)
    ckpt["reconstruction_module"].pop("final.bias")
    torch.save(ckpt, broken)
    with pytest.raises(WeightsMismatchError, match="final.bias"):
        load_partswap_checkpoint(broken)
    torch.save({"inpainting_network": {}}, broken)
    with pytest.raises(WeightsMismatchError, match="segmentation_module"):
        load_partswap_checkpoint(broken)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "not_parser.pth")
    with pytest.raises(WeightsMismatchError, match="BiSeNet"):
        load_face_parser(tmp_path / "not_parser.pth")


def test_cli_writes_frames_and_pictures(weights_dir, tmp_path):
    src_file = tmp_path / "source.png"
    Image.fromarray((_images(1, 40, 60, 5)[0].numpy() * 255).astype(np.uint8)).save(src_file)
    frames_dir = tmp_path / "driving"
    frames_dir.mkdir()
    for i, img in enumerate(_images(3, 50, 70, 6)):
        Image.fromarray((img.numpy() * 255).astype(np.uint8)).save(frames_dir / f"{i:03d}.png")
    parser = argparse.ArgumentParser()
    partswap_cli.add_arguments(parser)
    out_dir, viz_dir = tmp_path / "out", tmp_path / "viz"
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
            "--segments",
            "hair, nose",
            "--face-parser",
            "--segmentation-output",
            str(viz_dir),
        ]
    )
    partswap_cli.run(args)
    written = sorted(out_dir.glob("*.png"))
    assert len(written) == 3 and Image.open(written[0]).size == (70, 50)
    assert len(sorted(viz_dir.glob("*.png"))) == 3
