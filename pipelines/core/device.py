"""Device and dtype choice: ComfyUI's model management when present, else cuda → mps → cpu."""

from __future__ import annotations

import gc

import torch

from .comfy import model_management, throw_if_interrupted

DTYPE_CHOICES = ["auto", "fp32", "fp16", "bf16"]
_NAMED = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def get_torch_device() -> torch.device:
    """The compute device ComfyUI chose (``--cpu`` respected), or the best one torch sees."""
    mm = model_management()
    if mm is not None:
        return mm.get_torch_device()
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def get_offload_device() -> torch.device:
    """Where idle models wait: ComfyUI's offload device (normally the CPU)."""
    mm = model_management()
    if mm is not None:
        return mm.unet_offload_device()
    return torch.device("cpu")


def parse_device(name: str | None) -> torch.device:
    """A user's device string ("auto", "cpu", "cuda", "cuda:1", "mps") as a torch.device."""
    if name in (None, "", "auto"):
        return get_torch_device()
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for but CUDA is not available; use --device cpu")
    return dev


def supports_fp16(device: torch.device) -> bool:
    """fp16 math is sensible on CUDA and MPS; on the CPU it is slow and imprecise."""
    mm = model_management()
    if mm is not None and hasattr(mm, "should_use_fp16"):
        return bool(mm.should_use_fp16(device))
    return device.type in ("cuda", "mps")


def supports_bf16(device: torch.device) -> bool:
    """bf16 needs a CUDA card that has it (Ampere and newer) or a recent CPU/MPS torch."""
    mm = model_management()
    if mm is not None and hasattr(mm, "should_use_bf16"):
        return bool(mm.should_use_bf16(device))
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu"


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """Turn a node's precision choice into a dtype the device can run.

    "auto" picks fp16 where it is supported and fp32 elsewhere; an explicit fp16/bf16 choice on a
    device without it falls back to fp32 rather than producing NaNs or crawling.
    """
    if name == "auto":
        return torch.float16 if supports_fp16(device) and device.type != "cpu" else torch.float32
    if name not in _NAMED:
        raise ValueError(f"unknown precision {name!r}; choose one of {DTYPE_CHOICES}")
    dtype = _NAMED[name]
    if dtype is torch.float16 and not supports_fp16(device) and device.type != "cpu":
        return torch.float32
    if dtype is torch.bfloat16 and not supports_bf16(device):
        return torch.float32
    return dtype


def soft_empty_cache() -> None:
    """Give cached device memory back (ComfyUI's helper when present)."""
    gc.collect()
    mm = model_management()
    if mm is not None:
        mm.soft_empty_cache()
    elif torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(torch, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()


def check_interrupt() -> None:
    """Call between frames/steps: raises when the user pressed Cancel (or Ctrl-C was relayed)."""
    throw_if_interrupted()
