"""PoseNet loads from a .pth in the MimicMotion_1-1.pth layout and maps poses to /8 latents."""

import pytest
import torch
from motionsuite.models.dispose.pose_net import PoseNet
from motionsuite.pipelines.dispose.loading import load_pose_net


def test_pose_net_loads_released_layout(tmp_path):
    src = PoseNet()
    torch.manual_seed(0)
    for p in src.parameters():
        p.data.normal_(0, 0.1)
    sd = {f"pose_net.{k}": v.half() for k, v in src.state_dict().items()}
    sd["unet.conv_in.weight"] = torch.zeros(320, 8, 3, 3, dtype=torch.half)
    path = tmp_path / "MimicMotion_1-1.pth"
    torch.save(sd, path)
    net = load_pose_net(path)
    assert sum(p.numel() for p in net.parameters()) == 205_557
    x = torch.rand(1, 2, 3, 64, 48) * 2 - 1
    out = net(x)
    assert out.shape == (2, 320, 8, 6)
    ref = src.half().float()(x)
    assert torch.allclose(out, ref, atol=1e-5)
    assert out.abs().max() > 0


def test_pose_net_rejects_wrong_file(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"pose_net.scale": torch.ones(1)}, path)
    with pytest.raises(Exception, match="missing"):
        load_pose_net(path)
