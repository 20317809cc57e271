"""FOMM-family speed and memory: our batched animation vs the upstream frame-by-frame loop, per family.

Every family runs with random weights at its released widths (speed does not depend on the values)
on the same 256x256 source and driving frames. Each (family, mode) pair runs in its own subprocess
so the peak memory (CUDA: max allocated; CPU: peak RSS) belongs to that measurement alone.

    python bench/fomm_family.py [--families fomm,tpsmm] [--frames 8] [--batch-size 8] [--device cpu]

``CASES`` maps a family to a function that builds the model and returns the two callables to time;
families whose comparison needs more options (MRAA modes, MRFA background, FSRT ray chunks, Part Swap
variants) keep their own ``bench/<family>.py``, which this script runs with the same ``--frames`` and
``--device`` and whose report it prints below the table. Not a test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# (source (1,3,S,S), driving (N,3,S,S), batch size) -> None
Runner = Callable[..., None]
Case = Callable[[int, "object"], tuple[Runner, Runner]]
CASES: dict[str, Case] = {}
SCRIPTS = ("mraa", "mrfa", "fsrt", "partswap")


def case(fn: Case) -> Case:
    CASES[fn.__name__.removeprefix("case_")] = fn
    return fn


@case
def case_fomm(size: int, device):
    from motionsuite.pipelines.fomm.animate import animate, animate_frame_by_frame
    from motionsuite.pipelines.fomm.model import FommModel, build_fomm
    from parity_utils import random_state_dict

    gen, kpd = build_fomm()
    gen.load_state_dict(random_state_dict(gen, 0))
    kpd.load_state_dict(random_state_dict(kpd, 1))
    model = FommModel(gen.eval().to(device), kpd.eval().to(device))
    return (lambda s, d, bs: animate(model, s, d, batch_size=bs, device=device),
            lambda s, d, bs: animate_frame_by_frame(model, s, d))


@case
def case_tpsmm(size: int, device):
    import torch
    from motionsuite.models.tpsmm import config
    from motionsuite.pipelines.tpsmm import TPSMMModel, animate_tensors
    from motionsuite.pipelines.tpsmm.animate import relative_keypoints

    cfg = config.TPSMMConfig(image_size=size)
    model = TPSMMModel(**{k: v.eval().to(device) for k, v in config.build_networks(cfg).items()}, config=cfg)

    def frame_by_frame(src: torch.Tensor, drv: torch.Tensor, bs: int) -> None:
        # upstream's demo loop: one frame per call, the source re-encoded every time
        kp_s, kp_0 = model.kp_detector(src), model.kp_detector(drv[:1])
        for i in range(drv.shape[0]):
            kp = relative_keypoints(kp_s, model.kp_detector(drv[i : i + 1]), kp_0)
            model.inpainting_network(src, model.dense_motion_network(src, kp, kp_s))

    return (lambda s, d, bs: animate_tensors(model, s, d, batch_size=bs)), frame_by_frame


def measure(family: str, mode: str, frames: int, size: int, batch_size: int, device: str) -> dict:
    import _pack

    _pack.ensure_package()
    import torch

    dev = torch.device(device)
    batched, frame_by_frame = CASES[family](size, dev)
    run = batched if mode == "batched" else frame_by_frame
    g = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, size, size, generator=g).to(dev)
    drv = torch.rand(frames, 3, size, size, generator=g).to(dev)
    with torch.no_grad():
        run(src, drv[: min(2, frames)], batch_size)  # warm-up
        if dev.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        run(src, drv, batch_size)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"family": family, "mode": mode, "frames": frames, "seconds": seconds, "peak_mib": peak}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [*CASES, *SCRIPTS]
    ap.add_argument("--families", default=",".join(names), help=f"comma list of {', '.join(names)}")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--worker", nargs=2, metavar=("FAMILY", "MODE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        family, mode = args.worker
        print(json.dumps(measure(family, mode, args.frames, args.size, args.batch_size, args.device)))
        return
    mem = "CUDA max alloc" if args.device.startswith("cuda") else "peak RSS"
    print(f"{args.frames} frames at {args.size}px, batch size {args.batch_size}, device {args.device}")
    print(f"{'family':8s} {'frame-by-frame':>22s} {'batched':>22s} {'speed-up':>9s}   {mem}")
    families = args.families.split(",")
    for family in families:
        if family not in names:
            raise SystemExit(f"unknown family {family!r}; known: {', '.join(names)}")
    for family in (f for f in families if f in CASES):
        res = {}
        for mode in ("frame", "batched"):
            cmd = [sys.executable, __file__, "--worker", family, mode, "--frames", str(args.frames),
                   "--size", str(args.size), "--batch-size", str(args.batch_size), "--device", args.device]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            res[mode] = json.loads(out.strip().splitlines()[-1])
        f, b = res["frame"], res["batched"]
        print(f"{family:8s} {f['seconds'] / args.frames:9.3f} s/frame ({args.frames / f['seconds']:5.2f} fps)"
              f" {b['seconds'] / args.frames:9.3f} s/frame ({args.frames / b['seconds']:5.2f} fps)"
              f" {f['seconds'] / b['seconds']:8.2f}x   {f['peak_mib']:.0f} -> {b['peak_mib']:.0f} MiB")

    for family in (f for f in families if f in SCRIPTS):
        print(f"\n== {family} (bench/{family}.py)", flush=True)
        cmd = [sys.executable, str(ROOT / "bench" / f"{family}.py"), "--frames", str(args.frames),
               "--device", args.device]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
