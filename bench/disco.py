"""DisCo speed and memory: seconds per DDIM step and peak memory at 256² for a batch of frames.

Random weights in the real SD-1 / ViT-L widths (``--full``, 859 M UNet + two ControlNets) or the
tiny test config (default, for a quick smoke run). Each CFG step runs the UNet and both
ControlNets on 2×batch latents (temporal model, ``--temporal``: on one window of ``--frames``).
Peak memory: CUDA max allocated, else peak RSS of this process; ``import_mb`` is the RSS right
after importing torch/diffusers/transformers, so ``delta_mb`` is what DisCo itself adds.

``--load`` instead measures loading: a DeepSpeed checkpoint of the chosen config is written in the
released fp16 layout, then loaded in a fresh process through ``load_disco`` (the user path).

    python bench/disco.py --frames 16 --batch-size 16 --device cuda --full --precision fp16
    python bench/disco.py --load --precision fp16
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
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
DTYPES = ("fp32", "fp16", "bf16")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _configs(full: bool):
    import disco_tiny
    from transformers import CLIPVisionConfig

    if not full:
        return {
            "unet": disco_tiny.UNET,
            "vae": disco_tiny.VAE,
            "clip": CLIPVisionConfig(**disco_tiny.CLIP),
            "scheduler": disco_tiny.SCHEDULER,
        }
    vae = {**{k: v for k, v in disco_tiny.VAE.items() if k != "sample_size"}, **FULL_VAE_SIZES}
    return {
        "unet": {**disco_tiny.UNET, **FULL_UNET_SIZES},
        "vae": vae,
        "clip": CLIPVisionConfig(**FULL_CLIP),
        "scheduler": disco_tiny.SCHEDULER,
    }


def _imports():
    import _pack

    _pack.ensure_package()
    import diffusers  # noqa: F401  (counted in the import baseline)
    import torch
    from motionsuite.pipelines.disco import loading, sampling

    return torch, loading, sampling


def bench_sampling(args) -> dict:
    torch, loading, sampling = _imports()
    import_mb = _rss_mb()
    model = loading.build_model(_configs(args.full), temporal=args.temporal)
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
    settings = sampling.SamplerSettings(
        steps=args.steps + 1, guidance=1.5, batch_size=args.batch_size, window=args.frames
    )
    # steps+1 DDIM steps; the first is a warm-up and is not counted
    sampling.sample(model, cond, uncond, poses, background, settings, callback=on_step)
    timed = times[1:] if len(times) > 1 else times
    cuda = device.type == "cuda"
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _rss_mb()
    return {
        "config": "full" if args.full else "tiny",
        "model": "temporal" if args.temporal else "image",
        "device": str(device),
        "precision": args.precision,
        "frames": args.frames,
        "batch_size": args.frames if args.temporal else args.batch_size,
        "s_per_step_per_batch": sum(timed) / len(timed),
        "peak_mb": round(peak, 1),
        **({} if cuda else {"import_mb": round(import_mb, 1), "delta_mb": round(peak - import_mb, 1)}),
    }


def bench_loading(args) -> dict:
    """Write a released-layout checkpoint (fp16, CLIP fp32), then load it in a fresh process."""
    torch, loading, _ = _imports()
    import disco_tiny

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = _configs(args.full)
        model = loading.build_model(configs, temporal=args.temporal)
        state = {
            k: v if k.startswith("clip_image_encoder.") else v.half()
            for k, v in loading.released_state_dict(model).items()
        }
        del model
        disco_tiny.write_deepspeed_checkpoint(root / "tiktok_cfg" / "mp_rank_00_model_states.pt", state)
        size_mb = sum(v.numel() * v.element_size() for v in state.values()) / 2**20
        del state
        disco_tiny.write_base_folder(root / "base")
        if args.full:  # the tiny configs were written; put the full widths in
            for sub, cfg in (("unet", configs["unet"]), ("vae", configs["vae"])):
                (root / "base" / sub / "config.json").write_text(json.dumps(cfg))
            (root / "base" / "image_encoder" / "config.json").write_text(json.dumps(FULL_CLIP))
        cmd = [sys.executable, __file__, "--measure-load", str(root), "--precision", args.precision]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {"config": "full" if args.full else "tiny", "checkpoint_mb": round(size_mb, 1), **result}


def measure_load(root: Path, precision: str) -> dict:
    torch, loading, _ = _imports()
    import_mb = _rss_mb()
    start = time.perf_counter()
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    model = loading.load_disco(root / "base", root / "tiktok_cfg" / "mp_rank_00_model_states.pt", dtype)
    for module in model.modules().values():  # touch every weight, as a forward pass would
        for p in module.parameters():
            p.float().sum()
    return {
        "precision": precision,
        "temporal": model.temporal,
        "load_s": round(time.perf_counter() - start, 2),
        "import_mb": round(import_mb, 1),
        "peak_mb": round(_rss_mb(), 1),
        "delta_mb": round(_rss_mb() - import_mb, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed DDIM steps (after one warm-up step)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=DTYPES)
    parser.add_argument("--full", action="store_true", help="real SD-1 widths instead of the tiny config")
    parser.add_argument("--temporal", action="store_true", help="the temporal model (one window of --frames)")
    parser.add_argument("--load", action="store_true", help="measure checkpoint loading instead of sampling")
    parser.add_argument("--measure-load", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_load:
        result = measure_load(Path(args.measure_load), args.precision)
    elif args.load:
        result = bench_loading(args)
    else:
        result = bench_sampling(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
