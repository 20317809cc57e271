"""Open-Sora text conditioning from ComfyUI's own T5-XXL CLIP objects.

CLIPLoader with ``t5xxl_fp16.safetensors`` / ``t5xxl_fp8_e4m3fn.safetensors`` (type sd3, pixart, ltxv or
mochi) gives a ``CLIP``; this node turns it into the same CONDITIONING as the Open-Sora text encoder
(features + T5 attention mask), so the 9.5 GB T5 folder is not needed when ComfyUI already has the
single file.
"""

from __future__ import annotations

import torch

from ..pipelines.core.errors import InputError
from ..pipelines.opensora import text
from .opensora import CATEGORY, MAX_TOKENS, _prompt_inputs, _prompts, _text_outputs


class OpenSoraTextEncodeCLIP:
    """The same CONDITIONING as the Open-Sora text encoder, from ComfyUI's own T5-XXL CLIP object
    (CLIPLoader with t5xxl_fp16 / t5xxl_fp8_e4m3fn, type sd3, pixart, ltxv or mochi)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "clip": ("CLIP", {"tooltip": "T5-XXL from ComfyUI's CLIPLoader (t5xxl_fp16/fp8 file)."}),
                **_prompt_inputs(),
                "max_tokens": (
                    list(MAX_TOKENS),
                    {
                        "default": next(iter(MAX_TOKENS)),
                        "tooltip": "Caption length the model was trained with (padding is masked).",
                    },
                ),
            }
        }

    RETURN_TYPES = ("CONDITIONING", "CONDITIONING")
    RETURN_NAMES = ("positive", "negative")
    FUNCTION = "encode"
    CATEGORY = CATEGORY

    def encode(
        self,
        clip,
        prompt,
        negative_prompt="",
        aesthetic_score=6.5,
        motion_score=0.0,
        camera_motion="none",
        clean_caption=False,
        max_tokens="300 (v1.2, PixArt-Σ)",
    ):
        if max_tokens not in MAX_TOKENS:
            raise InputError(f"max_tokens {max_tokens!r} is not one of {list(MAX_TOKENS)}.")
        full, negative = _prompts(
            prompt, negative_prompt, aesthetic_score, motion_score, camera_motion, clean_caption
        )
        prompts = [full] + ([negative] if negative else [])
        encoded = [text.encode_with_clip(clip, p, MAX_TOKENS[max_tokens]) for p in prompts]
        y = torch.cat([e[0] for e in encoded])
        mask = torch.cat([e[1] for e in encoded])
        return _text_outputs(y, mask, prompts)


NODE_CLASS_MAPPINGS = {"MotionSuite_OpenSora_TextEncodeCLIP": OpenSoraTextEncodeCLIP}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_OpenSora_TextEncodeCLIP": "Text Encode with ComfyUI T5 (Open-Sora)"
}
