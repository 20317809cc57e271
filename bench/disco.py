"""DisCo speed and memory: seconds per DDIM step and peak memory at 256² for a batch of frames.

Random weights in the real SD-1 / ViT-L widths (``--full``, 859 M UNet + two ControlNets) or the
tiny test config (default, for a quick smoke run). Each CFG step runs the UNet and both
ControlNets on 2×batch latents. Peak memory: CUDA max allocated, else peak RSS of this process.

    python bench/disco.py --frames 16 --batch-size 16 --device cuda --full --precision fp16
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# Real SD-1 / sd-image-variations widths: the tiny test configs (tests/disco_tiny.py) with the
# released sizes put back, so both stay the same architecture.
FULL_UNET_SIZES = {
    "sample_size": 64,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "cross_attention_dim": 768,
}
FULL_VAE_SIZES = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2}
FULL_CLIP = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 768,
}

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed DDIM steps (after one warm-up step)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--full", action="store_true", help="real SD-1 widths instead of the tiny config")
    args = parser.parse_args()

    import _pack

    _pack.ensure_package()
    import disco_tiny
    import torch
    from motionsuite.pipelines.disco import loading, sampling
    from transformers import CLIPVisionConfig

    unet, vae, clip = (
        (
            {**disco_tiny.UNET, **FULL_UNET_SIZES},
            {**{k: v for k, v in disco_tiny.VAE.items() if k != "sample_size"}, **FULL_VAE_SIZES},
            FULL_CLIP,
        )
        if args.full
        else (disco_tiny.UNET, disco_tiny.VAE, disco_tiny.CLIP)
    )
    model = loading.build_model(
        {"unet": unet, "vae": vae, "clip": CLIPVisionConfig(**clip), "scheduler": disco_tiny.SCHEDULER}
    )
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    device = torch.device(args.device)
    model.to(device=device, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(1, 3, 224, 224, generator=g)
    cond, uncond = sampling.encode_reference(model, ref.to(device))
    poses = torch.rand(args.frames, 3, 256, 256, generator=g)
    background = torch.randn(1, 4, 32, 32, generator=g)
    times: list[float] = []
    last = [time.perf_counter()]

    def on_step(done: int, total: int, x0: torch.Tensor) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    settings = sampling.SamplerSettings(steps=args.steps + 1, guidance=1.5, batch_size=args.batch_size)
    # steps+1 DDIM steps; the first is a warm-up and is not counted
    sampling.sample(model, cond, uncond, poses, background, settings, callback=on_step)
    timed = times[1:] if len(times) > 1 else times
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    print(
        json.dumps(
            {
                "config": "full" if args.full else "tiny",
                "device": str(device),
                "precision": args.precision,
                "frames": args.frames,
                "batch_size": args.batch_size,
                "s_per_step_per_batch": sum(timed) / len(timed),
                "peak_mb": round(peak, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
