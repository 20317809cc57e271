"""Hyper-parameters of the released FSRT models (upstream ``runs/vox256*/vox256*.yaml`` + class defaults).

vox256 and vox256_2Source share every width; they differ only in how many source images they were
trained with (1 vs 2). Tests shrink the widths to build tiny models with the same key layout.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FSRTConfig:
    """Widths of the four FSRT networks; defaults are the released vox256 models."""

    num_kp: int = 10
    expression_size: int = 256
    # positional encodings (pixel position: 2 coords, keypoints: 2 * num_kp coords)
    pix_octaves: int = 16
    pix_start_octave: int = -1
    kp_octaves: int = 4
    kp_start_octave: int = -1
    # encoder: conv stem (each block halves the resolution) + self-attention transformer
    conv_hidden: int = 96
    num_conv_blocks: int = 3
    token_dim: int = 768
    encoder_depth: int = 5
    encoder_mlp_dim: int = 1536
    heads: int = 12
    # decoder: query MLP + cross-attention transformer + per-ray render MLP
    query_mlp_hidden: int = 720
    decoder_depth: int = 2
    render_hidden: int = 1536
    render_layers: int = 4
    # expression encoder: conv features per keypoint and the MLP widths
    expression_per_kp: int = 32
    expression_mlp: tuple[int, ...] = (640, 1280, 640)
    # keypoint detector (FOMM's, without the jacobian head)
    kp_block_expansion: int = 32
    kp_max_features: int = 1024
    kp_num_blocks: int = 5
    kp_scale_factor: float = 0.25
    # square resolution the models were trained at
    image_size: int = 256

    @property
    def kp_encoding_dim(self) -> int:
        return 2 * 2 * self.num_kp * self.kp_octaves

    @property
    def pix_encoding_dim(self) -> int:
        return 2 * 2 * self.pix_octaves

    @property
    def query_dim(self) -> int:
        """Width of one decoder query: keypoint + pixel encodings + expression vector."""
        return self.kp_encoding_dim + self.pix_encoding_dim + self.expression_size


def build_networks(cfg: FSRTConfig) -> dict:
    """The four networks, keyed as in the released files (``kp_detector.pt`` + ``vox256*.pt`` entries)."""
    from .decoder import FSRTDecoder
    from .encoder import FSRTEncoder
    from .expression_encoder import ExpressionEncoder
    from .keypoint_detector import KPDetector

    kp = KPDetector(cfg.kp_block_expansion, cfg.num_kp, 3, cfg.kp_max_features, cfg.kp_num_blocks,
                    scale_factor=cfg.kp_scale_factor)
    return {
        "kp_detector": kp,
        "expression_encoder": ExpressionEncoder(kp.predictor.out_filters, cfg.num_kp, cfg.expression_per_kp,
                                                cfg.expression_mlp, cfg.expression_size),
        "encoder": FSRTEncoder(cfg),
        "decoder": FSRTDecoder(cfg),
    }
