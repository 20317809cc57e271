"""Install Omost's region attention into a UNet model patcher (duck-typed, no ComfyUI import).

The conditioning is every canvas entry's greedy-bag encoding concatenated along the token axis (the
global entry first, as DenseDiffusion does); the patch knows how many tokens each entry owns and its
mask, and replaces every cross-attention (``attn2``) of the UNet:

- ``dense_diffusion``: Omost's masked, area-scaled attention over all tokens at once;
- ``attention_couple``: each entry's tokens attended separately, mixed by normalised masks.

Unconditional (negative) batch rows get ordinary attention. ComfyUI calls a replacement as
``patch(q, k, v, extra_options)`` with projected q/k/v and ``extra_options`` holding ``n_heads``,
``original_shape`` (the latent's shape) and ``cond_or_uncond``.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from ..core.errors import InputError
from .attention import _heads, _merge, attention_couple, dense_diffusion_attention
from .regional import encode_greedy_bags
from .render import render_masks

METHODS = ("dense_diffusion", "attention_couple")
# ComfyUI UNet module names: input_blocks.<n>.<i>.transformer_blocks.<t>,
# middle_block.<i>.transformer_blocks.<t>, output_blocks.<n>.<i>.transformer_blocks.<t>
_BLOCK = re.compile(
    r"(?:^|\.)(?:(input|output)_blocks\.(\d+)|(middle)_block)\.\d+\.transformer_blocks\.(\d+)$"
)


def cross_attention_blocks(unet: torch.nn.Module) -> list[tuple[str, int, int]]:
    """ComfyUI attn2 patch keys (block name, block number, transformer index) of a UNet's transformers."""
    keys = []
    for name, module in unet.named_modules():
        match = _BLOCK.search(name)
        if match and hasattr(module, "attn2"):
            if match.group(3):
                keys.append(("middle", 0, int(match.group(4))))
            else:
                keys.append((match.group(1), int(match.group(2)), int(match.group(4))))
    return keys


class RegionAttentionPatch:
    """Callable attn2 replacement; holds the entries' masks (float32, 90x90) and token counts."""

    def __init__(self, masks: torch.Tensor, token_counts: list[int], method: str) -> None:
        if method not in METHODS:
            raise InputError(f"method must be one of {METHODS}, got {method!r}.")
        self.masks = masks.float()  # kept float32: model dtypes such as fp8 cannot be interpolated
        self.token_counts = list(token_counts)
        self.method = method

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                 extra_options: dict) -> torch.Tensor:
        heads = extra_options["n_heads"]
        latent_hw = tuple(extra_options["original_shape"][-2:])
        cond_or_uncond = extra_options.get("cond_or_uncond")
        if cond_or_uncond and 0 not in cond_or_uncond:  # a negative-only batch: ordinary attention
            plain = F.scaled_dot_product_attention(_heads(q, heads), _heads(k, heads), _heads(v, heads))
            return _merge(plain)
        total = sum(self.token_counts)
        if k.shape[1] != total:
            if k.shape[1] % total:
                raise RuntimeError(
                    f"Omost region attention expected {total} context tokens (its own conditioning) but got "
                    f"{k.shape[1]}; use the positive output of the Omost attention node, unmixed."
                )
            k, v = k[:, :total], v[:, :total]  # ComfyUI repeated the context to a common length
        masks = self.masks.to(q.device)
        if self.method == "dense_diffusion":
            return dense_diffusion_attention(q, k, v, heads, masks, self.token_counts, latent_hw,
                                             cond_or_uncond)
        splits = list(zip(k.split(self.token_counts, dim=1), v.split(self.token_counts, dim=1)))
        out = attention_couple(q, splits, heads, masks, latent_hw, cond_or_uncond)
        if cond_or_uncond and 1 in cond_or_uncond:
            chunk = q.shape[0] // len(cond_or_uncond)
            rows = torch.tensor([c == 1 for c in cond_or_uncond]).repeat_interleave(chunk)
            plain = F.scaled_dot_product_attention(_heads(q[rows], heads), _heads(k[rows], heads),
                                                   _heads(v[rows], heads))
            out[rows] = _merge(plain)
        return out


def encode_canvas(clip, entries: list[dict]) -> tuple[list, list[int]]:
    """One CONDITIONING with all entries' bags concatenated; pooled vector from the global entry."""
    conds, pooled = [], None
    for entry in entries:
        cond, pool = encode_greedy_bags(clip, entry["prefixes"], entry["suffixes"])
        conds.append(cond)
        pooled = pool if pooled is None else pooled
    return [[torch.cat(conds, dim=1), {"pooled_output": pooled}]], [c.shape[1] for c in conds]


def apply_region_attention(model, clip, entries: list[dict], method: str = "dense_diffusion"):
    """Clone ``model`` and install the patch on every UNet cross-attention; returns (model, positive)."""
    unet = getattr(getattr(model, "model", None), "diffusion_model", None)
    blocks = cross_attention_blocks(unet) if isinstance(unet, torch.nn.Module) else []
    if not blocks:
        raise InputError("Omost region attention needs a UNet model (SD1.x, SD2.x, SDXL); this model has no "
                         "UNet cross-attention blocks. For DiT models use Mask Conditioning (Omost).")
    existing = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
    clash = [key for key in blocks if key in existing]
    if clash:
        raise InputError(
            f"Another node already replaced cross-attention on {len(clash)} blocks (e.g. IPAdapter or an "
            "attention couple); region attention cannot compose with it. Apply Omost on the unpatched model, "
            "or use Mask Conditioning (Omost), which composes with attention patches."
        )
    positive, counts = encode_canvas(clip, entries)
    patch = RegionAttentionPatch(render_masks(entries), counts, method)
    work = model.clone()
    for block, number, index in blocks:
        work.set_model_attn2_replace(patch, block, number, index)
    return work, positive
