"""T5-XXL text features for Open-Sora (``DeepFloyd/t5-v1_1-xxl`` through transformers).

Prompts are tokenised to exactly ``max_length`` tokens (300 for v1.2), padded, and the attention
mask is kept: STDiT3 attends only to the real tokens. v1.2 prompts may carry score suffixes the
model was trained with ("aesthetic score: 6.5.", "motion score: 5.0.", "camera motion: pan left.");
each is appended once, and not when the prompt already has it.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.errors import InputError, MissingWeightsError

#: Token ids shared by every T5 SentencePiece vocabulary (DeepFloyd, ComfyUI's t5_tokenizer).
T5_PAD, T5_EOS = 0, 1
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


@torch.no_grad()
def encode_with_clip(clip, prompt: str, max_length: int = MAX_LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """A ComfyUI T5 ``CLIP`` object (``t5xxl_fp16``/``fp8`` via CLIPLoader) → (features, mask).

    Only the CLIP object's public ``tokenize`` and ``encode_from_tokens`` are used (duck typing,
    no ComfyUI import). ComfyUI's T5 encoders mostly run *without* an attention mask and pad to their
    own ``min_length`` (77, 128, 256 depending on the type), so padded outputs would differ from
    upstream's masked encoding. Instead the prompt is encoded **unpadded** (its tokens + EOS, the
    same as a masked encoding for those positions: T5 attention bias is relative), then placed in a
    ``max_length`` buffer. Rows after EOS stay zero and get mask 0; STDiT never attends to them.
    Prompt weighting syntax ``(word:1.2)`` is turned off: upstream feeds the text literally.
    Returns features (1, max_length, D) fp32 on the CPU and mask (1, max_length) long.
    """
    if not (
        callable(getattr(clip, "tokenize", None)) and callable(getattr(clip, "encode_from_tokens", None))
    ):
        raise InputError(
            "clip must be a ComfyUI CLIP object; load t5xxl_fp16.safetensors (or fp8) with the "
            "CLIPLoader node (type sd3, pixart, ltxv or mochi) and connect it."
        )
    try:
        tokens = clip.tokenize(prompt, disable_weights=True)
    except TypeError:  # older ComfyUI: no disable_weights; weights are dropped below anyway
        tokens = clip.tokenize(prompt)
    if not isinstance(tokens, dict) or "t5xxl" not in tokens:
        names = list(tokens) if isinstance(tokens, dict) else type(tokens).__name__
        raise InputError(
            f"this CLIP has no T5-XXL text encoder (it has {names}); load t5xxl_fp16.safetensors "
            "with CLIPLoader (type sd3, pixart, ltxv or mochi)."
        )
    ids: list[int] = []
    for batch in tokens["t5xxl"]:
        for item in batch:
            token = item[0]
            if not isinstance(token, numbers.Integral):
                raise InputError("embeddings (embedding:name) are not supported in Open-Sora prompts.")
            if int(token) in (T5_EOS, T5_PAD):
                break  # end of this chunk's text: EOS, then ComfyUI's padding
            ids.append(int(token))
    ids = ids[: max_length - 1] + [T5_EOS]  # truncation as transformers does it: text, then EOS
    # Other encoders bundled in the CLIP (CLIP-L/G of an SD3/Flux loader) get nothing to encode.
    only_t5 = {name: [] for name in tokens}
    only_t5["t5xxl"] = [[(token, 1.0) for token in ids]]
    cond = clip.encode_from_tokens(only_t5)
    if isinstance(cond, (tuple, list)):
        cond = cond[0]
    if not isinstance(cond, torch.Tensor) or cond.dim() != 3 or cond.shape[1] != len(ids):
        shape = tuple(cond.shape) if isinstance(cond, torch.Tensor) else type(cond).__name__
        raise InputError(
            f"the CLIP returned {shape} for {len(ids)} T5 tokens; load t5xxl alone with CLIPLoader "
            "(type sd3, pixart, ltxv or mochi), not a combined CLIP-L/G + T5 encoder."
        )
    features = torch.zeros(1, max_length, cond.shape[-1])
    features[:, : len(ids)] = cond.float().cpu()
    mask = torch.zeros(1, max_length, dtype=torch.long)
    mask[:, : len(ids)] = 1
    return features, mask
