"""FSRT encoder: source images -> set-latent scene representation (OSRT-style "improved" SRT encoder).

Every source pixel is described by its RGB value, the sinusoidal encoding of its position, the
encoding of the source keypoints and the source expression vector (broadcast over the image). A
conv stem reduces the image 8x (each block: conv s1 + ReLU, conv s2 + ReLU, bias-free), a 1x1 conv
makes one token per patch, and a self-attention transformer mixes the tokens of all source images.
Keys (``conv_blocks.<i>.layers.{0,2}``, ``per_patch_linear``, ``transformer.layers``) match the
released ``encoder`` state dict.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import FSRTConfig
from .layers import Transformer, sinusoidal_encoding


class SRTConvBlock(nn.Module):
    """conv3x3 (stride 1) -> ReLU -> conv3x3 (stride 2) -> ReLU, no biases."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(in_dim, hidden_dim, 3, stride=1, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(hidden_dim, out_dim, 3, stride=2, padding=1, bias=False), nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FSRTEncoder(nn.Module):
    """(images (S,3,H,W), keypoints (S,K,2), pixels (H,W,2), expression (S,E)) -> z (1, S*H*W/64, D)."""

    def __init__(self, cfg: FSRTConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or FSRTConfig()
        self.cfg = cfg
        in_dim = 3 + cfg.pix_encoding_dim + cfg.kp_encoding_dim + cfg.expression_size
        hidden = cfg.conv_hidden
        blocks = [SRTConvBlock(in_dim, hidden, 2 * hidden)]
        width = 2 * hidden
        for _ in range(1, cfg.num_conv_blocks):
            blocks.append(SRTConvBlock(width, width, 2 * width))
            width *= 2
        self.conv_blocks = nn.Sequential(*blocks)
        self.per_patch_linear = nn.Conv2d(width, cfg.token_dim, kernel_size=1)
        self.transformer = Transformer(cfg.token_dim, cfg.encoder_depth, cfg.heads,
                                       cfg.token_dim // cfg.heads, cfg.encoder_mlp_dim)

    def pixel_features(self, images: torch.Tensor, keypoints: torch.Tensor, pixels: torch.Tensor,
                       expression: torch.Tensor) -> torch.Tensor:
        """Per-pixel input (S, 3 + kp enc + pix enc + E, H, W); the order follows the checkpoints.

        The encodings are computed in fp32 (the highest pixel octave is 2^14 pi, far beyond fp16's
        precision) and then cast to the images' dtype.
        """
        c = self.cfg
        s, _, h, w = images.shape
        kp_enc = sinusoidal_encoding(keypoints.float().flatten(1), c.kp_octaves, c.kp_start_octave)
        pix_enc = sinusoidal_encoding(pixels.float(), c.pix_octaves, c.pix_start_octave).permute(2, 0, 1)
        per_image = torch.cat([kp_enc, expression.float()], dim=1)[:, :, None, None].expand(-1, -1, h, w)
        features = torch.cat([images.float(), per_image[:, : kp_enc.shape[1]], pix_enc.expand(s, -1, -1, -1),
                              per_image[:, kp_enc.shape[1]:]], dim=1)
        return features.to(images.dtype)

    def forward(self, images: torch.Tensor, keypoints: torch.Tensor, pixels: torch.Tensor,
                expression: torch.Tensor) -> torch.Tensor:
        x = self.conv_blocks(self.pixel_features(images, keypoints, pixels, expression))
        tokens = self.per_patch_linear(x).flatten(2).transpose(1, 2)  # (S, patches, D)
        return self.transformer(tokens.reshape(1, -1, tokens.shape[-1]))

