"""MRAA speed and peak memory: our batched animation vs upstream's frame-by-frame loop, same weights.

    python bench/mraa.py [--frames 8] [--size 256] [--batch-size 8] [--mode avd] [--device cpu]

Upstream (``demo.py:make_animation``) runs the region predictor and the whole generator (source
encoder and downscaling included) once per driving frame; the batched path computes the source's
part once and renders ``--batch-size`` frames per pass. Random weights at the released vox256 widths
(speed does not depend on the values). Each path runs in its own process so its peak memory (max
RSS on the CPU, max allocated on CUDA) is its own. Not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _pack  # noqa: E402

pkg = _pack.ensure_package()
models = _pack.import_pack_module("models.mraa")
mraa = _pack.import_pack_module("pipelines.mraa")
animate_mod = _pack.import_pack_module("pipelines.mraa.animate")
reference_kernels = _pack.import_pack_module("models.fomm.fast_kernels").reference_kernels


def run_one(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    cfg = models.MRAAConfig(image_size=args.size)
    nets = {k: v.to(device) for k, v in models.build_networks(cfg).items()}
    model = mraa.MRAAModel(**nets, config=cfg)
    gen = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, args.size, args.size, generator=gen).to(device)
    drv = torch.rand(args.frames, 3, args.size, args.size, generator=gen).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def loop(frames: torch.Tensor) -> None:  # upstream structure: everything per frame
        rp = model.region_predictor
        src_params = rp(src)
        initial = rp(frames[:1])
        for i in range(frames.shape[0]):
            drv_params = rp(frames[i : i + 1])
            if args.mode == "relative":
                params = animate_mod.relative_region_params(src_params, drv_params, initial)
            else:
                params = animate_mod.transfer_params(model, args.mode, src_params, drv_params, 0)
            model.generator(src, params, src_params)["prediction"].cpu()

    def batched(frames: torch.Tensor) -> None:
        mraa.animate_tensors(model, src, frames, mode=args.mode, batch_size=args.batch_size)

    def loop_reference(frames: torch.Tensor) -> None:
        with reference_kernels():  # upstream's plain layer sequence
            loop(frames)

    fn = loop_reference if args.only == "loop" else batched
    with torch.no_grad():
        fn(drv[:2])  # warm-up
        sync()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        fn(drv)
        sync()
        seconds = time.perf_counter() - t0
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device.type == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    return {"s_per_frame": seconds / args.frames, "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--mode", choices=animate_mod.MODES, default="avd")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", choices=["loop", "batched"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        print(json.dumps(run_one(args)))
        return
    results = {}
    for which in ("loop", "batched"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--only", which]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[which] = json.loads(out.strip().splitlines()[-1])
    loop, batched = results["loop"], results["batched"]
    memory = "max allocated" if args.device.startswith("cuda") else "max RSS"
    print(f"device {args.device}, {args.frames} frames at {args.size}px, mode {args.mode}")
    print(
        f"frame by frame (upstream): {loop['s_per_frame']:.3f} s/frame, "
        f"peak {memory} {loop['peak_mib']:.0f} MiB"
    )
    print(
        f"batched (bs {args.batch_size}): {batched['s_per_frame']:.3f} s/frame "
        f"({loop['s_per_frame'] / batched['s_per_frame']:.2f}x), peak {memory} {batched['peak_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
