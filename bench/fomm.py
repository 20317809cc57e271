"""FOMM speed and memory: batched pipeline vs the upstream frame-by-frame loop.

Same random vox-256 weights (full size) and the same 256x256 inputs for both. Each mode runs in
its own subprocess so the peak memory (CUDA: max allocated; CPU: peak RSS) belongs to that mode.

    python bench/fomm.py --frames 16 --batch-size 8 --device cpu
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def measure(mode: str, frames: int, batch_size: int, device: str) -> dict:
    import _pack

    _pack.ensure_package()
    import torch
    from motionsuite.models.fomm.fast_kernels import reference_kernels
    from motionsuite.pipelines.fomm.animate import animate, animate_frame_by_frame
    from motionsuite.pipelines.fomm.model import FommModel, build_fomm
    from parity_utils import random_state_dict

    dev = torch.device(device)
    gen, kpd = build_fomm()
    gen.load_state_dict(random_state_dict(gen, 0))
    kpd.load_state_dict(random_state_dict(kpd, 1))
    model = FommModel(gen.to(dev), kpd.to(dev))
    g = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, 256, 256, generator=g).to(dev)
    drv = torch.rand(frames, 3, 256, 256, generator=g).to(dev)

    def once(n: int) -> None:
        if mode == "batched":
            animate(model, src, drv[:n], batch_size=batch_size, device=dev)
        else:
            with reference_kernels():  # upstream's plain layer sequence
                animate_frame_by_frame(model, src, drv[:n])

    once(min(2, frames))  # warm-up
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    once(frames)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "frames": frames, "seconds": seconds, "fps": frames / seconds, "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--mode", choices=["both", "batched", "frame"], default="both")
    args = ap.parse_args()
    if args.mode != "both":
        print(json.dumps(measure(args.mode, args.frames, args.batch_size, args.device)))
        return
    results = {}
    for mode in ("frame", "batched"):
        out = subprocess.run([sys.executable, __file__, "--mode", mode, "--frames", str(args.frames),
                              "--batch-size", str(args.batch_size), "--device", args.device],
                             check=True, capture_output=True, text=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    mem = "CUDA max allocated" if args.device.startswith("cuda") else "peak RSS"
    for mode, r in results.items():
        print(f"{mode:8s} {r['fps']:7.2f} frames/s  ({r['seconds']:.2f} s for {r['frames']} frames), "
              f"{mem} {r['peak_mib']:.0f} MiB")
    print(f"speed-up batched/frame-by-frame: {results['batched']['fps'] / results['frame']['fps']:.2f}x "
          f"(batch size {args.batch_size}, device {args.device})")


if __name__ == "__main__":
    main()
