"""MimicMotion PoseNet: encodes drawn pose images into a 320-channel latent added after conv_in.

Key layout matches the ``pose_net.`` entries of MimicMotion_1-1.pth: ``conv_layers.{0..14}``,
``final_proj`` and the learned output ``scale``.
"""

from __future__ import annotations

import torch
from torch import nn


class PoseNet(nn.Module):
    """Eight convolutions (three stride-2 ones, so /8 resolution) with SiLU, then a 1x1 projection.

    The projection is zero-initialised upstream so training starts from the plain SVD UNet; the
    output is multiplied by a learned scalar (2.0 at init).
    """

    def __init__(self, noise_latent_channels: int = 320) -> None:
        super().__init__()
        # (in, out, kernel, stride): the stride-2 k4 convs halve the size three times.
        spec = [
            (3, 3, 3, 1),
            (3, 16, 4, 2),
            (16, 16, 3, 1),
            (16, 32, 4, 2),
            (32, 32, 3, 1),
            (32, 64, 4, 2),
            (64, 64, 3, 1),
            (64, 128, 3, 1),
        ]
        layers: list[nn.Module] = []
        for cin, cout, k, s in spec:
            layers += [nn.Conv2d(cin, cout, k, stride=s, padding=1), nn.SiLU()]
        self.conv_layers = nn.Sequential(*layers)
        self.final_proj = nn.Conv2d(128, noise_latent_channels, kernel_size=1)
        self.scale = nn.Parameter(torch.ones(1) * 2)
        for m in self.conv_layers:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.final_proj.weight)
        nn.init.zeros_(self.final_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) or (B,F,3,H,W) pose images in [-1,1] -> (N,320,H/8,W/8), frames flattened."""
        if x.ndim == 5:
            x = x.flatten(0, 1)
        return self.final_proj(self.conv_layers(x)) * self.scale
