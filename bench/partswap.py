"""Part swap speed and memory: batched pipeline vs upstream's frame-by-frame loop.

Same random weights at the released widths (vox-10segments, or the FOMM-aligned variant with the
face parser) and the same 256x256 inputs for both. The frame-by-frame path is upstream
part_swap.py:make_video's structure: every frame alone, the source re-encoded for each frame. Each
mode runs in its own subprocess so the peak memory (CUDA: max allocated; CPU: peak RSS) is its own.

    python bench/partswap.py --frames 8 --batch-size 8 --device cpu [--variant segments|first-order]
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

FOMM_DM = {"block_expansion": 64, "max_features": 1024, "num_blocks": 5, "scale_factor": 0.25}


def build(variant: str, device):
    import _pack

    _pack.ensure_package()
    from motionsuite.models.partswap.face_parser import BiSeNet
    from motionsuite.models.partswap.reconstruction_module import ReconstructionModule
    from motionsuite.models.partswap.segmentation_module import SegmentationModule
    from motionsuite.pipelines.partswap import PartSwapModel
    from parity_utils import random_state_dict

    fomm = variant == "first-order"
    nets = [
        SegmentationModule(num_segments=10),
        ReconstructionModule(num_segments=10, dense_motion_params=FOMM_DM if fomm else None),
    ]
    if fomm:
        nets.append(BiSeNet(19))
    for i, net in enumerate(nets):
        net.load_state_dict(random_state_dict(net, i))
        net.eval().to(device)
    return PartSwapModel(nets[0], nets[1], nets[2] if fomm else None, first_order=fomm)


def measure(mode: str, variant: str, frames: int, batch_size: int, device: str) -> dict:
    import torch
    import torch.nn.functional as F

    dev = torch.device(device)
    model = build(variant, dev)
    from motionsuite.models.fomm.fast_kernels import reference_kernels
    from motionsuite.pipelines.partswap import SwapOptions, swap_tensors

    parser = model.face_parser is not None
    options = SwapOptions((1, 2, 10) if parser else (2, 7), use_face_parser=parser)
    scale = 0.125 if parser else 1.0
    g = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, 256, 256, generator=g).to(dev)
    drv = torch.rand(frames, 3, 256, 256, generator=g).to(dev)

    @torch.no_grad()
    def frame_by_frame(n: int) -> None:
        seg_source = model.segmentation(src)
        for i in range(n):
            frame = drv[i : i + 1]
            seg_target = model.segmentation(frame)
            if parser:
                probs = model.face_parser.parse(F.interpolate(frame, size=(512, 512)))
            else:
                probs = seg_target["segmentation"]
            mask = probs[:, list(options.segments)].sum(1, keepdim=True)
            model.generator.swap(src, frame, seg_source, seg_target, mask, scale).cpu()

    def once(n: int) -> None:
        if mode == "batched":
            swap_tensors(model, src, drv[:n], options, batch_size=batch_size)
        else:
            with reference_kernels():  # upstream's plain layer sequence
                frame_by_frame(n)

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
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variant", choices=["segments", "first-order"], default="segments")
    ap.add_argument("--mode", choices=["both", "batched", "frame"], default="both")
    args = ap.parse_args()
    if args.mode != "both":
        print(json.dumps(measure(args.mode, args.variant, args.frames, args.batch_size, args.device)))
        return
    results = {}
    for mode in ("frame", "batched"):
        cmd = [
            sys.executable,
            __file__,
            "--mode",
            mode,
            "--frames",
            str(args.frames),
            "--batch-size",
            str(args.batch_size),
            "--device",
            args.device,
            "--variant",
            args.variant,
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results[mode] = json.loads(out.strip().splitlines()[-1])
    mem = "CUDA max allocated" if args.device.startswith("cuda") else "peak RSS"
    for mode, r in results.items():
        print(
            f"{mode:8s} {r['fps']:7.2f} frames/s  ({r['seconds']:.2f} s for {r['frames']} frames), "
            f"{mem} {r['peak_mib']:.0f} MiB"
        )
    ratio = results["batched"]["fps"] / results["frame"]["fps"]
    print(
        f"speed-up batched/frame-by-frame: {ratio:.2f}x (variant {args.variant}, batch size "
        f"{args.batch_size}, device {args.device})"
    )


if __name__ == "__main__":
    main()
