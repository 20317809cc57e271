"""FSRT decoder: renders one RGB value per query ray from the set-latent scene representation.

A query is the encoding of a pixel position, the encodings of the driving keypoints and the
driving expression vector. It passes an MLP, two cross-attention layers that read the latent z of
the source images, and a per-ray MLP that outputs the colour (no output activation; callers clamp).
Queries are independent of each other, so any set of (frame, pixel) rays can be decoded in one
call, in chunks that bound memory. Keys (``allocation_transformer.input_mlp``,
``allocation_transformer.transformer``, ``render_mlp``) match the released ``decoder`` state dict.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import FSRTConfig
from .layers import Transformer, sinusoidal_encoding


class RayAttention(nn.Module):
    """Query MLP + cross-attention transformer (upstream's "allocation transformer")."""

    def __init__(self, cfg: FSRTConfig) -> None:
        super().__init__()
        dim = cfg.query_dim
        self.input_mlp = nn.Sequential(nn.Linear(dim, cfg.query_mlp_hidden), nn.ReLU(),
                                       nn.Linear(cfg.query_mlp_hidden, dim))
        self.transformer = Transformer(dim, cfg.decoder_depth, cfg.heads, cfg.token_dim // cfg.heads,
                                       2 * cfg.token_dim, self_attention=False, kv_dim=cfg.token_dim)

    def forward(self, queries: torch.Tensor, z: torch.Tensor | None = None,
                kvs: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        return self.transformer(self.input_mlp(queries), z=z, kvs=kvs)


class FSRTDecoder(nn.Module):
    """(queries (B, N, query_dim), latent z (B, T, D) or its cached keys/values) -> RGB (B, N, 3)."""

    def __init__(self, cfg: FSRTConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or FSRTConfig()
        self.cfg = cfg
        self.allocation_transformer = RayAttention(cfg)
        layers: list[nn.Module] = [nn.Linear(cfg.query_dim, cfg.render_hidden), nn.ReLU()]
        for _ in range(cfg.render_layers - 1):
            layers += [nn.Linear(cfg.render_hidden, cfg.render_hidden), nn.ReLU()]
        layers.append(nn.Linear(cfg.render_hidden, 3))
        self.render_mlp = nn.Sequential(*layers)

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixel positions (..., 2) -> their encodings (..., pix_encoding_dim), in fp32."""
        return sinusoidal_encoding(pixels.float(), self.cfg.pix_octaves, self.cfg.pix_start_octave)

    def encode_keypoints(self, keypoints: torch.Tensor) -> torch.Tensor:
        """Driving keypoints (B, K, 2) -> their encodings (B, kp_encoding_dim), in fp32."""
        cfg = self.cfg
        return sinusoidal_encoding(keypoints.float().flatten(-2), cfg.kp_octaves, cfg.kp_start_octave)

    @staticmethod
    def queries(kp_encoding: torch.Tensor, pix_encoding: torch.Tensor,
                expression: torch.Tensor) -> torch.Tensor:
        """Concatenate aligned (..., ·) encodings in the order the checkpoints were trained with."""
        return torch.cat([kp_encoding, pix_encoding, expression], dim=-1)

    def latent_keys_values(self, z: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Project z once for every cross-attention layer; pass the result as ``kvs`` to ``forward``."""
        return self.allocation_transformer.transformer.cross_keys_values(z)

    def forward(self, queries: torch.Tensor, z: torch.Tensor | None = None,
                kvs: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        return self.render_mlp(self.allocation_transformer(queries, z=z, kvs=kvs))
