"""T5-XXL text features for Open-Sora (``DeepFloyd/t5-v1_1-xxl`` through transformers).

Prompts are tokenised to exactly ``max_length`` tokens (300 for v1.2), padded, and the attention
mask is kept: STDiT3 attends only to the real tokens. v1.2 prompts may carry score suffixes the
model was trained with ("aesthetic score: 6.5.", "motion score: 5.0.", "camera motion: pan left.");
each is appended once, and not when the prompt already has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.errors import InputError, MissingWeightsError

CAMERA_MOTIONS = ("none", "pan right", "pan left", "tilt up", "tilt down", "zoom in", "zoom out", "static")
MAX_LENGTH = 300


def add_scores(
    prompt: str, aesthetic: float | None = None, motion: float | None = None, camera: str | None = None
) -> str:
    """Upstream's ``append_score_to_prompts`` for one prompt (skips fields already present)."""
    if aesthetic is not None and "aesthetic score:" not in prompt:
        prompt = f"{prompt} aesthetic score: {aesthetic:.1f}."
    if motion is not None and "motion score:" not in prompt:
        prompt = f"{prompt} motion score: {float(motion):.1f}."
    if camera not in (None, "", "none"):
        if camera not in CAMERA_MOTIONS:
            raise InputError(f"camera motion {camera!r} is not one of {CAMERA_MOTIONS}.")
        if "camera motion:" not in prompt:
            prompt = f"{prompt} camera motion: {camera}."
    return prompt


@dataclass
class T5:
    """Tokenizer + ``T5EncoderModel`` kept on the offload device between uses."""

    tokenizer: object
    encoder: torch.nn.Module
    max_length: int = MAX_LENGTH


def load_t5(folder: str | Path, dtype: torch.dtype = torch.bfloat16) -> T5:
    """Load a diffusers/HF T5 folder (``config.json``, weights, ``spiece.model``/tokenizer files)."""
    from transformers import AutoTokenizer, T5EncoderModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise MissingWeightsError(
            f"T5 folder {folder} has no config.json. Download https://huggingface.co/DeepFloyd/t5-v1_1-xxl "
            "(config, weights, spiece.model, tokenizer files) into models/text_encoders/t5-v1_1-xxl."
        )
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    encoder = T5EncoderModel.from_pretrained(str(folder), dtype=dtype).eval().requires_grad_(False)
    return T5(tokenizer, encoder)


@torch.no_grad()
def encode(
    t5: T5, prompts: list[str], device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts → (features (B, max_length, d_model) fp32 on the CPU, mask (B, max_length) long)."""
    tokens = t5.tokenizer(
        prompts,
        max_length=t5.max_length,
        padding="max_length",
        truncation=True,
        add_special_tokens=True,
        return_tensors="pt",
    )
    device = device or next(t5.encoder.parameters()).device
    hidden = t5.encoder(
        input_ids=tokens.input_ids.to(device), attention_mask=tokens.attention_mask.to(device)
    ).last_hidden_state
    return hidden.float().cpu(), tokens.attention_mask.long().cpu()
