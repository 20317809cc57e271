"""Loading DisPose / MimicMotion networks from the released checkpoint files."""

from __future__ import annotations

import os

from ...models.dispose.pose_net import PoseNet
from ..core import weights


def load_pose_net(path: str | os.PathLike) -> PoseNet:
    """Build PoseNet from MimicMotion_1-1.pth (keys under ``pose_net.``) or a bare PoseNet file."""
    sd = weights.load_state_dict(path)
    if any(k.startswith("pose_net.") for k in sd):
        sd = weights.select(sd, "pose_net.")
    net = PoseNet()
    weights.load_into(net, {k: v.float() for k, v in sd.items()}, "MimicMotion PoseNet", strict=True)
    return net.eval()
