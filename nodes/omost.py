"""Omost nodes: LLM server → chat → canvas → layout image, masks and regional conditioning.

Thin adapters; the work lives in ``pipelines/omost``. The canvas travels as the JSON list the ComfyUI
Omost pack uses, so saved canvases from that pack load here and vice versa.
"""

from __future__ import annotations

import logging

from ..pipelines.core.device import DTYPE_CHOICES
from ..pipelines.core.errors import InputError
from ..pipelines.omost.canvas import load_canvas_json, parse_text, validate_canvas
from ..pipelines.omost.chat import chat_canvas, validate_conversation
from ..pipelines.omost.llm_local import LocalLLM, list_models, resolve_model_dir
from ..pipelines.omost.llm_server import ServerLLM
from ..pipelines.omost.multidiffusion import apply_multi_diffusion
from ..pipelines.omost.patch import METHODS, apply_region_attention, encode_canvas
from ..pipelines.omost.regional import mask_conditioning
from ..pipelines.omost.render import render_layout_image, render_masks

log = logging.getLogger("MotionSuite")

CATEGORY = "MotionSuite/Omost"
CANVAS = "MS_OMOST_CANVAS"
CONVERSATION = "MS_OMOST_CONVERSATION"
LLM = "MS_OMOST_LLM"


def _canvas_in(canvas: object) -> list[dict]:
    try:
        return validate_canvas(canvas)
    except ValueError as exc:
        raise InputError(f"canvas input: {exc} Connect an Omost canvas node.") from None


