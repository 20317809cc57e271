"""FOMM-family speed and memory: our pipeline vs the upstream frame-by-frame path, every family, one table.

    python bench/fomm_family.py [--families fomm,tpsmm] [--frames 4] [--repeats 3] [--threads 0]

Every family runs with random weights at its released widths (speed does not depend on the values)
on the same 256x256 source and driving frames. The upstream-style path is upstream's demo loop on
our modules: one frame per call, the source encoded again for every frame, and the plain layer
sequence (nearest upsampling then conv, BatchNorm as a separate op: ``reference_kernels``), as
upstream's code runs it. Ours is the pipeline's ``animate``/``swap`` call at the family's CPU default
batch size (or ``--batch-size``), source-side work done once.

The two paths alternate in one process (upstream, ours, upstream, ours, ...) after one warm-up
each, and the table gives the medians, so load from other processes hits both alike. Each family
runs in its own subprocess; its peak RSS (both paths) is the last column. FSRT and MRFA are slow
per frame, so they run fewer frames (``FEW_FRAMES``). Not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# (source (1,3,S,S), driving (N,3,S,S)) -> None
Run = Callable[[torch.Tensor, torch.Tensor], object]
# batch size (None: the family's CPU default) -> (ours, upstream-style, batch size used)
Case = Callable[[int | None], tuple[Run, Run, int]]
CASES: dict[str, Case] = {}
FEW_FRAMES = {"mrfa": 2, "fsrt": 1}  # frames for the slow families (at most --frames)


def case(fn: Case) -> Case:
    CASES[fn.__name__.removeprefix("case_").replace("_", "-")] = fn
    return fn


@case
def case_fomm(bs: int | None):
    from motionsuite.pipelines.fomm.animate import animate, animate_frame_by_frame
    from motionsuite.pipelines.fomm.batching import cpu_batch_size
    from motionsuite.pipelines.fomm.model import FommModel, build_fomm
    from parity_utils import random_state_dict

    gen, kpd = build_fomm()
    gen.load_state_dict(random_state_dict(gen, 0))
    kpd.load_state_dict(random_state_dict(kpd, 1))
    model = FommModel(gen, kpd)
    bs = bs or cpu_batch_size("fomm")
    return (lambda s, d: animate(model, s, d, batch_size=bs),
            lambda s, d: animate_frame_by_frame(model, s, d), bs)


@case
def case_tpsmm(bs: int | None):
    from motionsuite.models.tpsmm import config
    from motionsuite.pipelines.fomm.batching import cpu_batch_size
    from motionsuite.pipelines.tpsmm import TPSMMModel, animate_tensors
    from motionsuite.pipelines.tpsmm.animate import relative_keypoints

    cfg = config.TPSMMConfig(image_size=256)
    model = TPSMMModel(**{k: v.eval() for k, v in config.build_networks(cfg).items()}, config=cfg)
    bs = bs or cpu_batch_size("tpsmm")

    def upstream(src: torch.Tensor, drv: torch.Tensor) -> None:
        kp_s, kp_0 = model.kp_detector(src), model.kp_detector(drv[:1])
        for i in range(drv.shape[0]):
            kp = relative_keypoints(kp_s, model.kp_detector(drv[i : i + 1]), kp_0)
            model.inpainting_network(src, model.dense_motion_network(src, kp, kp_s))

    return (lambda s, d: animate_tensors(model, s, d, batch_size=bs)), upstream, bs


@case
def case_mraa(bs: int | None):
    from motionsuite.models import mraa as models
    from motionsuite.pipelines import mraa
    from motionsuite.pipelines.fomm.batching import cpu_batch_size
    from motionsuite.pipelines.mraa.animate import transfer_params

    cfg = models.MRAAConfig(image_size=256)
    model = mraa.MRAAModel(**{k: v.eval() for k, v in models.build_networks(cfg).items()}, config=cfg)
    bs = bs or cpu_batch_size("mraa")

    def upstream(src: torch.Tensor, drv: torch.Tensor) -> None:  # demo.py, mode avd
        rp = model.region_predictor
        src_params = rp(src)
        for i in range(drv.shape[0]):
            params = transfer_params(model, "avd", src_params, rp(drv[i : i + 1]), 0)
            model.generator(src, params, src_params)["prediction"].cpu()

    return (lambda s, d: mraa.animate_tensors(model, s, d, mode="avd", batch_size=bs)), upstream, bs


@case
def case_mrfa(bs: int | None):
    from motionsuite.models.fomm.primitives import AntiAliasInterpolation2d
    from motionsuite.models.mrfa import config
    from motionsuite.pipelines import mrfa
    from motionsuite.pipelines.fomm import motion
    from motionsuite.pipelines.fomm.batching import cpu_batch_size

    cfg = config.MRFAConfig()
    nets = {k: v.eval() for k, v in config.build_networks(cfg).items()}
    model = mrfa.MRFAModel(nets["encoder"], nets["dense_motion"], nets["decoder"], nets.get("bg_predictor"),
                           cfg)
    down = AntiAliasInterpolation2d(3, 0.25)
    opts = motion.MotionOptions(True, True, False)
    bs = bs or cpu_batch_size("mrfa")

    def upstream(src: torch.Tensor, drv: torch.Tensor) -> None:
        kp_s, kp_0 = model.encoder(src), model.encoder(drv[:1])
        for i in range(drv.shape[0]):
            kp = motion.normalize_kp(kp_s, model.encoder(drv[i : i + 1]), kp_0, opts)
            m = model.dense_motion(src, kp, kp_s, bg_param=None)
            model.decoder(kp_s["value"], kp["value"], m, down(src), src)

    return (lambda s, d: mrfa.animate_tensors(model, s, d, batch_size=bs)), upstream, bs


@case
def case_fsrt(bs: int | None):
    from motionsuite.models.fsrt import config
    from motionsuite.pipelines import fsrt
    from motionsuite.pipelines.fomm.batching import cpu_batch_size

    spec = importlib.util.spec_from_file_location("bench_fsrt", ROOT / "bench" / "fsrt.py")
    bench_fsrt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_fsrt)  # upstream's make_animation structure on our modules
    torch.manual_seed(0)
    cfg = config.FSRTConfig(image_size=256)
    model = fsrt.FSRTModel(**{k: v.eval() for k, v in config.build_networks(cfg).items()}, config=cfg)
    bs = bs or cpu_batch_size("fsrt")
    return (lambda s, d: fsrt.animate_tensors(model, s, d, relative=True, adapt_scale=True, batch_size=bs),
            lambda s, d: bench_fsrt.frame_by_frame(model, s, d, 65536), bs)


def _partswap(first_order: bool, bs: int | None):
    import torch.nn.functional as F
    from motionsuite.pipelines.fomm.batching import cpu_batch_size
    from motionsuite.pipelines.partswap import SwapOptions, swap_tensors

    spec = importlib.util.spec_from_file_location("bench_partswap", ROOT / "bench" / "partswap.py")
    bench_ps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_ps)
    model = bench_ps.build("first-order" if first_order else "segments", torch.device("cpu"))
    parser = model.face_parser is not None
    options = SwapOptions((1, 2, 10) if parser else (2, 7), use_face_parser=parser)
    scale = 0.125 if parser else 1.0
    bs = bs or cpu_batch_size("partswap")

    def upstream(src: torch.Tensor, drv: torch.Tensor) -> None:  # part_swap.py, one frame at a time
        seg_source = model.segmentation(src)
        for i in range(drv.shape[0]):
            frame = drv[i : i + 1]
            seg_target = model.segmentation(frame)
            probs = (model.face_parser.parse(F.interpolate(frame, size=(512, 512))) if parser
                     else seg_target["segmentation"])
            mask = probs[:, list(options.segments)].sum(1, keepdim=True)
            model.generator.swap(src, frame, seg_source, seg_target, mask, scale).cpu()

    return (lambda s, d: swap_tensors(model, s, d, options, batch_size=bs)), upstream, bs


@case
def case_partswap(bs: int | None):
    return _partswap(False, bs)


@case
def case_partswap_fomm(bs: int | None):
    return _partswap(True, bs)


def measure(family: str, frames: int, repeats: int, batch_size: int | None, rewrites: bool = True) -> dict:
    import _pack

    _pack.ensure_package()
    from motionsuite.models.fomm.fast_kernels import reference_kernels

    ours, upstream, bs = CASES[family](batch_size)
    g = torch.Generator().manual_seed(0)
    src = torch.rand(1, 3, 256, 256, generator=g)
    drv = torch.rand(frames, 3, 256, 256, generator=g)

    def timed(fn: Run, reference: bool) -> float:
        with torch.no_grad():
            t0 = time.perf_counter()
            if reference:
                with reference_kernels():
                    fn(src, drv)
            else:
                fn(src, drv)
            return (time.perf_counter() - t0) / frames

    times: dict[str, list[float]] = {"upstream": [], "ours": []}
    warm = frames > 1 or family not in FEW_FRAMES  # the slow ones warm up in their first repeat
    if warm:
        with torch.no_grad():
            with reference_kernels():
                upstream(src, drv[:1])
            ours(src, drv[:1])
    for _ in range(repeats):
        times["upstream"].append(timed(upstream, True))
        times["ours"].append(timed(ours, not rewrites))
    return {"family": family, "batch": bs, "frames": frames, "threads": torch.get_num_threads(),
            "ours": statistics.median(times["ours"]), "upstream": statistics.median(times["upstream"]),
            "samples": times, "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="alternating timed runs per path (median)")
    ap.add_argument("--batch-size", type=int, default=None, help="default: each family's CPU default")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--no-rewrites", action="store_true",
                    help="run our pipeline on the plain layers too (the speed before the inference rewrites)")
    ap.add_argument("--worker", metavar="FAMILY", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        frames = min(args.frames, FEW_FRAMES.get(args.worker, args.frames))
        repeats = 2 if args.worker == "fsrt" else args.repeats
        print(json.dumps(measure(args.worker, frames, repeats, args.batch_size, not args.no_rewrites)))
        return
    families = args.families.split(",")
    for family in families:
        if family not in CASES:
            raise SystemExit(f"unknown family {family!r}; known: {', '.join(CASES)}")
    print(f"CPU, 256x256, fp32, {torch.get_num_threads()} threads, medians of alternating runs"
          + (", our pipeline WITHOUT the inference rewrites" if args.no_rewrites else ""))
    print(f"{'family':14s} {'batch':>5s} {'frames':>6s} {'ours s/frame':>13s} {'upstream s/frame':>17s} "
          f"{'ratio':>6s} {'peak RSS':>9s}")
    for family in families:
        cmd = [sys.executable, __file__, "--worker", family, "--frames", str(args.frames),
               "--repeats", str(args.repeats), "--threads", str(args.threads)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        if args.no_rewrites:
            cmd.append("--no-rewrites")
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{family:14s} {r['batch']:5d} {r['frames']:6d} {r['ours']:13.3f} {r['upstream']:17.3f} "
              f"{r['upstream'] / r['ours']:5.2f}x {r['peak_mib']:6.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
