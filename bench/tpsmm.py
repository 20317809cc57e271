"""TPSMM speed: our batched animation vs a frame-by-frame loop (upstream's structure), same weights.

    python bench/tpsmm.py [--frames 8] [--size 256] [--batch-size 8] [--device cpu]

Random weights at the released vox-256 widths (speed does not depend on the values). Not a test.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _pack  # noqa: E402

pkg = _pack.ensure_package()
config = _pack.import_pack_module("models.tpsmm.config")
tpsmm = _pack.import_pack_module("pipelines.tpsmm")
animate_mod = _pack.import_pack_module("pipelines.tpsmm.animate")
reference_kernels = _pack.import_pack_module("models.fomm.fast_kernels").reference_kernels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = config.TPSMMConfig(image_size=args.size)
    nets = {k: v.eval().to(device) for k, v in config.build_networks(cfg).items()}
    model = tpsmm.TPSMMModel(**nets, config=cfg)
    src = torch.rand(1, 3, args.size, args.size, device=device)
    drv = torch.rand(args.frames, 3, args.size, args.size, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    with torch.no_grad():
        tpsmm.animate_tensors(model, src, drv[:2], batch_size=2)  # warm-up
        sync()
        t0 = time.perf_counter()
        kp_s = model.kp_detector(src)
        kp_0 = model.kp_detector(drv[:1])
        with reference_kernels():  # upstream's plain layer sequence
            for i in range(args.frames):  # upstream: every frame alone, source encoded every time
                kp = animate_mod.relative_keypoints(kp_s, model.kp_detector(drv[i : i + 1]), kp_0)
                model.inpainting_network(src, model.dense_motion_network(src, kp, kp_s))
        sync()
        loop = time.perf_counter() - t0
        t0 = time.perf_counter()
        tpsmm.animate_tensors(model, src, drv, batch_size=args.batch_size)
        sync()
        batched = time.perf_counter() - t0
    n = args.frames
    print(f"device {device}, {n} frames at {args.size}px")
    print(f"frame by frame: {loop / n:.3f} s/frame")
    print(f"batched (bs {args.batch_size}): {batched / n:.3f} s/frame ({loop / batched:.2f}x)")


if __name__ == "__main__":
    main()