class OmostLLMServer:
    """Points at an OpenAI-compatible chat server; nothing is loaded into ComfyUI's memory."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "base_url": ("STRING", {"default": "http://127.0.0.1:11434/v1", "tooltip":
                         "OpenAI-compatible API root (Ollama, vLLM, llama.cpp server, TGI, LM Studio); "
                         "/v1 is added when missing."}),
            "model": ("STRING", {"default": "", "tooltip":
                      "Model name on the server, e.g. omost-llama-3-8b; empty = the server's first model."}),
            "api_key_env": ("STRING", {"default": "", "tooltip":
                            "NAME of an environment variable holding the API key (the key itself is never "
                            "stored in the workflow); empty = no key."}),
            "timeout": ("FLOAT", {"default": 180.0, "min": 1.0, "max": 3600.0, "step": 1.0, "tooltip":
                        "Seconds to wait for the server before giving up."}),
        }}

    RETURN_TYPES = (LLM,)
    RETURN_NAMES = ("llm",)
    FUNCTION = "connect"
    CATEGORY = CATEGORY
    DESCRIPTION = "An Omost LLM served over HTTP (OpenAI chat-completions protocol)."

    def connect(self, base_url: str, model: str, api_key_env: str, timeout: float):
        return (ServerLLM(base_url, model=model.strip(), api_key_env=api_key_env.strip(), timeout=timeout),)


class OmostLLMLoader:
    """A local transformers LLM from models/LLM (downloaded there on first use for the Omost models)."""

    @classmethod
    def INPUT_TYPES(cls):
        models = list_models()
        return {"required": {
            "model": (models, {"default": models[0], "tooltip":
                      "Folder name under models/LLM; the lllyasviel/omost-* models download on first use. "
                      "*-4bits/*-8bits need bitsandbytes and a CUDA GPU."}),
            "dtype": (list(DTYPE_CHOICES), {"default": "auto", "tooltip":
                      "Precision of full-precision models (auto = fp16 on GPU, fp32 on CPU)."}),
            "keep_loaded": ("BOOLEAN", {"default": False, "tooltip":
                            "Keep the LLM on the GPU after a chat: faster next chat, less VRAM for images."}),
        }}

    RETURN_TYPES = (LLM,)
    RETURN_NAMES = ("llm",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, model: str, dtype: str, keep_loaded: bool):
        if dtype not in DTYPE_CHOICES:
            raise InputError(f"dtype must be one of {DTYPE_CHOICES}, got {dtype!r}.")
        return (LocalLLM(resolve_model_dir(model), dtype=dtype, keep_loaded=keep_loaded),)


class OmostChat:
    """Asks the LLM for a canvas; chain conversations for multi-round edits."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "llm": (LLM, {"tooltip": "From an Omost LLM node."}),
                "text": ("STRING", {"default": "", "multiline": True, "tooltip":
                         "What to draw, or how to change the previous canvas."}),
                "max_new_tokens": ("INT", {"default": 4096, "min": 128, "max": 8192, "step": 1, "tooltip":
                                   "Reply length limit in tokens."}),
                "top_p": ("FLOAT", {"default": 0.9, "min": 0.0, "max": 1.0, "step": 0.01, "tooltip":
                          "Nucleus sampling mass."}),
                "temperature": ("FLOAT", {"default": 0.6, "min": 0.0, "max": 2.0, "step": 0.01, "tooltip":
                                "Sampling temperature; 0 = greedy. Below 0.5 helps non-Omost models."}),
                "seed": ("INT", {"default": 0, "min": 0, "max": 0xFFFFFFFFFFFFFFFF, "tooltip":
                         "Sampling seed (the server uses its lower 32 bits)."}),
                "retries": ("INT", {"default": 1, "min": 0, "max": 5, "tooltip":
                            "Extra rounds that feed the parse error back when a reply has no valid canvas."}),
                "stream": ("BOOLEAN", {"default": True, "tooltip":
                           "Stream the reply (progress in the console); off = one blocking request."}),
            },
            "optional": {"conversation": (CONVERSATION, {"tooltip": "Previous chat, to edit its canvas."})},
        }

    RETURN_TYPES = (CONVERSATION, CANVAS)
    RETURN_NAMES = ("conversation", "canvas")
    FUNCTION = "chat"
    CATEGORY = CATEGORY

    def chat(self, llm, text: str, max_new_tokens: int, top_p: float, temperature: float, seed: int,
             retries: int, stream: bool, conversation=None):
        if not hasattr(llm, "chat"):
            raise InputError("llm input must come from an Omost LLM node.")
        conv, parsed = chat_canvas(llm, text, validate_conversation(conversation), temperature=temperature,
                                   top_p=top_p, max_new_tokens=max_new_tokens, seed=seed & 0xFFFFFFFF,
                                   retries=retries, stream=stream)
        for warning in parsed.warnings:
            log.warning("Omost: %s", warning)
        return (conv, parsed.entries)


