"""Canvas entries → text conditioning: greedy bags of sub-prompts, and masked (ComfyUI-style) regions.

CLIP reads at most 75 tokens at a time. Omost keeps each entry's prefixes (global → local description)
in every 77-token chunk and packs the detailed sub-prompts greedily into the room left, so no
sub-prompt is cut in half and every chunk knows what it describes. The chunks are encoded separately
and concatenated along the token axis; the pooled vector comes from the first chunk.

Works with any text-encoder object that offers ComfyUI's ``tokenize(text)`` →
``{key: [[(token, weight), ...], ...]}`` and ``encode_from_tokens(tokens, return_pooled=True)``, for the
CLIP-tokenised keys ``l`` (SD1.x), ``h`` (SD2.x) and ``l`` + ``g`` (SDXL).
"""

from __future__ import annotations

import torch

from ..core.errors import InputError
from .canvas import CANVAS_SIZE
from .render import render_masks

BOS, EOS = 49406, 49407
CHUNK = 75
CLIP_KEYS = ("l", "g", "h")


def _clip_keys(clip) -> tuple[list[str], dict[str, int]]:
    """Token streams the encoder uses and each one's padding token (read from an empty prompt)."""
    probe = clip.tokenize("")
    keys = [k for k in probe if k in CLIP_KEYS]
    unknown = [k for k in probe if k not in CLIP_KEYS]
    if not keys or unknown:
        raise InputError(
            f"This text encoder uses token streams {sorted(probe)}; Omost's bag encoding supports CLIP "
            "encoders only (SD1.x 'l', SD2.x 'h', SDXL 'l'+'g'). For T5/DiT models use plain prompts."
        )
    pads = {}
    for k in keys:
        first = [t[0] for t in probe[k][0]]
        pads[k] = first[2] if len(first) > 2 else EOS
    return keys, pads


def _ids(clip, text: str, key: str) -> list[int]:
    """Token ids of ``text`` in stream ``key``, first chunk only, without BOS and from EOS on."""
    chunk = [t[0] for t in clip.tokenize(text)[key][0]]
    if chunk and chunk[0] == BOS:
        chunk = chunk[1:]
    return chunk[: chunk.index(EOS)] if EOS in chunk else chunk[:CHUNK]


def greedy_partition(lengths: list[int], max_sum: int) -> list[list[int]]:
    """Indices grouped in order: an item joins the current bag while the bag's sum stays ≤ max_sum."""
    bags: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i, n in enumerate(lengths):
        if current and total + n > max_sum:
            bags.append(current)
            current, total = [], 0
        current.append(i)
        total += n
    if current:
        bags.append(current)
    return bags


def encode_greedy_bags(clip, prefixes: list[str], suffixes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(cond (1, 77 * bags, D), pooled) for one canvas entry."""
    keys, pads = _clip_keys(clip)
    main = keys[0]
    prefix = {k: [t for p in prefixes for t in _ids(clip, p, k)] for k in keys}
    suffix = {k: [_ids(clip, s, k) for s in suffixes] for k in keys}
    room = max(1, CHUNK - len(prefix[main]))
    bags = greedy_partition([len(s) for s in suffix[main]], room) or [[]]
    conds, pooled = [], None
    for bag in bags:
        tokens = {}
        for k in keys:
            body = (prefix[k] + [t for i in bag for t in suffix[k][i]])[:CHUNK]
            ids = ([BOS] + body + [EOS] + [pads[k]] * CHUNK)[: CHUNK + 2]
            tokens[k] = [[(t, 1.0) for t in ids]]
        cond, pool = clip.encode_from_tokens(tokens, return_pooled=True)
        conds.append(cond)
        pooled = pool if pooled is None else pooled
    return torch.cat(conds, dim=1), pooled


def region_weights(entries: list[dict], overlap: str) -> torch.Tensor:
    """(N, 90, 90) masks: global all ones; regions shared (average) or nearest-owns (overlay)."""
    rects = render_masks(entries)
    out = rects.clone()
    regions = rects[1:]
    if overlap == "average":
        out[1:] = regions / (1e-6 + regions.sum(dim=0, keepdim=True))
    elif overlap == "overlay":
        taken = torch.zeros(CANVAS_SIZE, CANVAS_SIZE)
        for i in range(len(regions) - 1, -1, -1):  # nearest (last) first
            out[i + 1] = regions[i] * (1 - taken)
            taken = taken + out[i + 1]
    else:
        raise InputError(f"overlap must be 'average' or 'overlay', got {overlap!r}.")
    return out


def mask_conditioning(clip, entries: list[dict], global_strength: float, region_strength: float,
                      overlap: str = "average") -> tuple[list, torch.Tensor]:
    """ComfyUI CONDITIONING entries with ``mask``/``mask_strength`` (as core ConditioningSetMask sets).

    As in the ComfyUI Omost pack, regions drop the global description from their prefixes: ComfyUI
    blends each entry's prediction per pixel, and the global entry already covers the whole image.
    """
    masks = region_weights(entries, overlap)
    conditioning = []
    for i, entry in enumerate(entries):
        prefixes = entry["prefixes"] if i == 0 else entry["prefixes"][1:]
        cond, pooled = encode_greedy_bags(clip, prefixes, entry["suffixes"])
        conditioning.append([cond, {
            "pooled_output": pooled, "mask": masks[i][None], "set_area_to_bounds": False,
            "mask_strength": global_strength if i == 0 else region_strength,
        }])
    return conditioning, masks
