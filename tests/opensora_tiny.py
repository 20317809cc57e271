"""Tiny Open-Sora weights in the released layouts (STDiT3 and VAE folders, a T5 folder) for tests."""

from __future__ import annotations

from pathlib import Path

import torch
from motionsuite.models.opensora import OpenSoraVAE, STDiT3, STDiT3Config, TemporalVAEConfig
from motionsuite.pipelines.opensora import loading
from parity_utils import random_state_dict

T5_DIM = 32
DIT = dict(depth=1, hidden_size=32, num_heads=2, caption_channels=T5_DIM, model_max_length=300)
SPATIAL = dict(
    block_out_channels=[32, 32, 32, 32], layers_per_block=1, latent_channels=4, norm_num_groups=32,
    down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
)  # fmt: skip
TEMPORAL = TemporalVAEConfig(filters=32, num_res_blocks=1)
WORDS = ["a", "cat", "dog", "on", "the", "beach", "runs", ".", "aesthetic", "score:", "6.5.", "motion"]


def write_dit(folder: Path, seed: int = 1) -> Path:
    model = STDiT3(STDiT3Config.from_dict(DIT))
    sd = random_state_dict(model, seed, gain=0.5)
    sd["rope.freqs"] = model.rope.freqs.clone()
    model.load_state_dict(sd)
    return loading.save_stdit3(model, folder)


def write_vae(folder: Path, seed: int = 2) -> Path:
    vae = OpenSoraVAE(SPATIAL, TEMPORAL)
    sd = random_state_dict(vae, seed, gain=0.5)
    sd["scale"], sd["shift"] = vae.scale.clone(), vae.shift.clone()
    vae.load_state_dict(sd)
    return loading.save_vae(vae, folder)


def write_t5(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    vocab = {w: i for i, w in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    config = T5Config(vocab_size=len(vocab), d_model=T5_DIM, d_kv=8, d_ff=64, num_layers=1, num_heads=4,
                      feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1)  # fmt: skip
    torch.manual_seed(3)
    T5EncoderModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_all(root: Path) -> tuple[Path, Path]:
    """models/opensora/{OpenSora-STDiT-v3, OpenSora-VAE-v1.2} and models/text_encoders/t5-v1_1-xxl."""
    write_dit(root / "opensora" / "OpenSora-STDiT-v3")
    write_vae(root / "opensora" / "OpenSora-VAE-v1.2")
    write_t5(root / "text_encoders" / "t5-v1_1-xxl")
    return root / "opensora", root / "text_encoders"