class OmostCanvasFromText:
    """A canvas from pasted JSON (this pack, ComfyUI_omost, the editor) or Omost canvas code (never run)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text": ("STRING", {"default": "", "multiline": True, "tooltip":
                     "Canvas JSON list, or an LLM reply / canvas code (interpreted, never executed)."}),
            "format": (["auto", "json", "code"], {"default": "auto", "tooltip":
                       "auto: JSON when the text starts with '[', otherwise canvas code."}),
        }}

    RETURN_TYPES = (CANVAS,)
    RETURN_NAMES = ("canvas",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, text: str, format: str):  # noqa: A002 - the widget's name
        if format not in ("auto", "json", "code"):
            raise InputError(f"format must be auto, json or code, got {format!r}.")
        if not isinstance(text, str) or not text.strip():
            raise InputError("The canvas text is empty; paste a canvas JSON list or canvas code.")
        if format == "json" or (format == "auto" and text.lstrip().startswith("[")):
            return (load_canvas_json(text),)
        parsed = parse_text(text)
        for warning in parsed.warnings:
            log.warning("Omost: %s", warning)
        return (parsed.entries,)


class OmostRender:
    """Colour layout IMAGE and one MASK per canvas entry (0 = global), at any size."""

    @classmethod
    def INPUT_TYPES(cls):
        size = {"min": 8, "max": 8192, "step": 8}
        return {"required": {
            "canvas": (CANVAS, {"tooltip": "An Omost canvas."}),
            "width": ("INT", {"default": 1024, **size, "tooltip": "Output width in pixels."}),
            "height": ("INT", {"default": 1024, **size, "tooltip": "Output height in pixels."}),
            "blur": ("BOOLEAN", {"default": False, "tooltip":
                     "Omost's heavily blurred initial-latent picture instead of sharp rectangles."}),
        }}

    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("layout", "masks")
    FUNCTION = "render"
    CATEGORY = CATEGORY

    def render(self, canvas, width: int, height: int, blur: bool):
        if width < 8 or height < 8:
            raise InputError(f"width and height must be at least 8, got {width}x{height}.")
        entries = _canvas_in(canvas)
        return (render_layout_image(entries, height, width, blur=blur), render_masks(entries, height, width))


class OmostMaskConditioning:
    """Each canvas entry encoded (greedy 75-token bags) and masked; ComfyUI blends them per pixel."""

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "canvas": (CANVAS, {"tooltip": "An Omost canvas."}),
                "clip": ("CLIP", {"tooltip": "Text encoder of the image model (SD1.x/SD2.x/SDXL)."}),
                "global_strength": ("FLOAT", {"default": 0.2, "min": 0.0, "max": 10.0, "step": 0.01,
                                              "tooltip": "Weight of the global description everywhere."}),
                "region_strength": ("FLOAT", {"default": 0.8, "min": 0.0, "max": 10.0, "step": 0.01,
                                              "tooltip": "Weight of each region inside its mask."}),
                "overlap": (["average", "overlay"], {"default": "average", "tooltip":
                            "average: overlapping regions share pixels; overlay: nearer regions own them."}),
            },
            "optional": {"positive": ("CONDITIONING", {"tooltip": "Extra conditioning kept in front."})},
        }

    RETURN_TYPES = ("CONDITIONING", "MASK")
    RETURN_NAMES = ("positive", "masks")
    FUNCTION = "apply"
    CATEGORY = CATEGORY

    def apply(self, canvas, clip, global_strength: float, region_strength: float, overlap: str,
              positive=None):
        if overlap not in ("average", "overlay"):
            raise InputError(f"overlap must be average or overlay, got {overlap!r}.")
        cond, masks = mask_conditioning(clip, _canvas_in(canvas), global_strength, region_strength, overlap)
        return (list(positive or []) + cond, masks)


class OmostRegionAttention:
    """Region-aware cross-attention patched into a UNet (DenseDiffusion as Omost does it, or couple)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "SD1.x, SD2.x or SDXL UNet model; it is cloned, not changed."}),
            "canvas": (CANVAS, {"tooltip": "An Omost canvas."}),
            "clip": ("CLIP", {"tooltip": "Text encoder of the same checkpoint."}),
            "method": (list(METHODS), {"default": "dense_diffusion", "tooltip":
                       "dense_diffusion: one masked, area-scaled attention over all regions (Omost); "
                       "attention_couple: each region attended separately, mixed by masks."}),
        }}

    RETURN_TYPES = ("MODEL", "CONDITIONING")
    RETURN_NAMES = ("model", "positive")
    FUNCTION = "apply"
    CATEGORY = CATEGORY
    DESCRIPTION = "Use the returned positive as the KSampler positive with the returned model."

    def apply(self, model, canvas, clip, method: str):
        if not hasattr(model, "clone") or not hasattr(model, "set_model_attn2_replace"):
            raise InputError("model input must be a ComfyUI MODEL (from a checkpoint loader).")
        return apply_region_attention(model, clip, _canvas_in(canvas), method)


