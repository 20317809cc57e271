"""kijai's merged fp16 MimicMotion UNet files (HF Kijai/MimicMotion_pruned) through the loader.

``MimicMotionMergedUnet_1-1-fp16.safetensors`` holds the UNet with bare diffusers keys in fp16; the
PoseNet comes from ``mimic_motion_pose_net.safetensors`` (bare PoseNet keys, fp16; GitHub
kijai/ComfyUI-MimicMotionWrapper, models/). Tiny files in those layouts are made from the tiny
``MimicMotion_1-1.pth`` and must give the same networks.
"""

from __future__ import annotations

import pytest
import torch
from dispose_tiny import write_weights
from motionsuite.models.dispose.pose_net import PoseNet
from motionsuite.nodes import dispose as nodes
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import MissingWeightsError
from motionsuite.pipelines.dispose import loading
from motionsuite.pipelines.dispose.loading import (
    POSE_NET_FILE,
    has_pose_net,
    load_dispose,
    mimicmotion_state_dicts,
)
from parity_utils import random_state_dict
from safetensors.torch import save_file

MERGED = "MimicMotionMergedUnet_1-1-fp16.safetensors"
MERGED_WITH_POSE = "merged_unet_and_pose_net-fp16.safetensors"
OTHER_POSE = "other_pose_net.safetensors"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("models_dispose_kijai")
    write_weights(root, cmp=False)
    (root / "ckpt_iter_42000.pth.tar").write_bytes(b"")  # CMP is not what these tests are about
    sd = torch.load(root / "MimicMotion_1-1.pth", weights_only=True)
    unet = {k[5:]: v.half() for k, v in sd.items() if k.startswith("unet.")}
    pose = {k[9:]: v.half() for k, v in sd.items() if k.startswith("pose_net.")}
    save_file(unet, root / MERGED)
    save_file(pose, root / POSE_NET_FILE)
    save_file({**unet, **pose}, root / MERGED_WITH_POSE)
    other = {k: v.half() for k, v in random_state_dict(PoseNet(32), 99).items()}
    save_file(other, root / OTHER_POSE)
    weights.add_search_dir(nodes.FOLDER, root)
    return root


def _load(root, mimicmotion, pose_net=None):
    return load_dispose(
        root / nodes.BASE_FOLDER_NAME,
        root / mimicmotion,
        root / "DisPose.pth",
        None,
        pose_net_file=pose_net,
        dtype=torch.float32,
    )


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_layouts_split_into_unet_and_pose_net(root):
    pth = torch.load(root / "MimicMotion_1-1.pth", weights_only=True)
    unet_ref, pose_ref = mimicmotion_state_dicts(pth)
    for name, has_pose in ((MERGED, False), (MERGED_WITH_POSE, True)):
        unet, pose = mimicmotion_state_dicts(weights.load_state_dict(root / name))
        assert unet.keys() == unet_ref.keys()
        assert (pose is not None) == has_pose == has_pose_net(root / name)
        if has_pose:
            assert pose.keys() == pose_ref.keys()
    prefixed = {**{k: v for k, v in unet_ref.items()}, **{f"pose_net.{k}": v for k, v in pose_ref.items()}}
    unet, pose = mimicmotion_state_dicts(prefixed)
    assert unet.keys() == unet_ref.keys() and pose.keys() == pose_ref.keys()
    assert has_pose_net(root / "MimicMotion_1-1.pth")


def test_loader_node_with_merged_files_matches_the_pth(root, monkeypatch):
    monkeypatch.setattr(loading, "load_cmp", lambda path: None)  # CMP loading has its own tests
    reference = _load(root, "MimicMotion_1-1.pth")
    args = {
        "base_folder": nodes.BASE_FOLDER_NAME,
        "controlnet": "DisPose.pth",
        "cmp": "ckpt_iter_42000.pth.tar",
        "precision": "fp32",
        "dift_folder": "",
    }
    spec = nodes.DisPoseLoader.INPUT_TYPES()
    assert MERGED in spec["required"]["mimicmotion"][0]
    assert spec["optional"]["pose_net"][0][0] == nodes.POSE_NET_AUTO
    assert POSE_NET_FILE in spec["optional"]["pose_net"][0]
    (model,) = nodes.DisPoseLoader().load(mimicmotion=MERGED, **args)  # auto: the separate PoseNet file
    assert _same(model.unet, reference.unet) and _same(model.pose_net, reference.pose_net)
    (model,) = nodes.DisPoseLoader().load(mimicmotion=MERGED_WITH_POSE, pose_net=OTHER_POSE, **args)
    assert _same(model.unet, reference.unet)  # a chosen PoseNet file wins over embedded keys
    expected = {k: v.float() for k, v in random_state_dict(PoseNet(32), 99).items()}
    assert all(torch.equal(model.pose_net.state_dict()[k], v.half().float()) for k, v in expected.items())


def test_merged_unet_without_pose_net_is_an_error_naming_the_file(root):
    with pytest.raises(MissingWeightsError, match=POSE_NET_FILE) as err:
        _load(root, MERGED)
    assert "ComfyUI-MimicMotionWrapper" in str(err.value)


def test_cli_flags():
    import argparse

    from motionsuite.pipelines.dispose import cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    base = ["--reference", "r.png", "--reference-pose", "r.json", "--driving-pose", "d.json", "--output", "o"]
    args = parser.parse_args(
        [*base, "--mimicmotion", MERGED, "--pose-net", POSE_NET_FILE, "--retarget", "per-limb"]
    )
    assert (args.mimicmotion, args.pose_net, args.retarget) == (MERGED, POSE_NET_FILE, "per-limb")
    assert parser.parse_args(base).pose_net is None
