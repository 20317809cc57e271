"""Multi-diffusion for Omost canvases: one model prediction per canvas entry, blended per latent pixel.

MultiDiffusion (Bar-Tal et al. 2023) denoises the same latent under several prompts and averages the
predictions with per-pixel weights. Here every canvas entry (global first, then regions far→near) is
one prompt, its weight map is the global strength everywhere or the region strength times the entry's
mask (overlap handled as in Mask Conditioning), and for the conditional batch rows::

    eps(p) = sum_i w_i(p) * eps_i(p) / sum_i w_i(p)

Unlike ComfyUI's mask conditioning (which blends the same way inside the sampler) this lives on the
MODEL as a ``model_function_wrapper`` and takes the single concatenated positive that the attention
backends use, so every region keeps the global description in its prefixes and the negative stays one
ordinary pass. A wrapper already on the model is called inside ours, so the two compose.

ComfyUI calls the wrapper as ``wrapper(apply_model, {"input", "timestep", "c", "cond_or_uncond"})``
where ``c["c_crossattn"]`` is the batch's text context (ComfyUI may have repeated a shorter context to a
common length) and ``cond_or_uncond`` lists 0 (positive) / 1 (negative) per equal batch chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from .patch import encode_canvas
from .regional import region_weights


def _rows(value: object, index: torch.Tensor, batch: int) -> object:
    """``value`` restricted to batch rows ``index`` (tensors with the batch first; dicts/lists recursed)."""
    if isinstance(value, torch.Tensor):
        return value[index] if value.ndim and value.shape[0] == batch else value
    if isinstance(value, dict):
        return {k: _rows(v, index, batch) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_rows(v, index, batch) for v in value)
    return value


class MultiDiffusionWrapper:
    """``model_function_wrapper`` blending one prediction per canvas entry on the positive rows."""

    def __init__(self, weights: torch.Tensor, token_counts: list[int], previous: Callable | None = None):
        self.weights = weights.float()  # (N, 90, 90), strengths already applied
        self.token_counts = list(token_counts)
        self.previous = previous

    def _call(self, apply_model: Callable, x, t, c: dict, cond_or_uncond: list[int]) -> torch.Tensor:
        c = dict(c)
        if isinstance(c.get("transformer_options"), dict):
            c["transformer_options"] = {**c["transformer_options"], "cond_or_uncond": list(cond_or_uncond)}
        if self.previous is not None:
            return self.previous(apply_model, {"input": x, "timestep": t, "c": c,
                                               "cond_or_uncond": list(cond_or_uncond)})
        return apply_model(x, t, **c)

    def __call__(self, apply_model: Callable, args: dict) -> torch.Tensor:
        x, t, c, cou = args["input"], args["timestep"], args["c"], list(args["cond_or_uncond"])
        if 0 not in cou:
            return self._call(apply_model, x, t, c, cou)
        if x.ndim != 4:
            raise RuntimeError(f"Omost multi-diffusion needs (B, C, H, W) latents, got {tuple(x.shape)}.")
        batch, chunk = x.shape[0], x.shape[0] // len(cou)
        positive = torch.tensor([u == 0 for u in cou]).repeat_interleave(chunk).to(x.device)
        out = torch.empty_like(x)
        if not positive.all():
            neg = ~positive
            out[neg] = self._call(apply_model, x[neg], t[neg], _rows(c, neg, batch), [u for u in cou if u])
        pos_c = _rows(c, positive, batch)
        context = pos_c["c_crossattn"]
        total = sum(self.token_counts)
        if context.shape[1] % total:
            raise RuntimeError(
                f"Omost multi-diffusion expected {total} context tokens (its own conditioning) but got "
                f"{context.shape[1]}; use the positive output of the Omost multi-diffusion node, unmixed."
            )
        n_pos = [u for u in cou if u == 0]
        weights = F.interpolate(self.weights[None].to(x.device), size=x.shape[-2:], mode="nearest-exact")[0]
        blended = torch.zeros_like(x[positive])
        norm = torch.zeros_like(weights[0])
        start = 0
        for weight, count in zip(weights, self.token_counts):
            entry_c = {**pos_c, "c_crossattn": context[:, start:start + count]}
            start += count
            if weight.max() <= 0:
                continue  # region hidden behind nearer ones (overlay) or zero strength: skip its pass
            eps = self._call(apply_model, x[positive], t[positive], entry_c, n_pos)
            blended += eps * weight.to(eps.dtype)
            norm += weight
        out[positive] = blended / norm.clamp_min(1e-8).to(blended.dtype)
        return out


def blend_weights(entries: list[dict], global_strength: float, region_strength: float,
                  overlap: str) -> torch.Tensor:
    """(N, 90, 90): global strength everywhere for entry 0, region strength times the region masks."""
    weights = region_weights(entries, overlap)
    weights[0] *= global_strength
    weights[1:] *= region_strength
    return weights


def apply_multi_diffusion(model, clip, entries: list[dict], global_strength: float = 0.2,
                          region_strength: float = 0.8, overlap: str = "average"):
    """Clone ``model`` with the multi-diffusion wrapper; returns (model, positive to sample with)."""
    if global_strength <= 0:
        raise InputError("global_strength must be above 0: it is the only prediction where no region lies.")
    if region_strength < 0:
        raise InputError(f"region_strength must be 0 or more, got {region_strength}.")
    positive, counts = encode_canvas(clip, entries)
    weights = blend_weights(entries, global_strength, region_strength, overlap)
    work = model.clone()
    previous = work.model_options.get("model_function_wrapper")
    work.set_model_unet_function_wrapper(MultiDiffusionWrapper(weights, counts, previous))
    return work, positive