class OmostMultiDiffusion:
    """One model prediction per canvas entry, blended per latent pixel (MultiDiffusion) on the MODEL."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "model": ("MODEL", {"tooltip": "SD1.x/SD2.x/SDXL model; it is cloned, not changed."}),
            "canvas": (CANVAS, {"tooltip": "An Omost canvas."}),
            "clip": ("CLIP", {"tooltip": "Text encoder of the same checkpoint (SD1.x/SD2.x/SDXL CLIP)."}),
            "global_strength": ("FLOAT", {"default": 0.2, "min": 0.01, "max": 10.0, "step": 0.01,
                                          "tooltip": "Weight of the global prediction everywhere."}),
            "region_strength": ("FLOAT", {"default": 0.8, "min": 0.0, "max": 10.0, "step": 0.01,
                                          "tooltip": "Weight of each region's prediction inside its mask."}),
            "overlap": (["average", "overlay"], {"default": "average", "tooltip":
                        "average: overlapping regions share pixels; overlay: nearer regions own them."}),
        }}

    RETURN_TYPES = ("MODEL", "CONDITIONING")
    RETURN_NAMES = ("model", "positive")
    FUNCTION = "apply"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Use the returned positive as the KSampler positive with the returned model; costs one "
                   "model pass per canvas entry.")

    def apply(self, model, canvas, clip, global_strength: float, region_strength: float, overlap: str):
        if not hasattr(model, "clone") or not hasattr(model, "set_model_unet_function_wrapper"):
            raise InputError("model input must be a ComfyUI MODEL (from a checkpoint loader).")
        if overlap not in ("average", "overlay"):
            raise InputError(f"overlap must be average or overlay, got {overlap!r}.")
        return apply_multi_diffusion(model, clip, _canvas_in(canvas), global_strength, region_strength,
                                     overlap)


class OmostGreedyBagsEncode:
    """All canvas entries as one regionless prompt (greedy 75-token bags, concatenated)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "canvas": (CANVAS, {"tooltip": "An Omost canvas."}),
            "clip": ("CLIP", {"tooltip": "Text encoder of the image model (SD1.x/SD2.x/SDXL)."}),
        }}

    RETURN_TYPES = ("CONDITIONING",)
    RETURN_NAMES = ("positive",)
    FUNCTION = "encode"
    CATEGORY = CATEGORY
    DESCRIPTION = "Omost's text without regions: compare with the regional nodes, or use on any sampler."

    def encode(self, canvas, clip):
        positive, _ = encode_canvas(clip, _canvas_in(canvas))
        return (positive,)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_Omost_LLMLoader": OmostLLMLoader,
    "MotionSuite_Omost_LLMServer": OmostLLMServer,
    "MotionSuite_Omost_Chat": OmostChat,
    "MotionSuite_Omost_CanvasFromText": OmostCanvasFromText,
    "MotionSuite_Omost_Render": OmostRender,
    "MotionSuite_Omost_MaskConditioning": OmostMaskConditioning,
    "MotionSuite_Omost_RegionAttention": OmostRegionAttention,
    "MotionSuite_Omost_GreedyBagsEncode": OmostGreedyBagsEncode,
    "MotionSuite_Omost_MultiDiffusion": OmostMultiDiffusion,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_Omost_LLMLoader": "LLM Loader (Omost)",
    "MotionSuite_Omost_LLMServer": "LLM Server (Omost)",
    "MotionSuite_Omost_Chat": "Chat (Omost)",
    "MotionSuite_Omost_CanvasFromText": "Canvas from Text (Omost)",
    "MotionSuite_Omost_Render": "Render Canvas (Omost)",
    "MotionSuite_Omost_MaskConditioning": "Mask Conditioning (Omost)",
    "MotionSuite_Omost_RegionAttention": "Region Attention (Omost)",
    "MotionSuite_Omost_GreedyBagsEncode": "Greedy Bags Encode (Omost)",
    "MotionSuite_Omost_MultiDiffusion": "Multi-Diffusion (Omost)",
}
