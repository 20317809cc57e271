"""FSRT speed and peak memory: our batched, chunked animation vs upstream's frame-by-frame loop.

    python bench/fsrt.py [--frames 4] [--size 256] [--sources 1] [--chunk 65536] [--device cpu]

Both variants use the same networks and random weights at the released vox256 widths (speed does
not depend on the values). The frame-by-frame variant follows upstream demo.py: one driving frame
at a time, the latent z cached, each frame's pixels decoded in chunks of ``--chunk`` with z
re-projected to keys/values for every chunk, and attention through the "math" kernel (the full
heads x rays x tokens matrix is materialised, as upstream's matmul + softmax does). Ours decodes the
rays of all frames in chunks of ``--chunk``, projects z once and uses the fused SDPA kernel.

Each variant runs in its own subprocess, so the CPU peak (max RSS above the loaded-model baseline)
is per variant; on CUDA the peak is ``torch.cuda.max_memory_allocated``. Not a test.
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
config = _pack.import_pack_module("models.fsrt.config")
fsrt = _pack.import_pack_module("pipelines.fsrt")
anim = _pack.import_pack_module("pipelines.fsrt.animate")
reference_kernels = _pack.import_pack_module("models.fomm.fast_kernels").reference_kernels


def frame_by_frame(model, src: torch.Tensor, drv: torch.Tensor, chunk: int) -> torch.Tensor:
    """Upstream's structure (demo.py make_animation + forward_model) on our modules."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    size = src.shape[-1]
    dec = model.decoder
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
        kp_s, e_s = anim.detect(model, src)
        kp_0, _ = anim.detect(model, drv[:1])
        grid = anim.pixel_grid(size, device=src.device)
        z = model.encoder(src, kp_s, grid, e_s)
        pix = grid.reshape(-1, 2)
        out = []
        for i in range(drv.shape[0]):
            kp_d, e_d = anim.detect(model, drv[i : i + 1])
            kp = anim.transfer_keypoints(kp_s, kp_d, kp_0, relative=True, adapt_scale=True)
            img = torch.zeros(pix.shape[0], 3)
            for a in range(0, pix.shape[0], chunk):
                p = pix[a : a + chunk]
                n = p.shape[0]
                kp_enc = dec.encode_keypoints(kp).expand(n, -1)
                q = dec.queries(kp_enc, dec.encode_pixels(p), e_d.expand(n, -1))
                img[a : a + n] = dec(q[None], z=z.clone())[0].cpu()
            out.append(img.view(size, size, 3).clamp(0, 1))
    return torch.stack(out)


def run_variant(args: argparse.Namespace) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(0)
    cfg = config.FSRTConfig(image_size=args.size)
    nets = {k: v.eval().to(device) for k, v in config.build_networks(cfg).items()}
    model = fsrt.FSRTModel(**nets, config=cfg)
    src = torch.rand(args.sources, 3, args.size, args.size, device=device)
    drv = torch.rand(args.frames, 3, args.size, args.size, device=device)

    def go(frames: torch.Tensor) -> None:
        if args.variant == "ours":
            fsrt.animate_tensors(model, src, frames, relative=True, adapt_scale=True,
                                 max_num_pixels=args.chunk, batch_size=args.frames, device=device)
        else:
            with reference_kernels():  # upstream's plain layer sequence
                frame_by_frame(model, src, frames, args.chunk)
        if device.type == "cuda":
            torch.cuda.synchronize()

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # model + inputs loaded
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_gpu = torch.cuda.memory_allocated()
    go(drv[:1])  # warm-up (its peak counts too: it is the same per-frame work)
    t0 = time.perf_counter()
    go(drv)
    seconds = time.perf_counter() - t0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base_gpu
    return {"s_per_frame": seconds / args.frames, "peak_bytes": peak}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sources", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=65536, help="rays per decoder call (both variants)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--variant", choices=["ours", "frame-by-frame"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args)))
        return
    results = {}
    for variant in ("frame-by-frame", "ours"):
        cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", variant]
        results[variant] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    ref, ours = results["frame-by-frame"], results["ours"]
    print(f"device {args.device}, {args.frames} frames at {args.size}px, {args.sources} source(s), "
          f"chunk {args.chunk} rays")
    for name, r in results.items():
        peak = r["peak_bytes"] / 2**20
        print(f"{name:>15}: {r['s_per_frame']:.2f} s/frame, peak {peak:.0f} MiB above the loaded model")
    print(f"speed-up {ref['s_per_frame'] / ours['s_per_frame']:.2f}x")


if __name__ == "__main__":
    main()
