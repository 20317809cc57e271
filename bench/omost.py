"""DenseDiffusion attention: SDPA + additive bias against the materialised formula (time, peak memory).

    python bench/omost.py [--device cuda] [--dtype fp16] [--pixels 4096 16384] [--tokens 1001]

Sizes follow SDXL at 1024x1024: 64x64 = 4096 pixels at the cross-attention levels with 10 heads of 64
channels, and 13 bags x 77 = 1001 text tokens (a canvas with ~6 regions), CFG batch 2 (uncond, cond).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _pack  # noqa: E402

pkg = _pack.ensure_package()
at = __import__(f"{pkg}.pipelines.omost.attention", fromlist=["x"])


def measure(fn, device: torch.device, repeats: int) -> tuple[float, float]:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = float("nan")  # CPU: not measured (printed as nan)
    return (time.perf_counter() - start) / repeats * 1000, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    parser.add_argument("--pixels", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--tokens", type=int, default=1001)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    if device.type == "cpu":
        dtype = torch.float32
    heads, dim = 10, 64
    counts = [77] * (args.tokens // 77)
    counts[-1] += args.tokens - sum(counts)
    n_entries = len(counts)
    print(f"device={device} dtype={dtype} heads={heads} dim={dim} tokens={sum(counts)} entries={n_entries}")
    print("pixels | sdpa ms | naive ms | sdpa MiB | naive MiB | max |diff|")
    for pixels in args.pixels:
        side = int(pixels ** 0.5)
        q = torch.randn(2, pixels, heads * dim, device=device, dtype=dtype)
        k = torch.randn(2, sum(counts), heads * dim, device=device, dtype=dtype)
        v = torch.randn_like(k)
        masks = torch.zeros(n_entries, 90, 90, device=device)
        masks[0] = 1
        for i in range(1, n_entries):
            a = (i * 7) % 45
            masks[i, a:a + 45, (i * 11) % 40:(i * 11) % 40 + 50] = 1
        call = dict(heads=heads, masks=masks, token_counts=counts, latent_hw=(side, side),
                    cond_or_uncond=[1, 0])
        fast = functools.partial(at.dense_diffusion_attention, q, k, v, **call)
        naive = functools.partial(at.dense_diffusion_attention_naive, q, k, v, **call)
        t_fast, m_fast = measure(fast, device, args.repeats)
        t_naive, m_naive = measure(naive, device, args.repeats)
        diff = (fast().float() - naive().float()).abs().max().item()
        print(f"{pixels} | {t_fast:.2f} | {t_naive:.2f} | {m_fast:.0f} | {m_naive:.0f} | {diff:.2e}")


if __name__ == "__main__":
    main()
