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

SCHEDULER = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "interpolation_type": "linear",
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "sigma_max": 700.0,
    "sigma_min": 0.002,
    "steps_offset": 1,
    "timestep_spacing": "leading",
    "timestep_type": "continuous",
    "use_karras_sigmas": True,
}


def write_weights(root, seed: int = 0, cmp: bool = True) -> None:
    """Tiny SVD base folder, MimicMotion_1-1.pth, DisPose.pth and a CMP .pth.tar in the released layouts."""
    import json
    from pathlib import Path

    import torch
    from diffusers import AutoencoderKLTemporalDecoder
    from motionsuite.models.dispose.controlnet import DisPoseControlNet
    from motionsuite.models.dispose.pose_net import PoseNet
    from motionsuite.models.dispose.unet import MimicMotionUNet
    from parity_utils import random_state_dict
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    root = Path(root)
    base = root / "stable-video-diffusion-img2vid-xt-1-1"
    (base / "unet").mkdir(parents=True, exist_ok=True)
    (base / "scheduler").mkdir(parents=True, exist_ok=True)
    (base / "unet" / "config.json").write_text(
        json.dumps({"_class_name": "UNetSpatioTemporalConditionModel", **UNET})
    )
    (base / "scheduler" / "scheduler_config.json").write_text(json.dumps(SCHEDULER))
    torch.manual_seed(seed)
    AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4, layers_per_block=1
    ).save_pretrained(base / "vae")
    clip = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=1,
        num_attention_heads=2,
        projection_dim=32,
        image_size=224,
        patch_size=32,
    )
    CLIPVisionModelWithProjection(clip).save_pretrained(base / "image_encoder")
    unet = MimicMotionUNet.from_config(UNET)
    sd = {f"unet.{k}": v.half() for k, v in random_state_dict(unet, seed + 1, gain=0.5).items()}
    sd.update({f"pose_net.{k}": v.half() for k, v in random_state_dict(PoseNet(32), seed + 2).items()})
    torch.save(sd, root / "MimicMotion_1-1.pth")
    cn = DisPoseControlNet.from_unet_config(UNET, POINT_EMBED)
    torch.save(random_state_dict(cn, seed + 3, gain=0.5), root / "DisPose.pth")
    if cmp:
        write_cmp(root / "ckpt_iter_42000.pth.tar")


#: the CMP checkpoint written first in this test session; later copies are hard links to it.
_CMP_FILE: list = []


def write_cmp(path) -> None:
    """A random CMP ``ckpt_iter_42000.pth.tar`` (real ResNet-50 widths, 114 MB) at ``path``.

    The released widths are fixed, so the file is large: it is generated once per test session
    (float32 normal draws, not the float64 ``random_state_dict`` that parity tests need, since no
    test compares these weights to upstream) and hard-linked (else copied) into later folders.
    """
    import os
    import shutil
    from pathlib import Path

    import torch
    from motionsuite.models.dispose.cmp import CMP

    path = Path(path)
    if _CMP_FILE and _CMP_FILE[0].is_file():
        try:
            os.link(_CMP_FILE[0], path)
        except OSError:
            shutil.copyfile(_CMP_FILE[0], path)
        return
    gen = torch.Generator().manual_seed(4)
    net_sd = {}
    for key, ref in CMP().state_dict().items():
        if not torch.is_floating_point(ref):
            val = ref
        elif key.endswith("running_var"):
            val = torch.rand(ref.shape, generator=gen) + 0.5
        elif ref.dim() <= 1:
            val = (key.endswith("weight") * 1.0) + (torch.rand(ref.shape, generator=gen) - 0.5) * 0.2
        else:
            val = torch.randn(ref.shape, generator=gen) * (ref[0].numel() ** -0.5)
        net_sd[f"module.{key}"] = val
    torch.save({"step": 42000, "state_dict": net_sd, "optimizer": {"state": {}}}, path)
    _CMP_FILE[:] = [path]


def person(dx: float = 0.0, h: int = 0, w: int = 0, scale: float = 1.0) -> dict:
    """One POSE_KEYPOINT frame (comfyui_controlnet_aux layout) with a standing person."""
    body = [
        (0.5, 0.15),
        (0.5, 0.25),
        (0.42, 0.25),
        (0.38, 0.4),
        (0.36, 0.55),
        (0.58, 0.25),
        (0.62, 0.4),
        (0.64, 0.55),
        (0.45, 0.55),
        (0.45, 0.72),
        (0.45, 0.9),
        (0.55, 0.55),
        (0.55, 0.72),
        (0.55, 0.9),
        (0.48, 0.13),
        (0.52, 0.13),
        (0.46, 0.14),
        (0.54, 0.14),
    ]
    flat = []
    for x, y in body:
        px, py = (x + dx) * scale, y * scale
        flat += [px * w, py * h, 0.9] if w else [px, py, 0.9]
    frame = {"people": [{"pose_keypoints_2d": flat}]}
    if w:
        frame.update(canvas_width=w, canvas_height=h)
    return frame


def write_sd15(folder) -> None:
    """Tiny SD-1.5 diffusers folder for DIFT: up block 1 outputs ``POINT_EMBED`` channels."""
    import json
    from pathlib import Path

    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    folder = Path(folder)
    torch.manual_seed(3)
    UNet2DConditionModel(
        sample_size=8,
        block_out_channels=(32, 32, POINT_EMBED, POINT_EMBED),
        norm_num_groups=16,
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=8,
    ).save_pretrained(folder / "unet")
    AutoencoderKL(
        block_out_channels=(32, 32, 32, 32),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
    ).save_pretrained(folder / "vae")
    CLIPTextModel(
        CLIPTextConfig(
            vocab_size=64, hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2
        )
    ).save_pretrained(folder / "text_encoder")
    DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012).save_pretrained(
        folder / "scheduler"
    )
    tok = folder / "tokenizer"
    tok.mkdir(parents=True, exist_ok=True)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (tok / "vocab.json").write_text(json.dumps(vocab))
    (tok / "merges.txt").write_text("#version: 0.2\n")
    (tok / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 77}))
