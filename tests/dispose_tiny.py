"""Tiny DisPose / MimicMotion configs shared by the DisPose tests (and the scratch fixture scripts).

The structure is the SVD-XT layout (4 down blocks, 2 layers each, so 12 skips and the
``[4,4,4,4,3,3,3,2,2,2,1,1]`` residual multipliers) with small widths, so the key names match the
released ``MimicMotion_1-1.pth`` / ``DisPose.pth`` files.
"""

from __future__ import annotations

UNET = {
    "sample_size": 8,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": [
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ],
    "up_block_types": [
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ],
    "block_out_channels": [32, 64, 64, 64],
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": 24,
    "layers_per_block": 2,
    "cross_attention_dim": 32,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [1, 2, 2, 2],
    "num_frames": 25,
}

#: PointAdapter embedding width in the tiny fixtures (DIFT SD1.5 up-block-1 width is 1280 in the release).
POINT_EMBED = 48
