"""Deterministic random weights for parity tests.

The same function runs in the scratch venv beside the upstream code and here beside the pack's
model: both models share the released state-dict layout (same keys and shapes), so filling the
tensors from one seed in sorted-key order gives bit-identical weights in both, and only the seed
needs to be stored in a fixture. Zero-initialised layers in upstream (e.g. FOMM's jacobian head,
ControlNet zero convs) get random values too, so every path is exercised.

This file is self-contained (torch only) so it can be copied into a scratch venv as is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch


def random_state_dict(
    reference: Mapping[str, torch.Tensor] | torch.nn.Module,
    seed: int,
    gain: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Return a state dict with the keys/shapes/dtypes of ``reference`` and seeded random values.

    Weights with a fan-in get N(0, gain/fan_in); 1-D tensors (biases, norm affine) get values near
    their usual init (``*weight`` ≈ 1 ± 0.1, others ± 0.1); BatchNorm ``running_var`` is drawn in
    [0.5, 1.5] so eval-mode normalisation stays well conditioned. Integer tensors are copied.
    """
    sd = reference.state_dict() if isinstance(reference, torch.nn.Module) else reference
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key in sorted(sd):
        ref = sd[key]
        if not torch.is_floating_point(ref):
            out[key] = ref.clone()
            continue
        shape = tuple(ref.shape)
        if key.endswith("running_var"):
            val = torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5
        elif key.endswith("running_mean"):
            val = (torch.rand(shape, generator=gen, dtype=torch.float64) - 0.5) * 0.2
        elif len(shape) <= 1:
            noise = (torch.rand(shape, generator=gen, dtype=torch.float64) - 0.5) * 0.2
            base = 1.0 if key.endswith("weight") or key.endswith("gamma") else 0.0
            val = base + noise
        else:
            fan_in = math.prod(shape[1:])
            val = torch.randn(shape, generator=gen, dtype=torch.float64) * math.sqrt(gain / fan_in)
        out[key] = val.to(ref.dtype)
    return out


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| in float64, with a shape check that says which shapes differ."""
    if tuple(a.shape) != tuple(b.shape):
        raise AssertionError(f"shape mismatch: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a.double() - b.double()).abs().max().item()


def randomize_for_eval(module: torch.nn.Module, seed: int, spread: float = 0.6) -> torch.nn.Module:
    """Uniform random floating-point state in [-spread/2, spread/2) (running variances in [0.5, 1.5)),
    so folded norms are non-trivial; returns ``module`` in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                r = torch.rand(t.shape, generator=g)
                t.copy_(r + 0.5 if name.endswith("running_var") else (r - 0.5) * spread)
    return module.eval()
