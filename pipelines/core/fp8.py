"""fp8 weight storage: Linear/Conv weights kept as float8_e4m3fn, upcast one layer at a time.

A model whose weights are the bulk of its memory (the 1.5 B-parameter SVD UNet, its ControlNet)
can keep them in 8 bits: half the memory of fp16, a quarter of fp32. Each converted layer turns its
weight back into the input's dtype inside its own forward, uses it once and drops it, so only one
layer's full-precision copy exists at any time; the arithmetic stays in the compute dtype.

Each weight is stored with a per-output-channel scale (``weight_scale``, float32, not part of the
state dict), chosen so that the channel's largest magnitude maps to the fp8 maximum (448). A plain
cast would push the many small weights of wide layers (|w| < 2^-6) into fp8's subnormal range and
lose most of their precision; with the scale, the relative error per weight is about 2^-4.

Only layers whose class is exactly ``nn.Linear`` or ``nn.Conv1d/2d/3d`` are converted (their
forward is known). The module keeps its key names, so it can still be moved between devices with
``.to(device)``; do not ``.to(dtype)`` it afterwards, and do not save its state dict (the stored
values are scaled).

Why not diffusers' ``apply_layerwise_casting``: it casts each layer to the compute dtype before the
call and back to fp8 after it (two conversions and a weight write per layer and call), and has no
scale; here there is one conversion per call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
_CONVERTIBLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CLASSES: dict[type, type] = {}


def _weight(layer: nn.Module, dtype: torch.dtype) -> torch.Tensor:
    return layer.weight.to(dtype) * layer.weight_scale.to(dtype)


def _linear_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return F.linear(x, _weight(self, x.dtype), self.bias)


def _fp8_conv_forward(self: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return self._conv_forward(x, _weight(self, x.dtype), self.bias)


def _fp8_class(cls: type) -> type:
    """A subclass of ``cls`` whose forward upcasts the fp8 weight (one per layer class)."""
    if cls not in _CLASSES:
        forward = _linear_forward if issubclass(cls, nn.Linear) else _fp8_conv_forward
        _CLASSES[cls] = type(f"Fp8Storage{cls.__name__}", (cls,), {"forward": forward})
    return _CLASSES[cls]


def is_fp8_layer(module: nn.Module) -> bool:
    return type(module) in _CLASSES.values()


@torch.no_grad()
def store_weights_in_fp8(module: nn.Module, compute_dtype: torch.dtype | None = None) -> nn.Module:
    """Convert ``module``'s Linear/Conv weights to scaled fp8 storage in place; returns ``module``.

    ``compute_dtype`` (default: the weights' current dtype) is what :func:`compute_dtype` reports,
    for callers that cast their inputs to "the model's dtype". Biases and other parameters stay.
    """
    found = [p.dtype for p in module.parameters() if p.is_floating_point() and p.dtype != FP8]
    dtype = compute_dtype or (found[0] if found else torch.float32)
    for layer in module.modules():
        if type(layer) not in _CONVERTIBLE:
            continue
        w = layer.weight.detach().float()
        amax = w.abs().flatten(1).amax(dim=1).clamp_min(1e-12)
        scale = (amax / FP8_MAX).view(-1, *([1] * (w.dim() - 1)))
        layer.weight = nn.Parameter((w / scale).to(FP8), requires_grad=False)
        layer.register_buffer("weight_scale", scale, persistent=False)
        layer.__class__ = _fp8_class(type(layer))
    module.fp8_compute_dtype = dtype
    return module


def compute_dtype(module: nn.Module) -> torch.dtype:
    """The dtype to feed ``module``: the fp8 compute dtype if converted, else its parameters' dtype."""
    dtype = getattr(module, "fp8_compute_dtype", None)
    if dtype is not None:
        return dtype
    if hasattr(module, "dtype"):
        return module.dtype
    return next(p.dtype for p in module.parameters() if p.is_floating_point())


def weight_bytes(module: nn.Module) -> int:
    """Bytes held by ``module``'s parameters and buffers (to check the storage saving)."""
    tensors = list(module.parameters()) + list(module.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)
