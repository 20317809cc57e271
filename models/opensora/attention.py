"""Attention for the Open-Sora transformers: torch SDPA, or flash-attn / xformers when they can help.

Upstream needs flash-attn and xformers. Here they are optional accelerators: one is used only when it
is installed, the tensors are on CUDA and in fp16/bf16 (the only case their kernels cover);
everything else, CPU and fp32 included, runs ``torch.nn.functional.scaled_dot_product_attention``,
which on CUDA already picks its own flash / memory-efficient kernels. The environment variable
``MOTIONSUITE_ATTENTION`` (``auto`` | ``sdpa`` | ``flash_attn`` | ``xformers``) overrides the choice
where the chosen kernel can run.

Shapes: q (B,H,N,D), k/v (B,H,M,D), optional ``kv_mask`` (B,M) bool (True = a key to attend to, e.g.
the real caption tokens). Masked cross-attention goes to the variable-length kernels with the valid
keys of each sample packed together, as upstream's xformers ``BlockDiagonalMask`` does.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import torch
import torch.nn.functional as F

BACKENDS = ("sdpa", "flash_attn", "xformers")
_HALF = (torch.float16, torch.bfloat16)
#: Imported accelerator modules (None = not installed); filled lazily, tests may inject fakes.
modules: dict[str, ModuleType | None] = {}


def accelerator(name: str) -> ModuleType | None:
    """The installed ``flash_attn`` / ``xformers.ops`` module, or None (import errors included)."""
    if name not in modules:
        target = {"flash_attn": "flash_attn", "xformers": "xformers.ops"}[name]
        try:
            found = importlib.util.find_spec(target.split(".")[0]) is not None
            modules[name] = importlib.import_module(target) if found else None
        except Exception:  # noqa: BLE001 - a broken CUDA build must fall back, not crash the model
            modules[name] = None
    return modules[name]


def choose_backend(device_type: str, dtype: torch.dtype, head_dim: int, preference: str | None = None) -> str:
    """Pick the kernel for tensors of this device/dtype/head size (see the module docstring)."""
    preference = (preference or os.environ.get("MOTIONSUITE_ATTENTION") or "auto").lower()
    if preference not in ("auto", *BACKENDS):
        raise ValueError(f"MOTIONSUITE_ATTENTION={preference!r}: use auto, sdpa, flash_attn or xformers.")
    if preference == "sdpa" or device_type != "cuda" or dtype not in _HALF:
        return "sdpa"
    order = ("flash_attn", "xformers") if preference == "auto" else (preference,)
    for name in order:
        if name == "flash_attn" and head_dim > 256:
            continue
        if accelerator(name) is not None:
            return name
    return "sdpa"


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    kv_mask: torch.Tensor | None = None,
    backend: str | None = None,
) -> torch.Tensor:
    """softmax(q·kᵀ/√D)·v over the allowed keys; returns (B,H,N,D)."""
    backend = backend or choose_backend(q.device.type, q.dtype, q.shape[-1])
    if backend == "sdpa":
        mask = None if kv_mask is None else kv_mask[:, None, None, :].to(q.device)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    b, h, n, d = q.shape
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, L, H, D): the layout both libraries use
    if backend == "flash_attn":
        fa = accelerator("flash_attn")
        if kv_mask is None:
            return fa.flash_attn_func(q, k, v).transpose(1, 2)
        keys, values, lengths = _pack(k, v, kv_mask)
        cu_q = torch.arange(0, (b + 1) * n, n, dtype=torch.int32, device=q.device)
        cu_k = F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)
        out = fa.flash_attn_varlen_func(
            q.reshape(b * n, h, d), keys, values, cu_q, cu_k, n, int(lengths.max())
        )
        return out.view(b, n, h, d).transpose(1, 2)
    if backend == "xformers":
        xops = accelerator("xformers")
        if kv_mask is None:
            return xops.memory_efficient_attention(q, k, v).transpose(1, 2)
        keys, values, lengths = _pack(k, v, kv_mask)
        bias = xops.fmha.BlockDiagonalMask.from_seqlens([n] * b, lengths.tolist())
        out = xops.memory_efficient_attention(
            q.reshape(1, b * n, h, d), keys[None], values[None], attn_bias=bias
        )
        return out.view(b, n, h, d).transpose(1, 2)
    raise ValueError(f"unknown attention backend {backend!r}; one of {BACKENDS}")


def _pack(k: torch.Tensor, v: torch.Tensor, kv_mask: torch.Tensor):
    """Valid keys/values of all samples back to back (ΣM, H, D) and their counts per sample."""
    kv_mask = kv_mask.to(k.device).bool()
    return k[kv_mask], v[kv_mask], kv_mask.sum(dim=1)
