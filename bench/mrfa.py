"""MRFA speed and memory: our batched animation vs a frame-by-frame loop (upstream's structure).

    python bench/mrfa.py [--frames 8] [--batch-size 4] [--device cpu] [--background]

Random weights at the released 256x256 widths (speed does not depend on the values). The loop runs
every frame alone and recomputes the source side (feature pyramid, source structure encoding) each
time, as upstream's demo does; the batched path computes it once. Peak memory: CUDA's allocator
peak per path on a GPU, the process's peak resident set on the CPU. Not a test.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _pack  # noqa: E402

pkg = _pack.ensure_package()
config = _pack.import_pack_module("models.mrfa.config")
primitives = _pack.import_pack_module("models.fomm.primitives")
mrfa = _pack.import_pack_module("pipelines.mrfa")
motion = _pack.import_pack_module("pipelines.fomm.motion")
reference_kernels = _pack.import_pack_module("models.fomm.fast_kernels").reference_kernels


def peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--background", action="store_true", help="celebvhq model with background motion")
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = config.MRFAConfig(background=args.background)
    nets = {k: v.eval().to(device) for k, v in config.build_networks(cfg).items()}
    model = mrfa.MRFAModel(
        nets["encoder"], nets["dense_motion"], nets["decoder"], nets.get("bg_predictor"), cfg
    )
    size = cfg.image_size
    src = torch.rand(1, 3, size, size, device=device)
    drv = torch.rand(args.frames, 3, size, size, device=device)
    down = primitives.AntiAliasInterpolation2d(3, 0.25).to(device)
    opts = motion.MotionOptions(True, True, False)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def reset() -> None:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    with torch.no_grad():
        mrfa.animate_tensors(model, src, drv[:2], background_motion=args.background, batch_size=2)  # warm-up
        sync()
        reset()
        t0 = time.perf_counter()
        kp_s = model.encoder(src)
        kp_0 = model.encoder(drv[:1])
        with reference_kernels():  # upstream's plain layer sequence
            for i in range(args.frames):  # upstream: every frame alone, source side recomputed every time
                frame = drv[i : i + 1]
                kp = motion.normalize_kp(kp_s, model.encoder(frame), kp_0, opts)
                bg = model.bg_predictor(drv[:1], frame) if args.background else None
                m = model.dense_motion(src, kp, kp_s, bg_param=bg)
                model.decoder(kp_s["value"], kp["value"], m, down(src), src)
        sync()
        loop, loop_mem = time.perf_counter() - t0, peak_mb(device)
        reset()
        t0 = time.perf_counter()
        mrfa.animate_tensors(model, src, drv, background_motion=args.background, batch_size=args.batch_size)
        sync()
        batched, batched_mem = time.perf_counter() - t0, peak_mb(device)
    n = args.frames
    what = "allocator peak" if device.type == "cuda" else "process peak RSS (cumulative)"
    print(f"device {device}, {n} frames at {size}px, background={args.background}")
    print(f"frame by frame: {loop / n:.3f} s/frame, {what} {loop_mem:.0f} MB")
    speedup = loop / batched
    per_frame = batched / n
    bs = args.batch_size
    print(f"batched (bs {bs}): {per_frame:.3f} s/frame ({speedup:.2f}x), {what} {batched_mem:.0f} MB")


if __name__ == "__main__":
    main()
