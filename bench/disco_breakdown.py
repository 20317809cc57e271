"""Where a DisCo sampler step spends its time, and the fastest that step can be with the same math.

Why: the bench target is a throughput ratio against upstream, and on a CPU both sides spend most
of a step in the same library kernels (oneDNN convolutions, MKL GEMMs, PyTorch's fused SDPA). This
script shows how much room is left. It times one guided step (both ControlNets and the UNet on
the CFG batch) with forward hooks, counting each module's own time (its children subtracted),
and groups the time by kind of work:

* 3x3 / 1x1 convolutions and linear layers: their multiply-adds are counted, so their achieved
  GFLOP/s can be set against the best GFLOP/s this machine's GEMM and convolution libraries reach
  on large, cache-friendly shapes, measured in the same run;
* attention kernels (the ``Attention`` modules minus their projections): PyTorch's fused SDPA,
  whose time on small head widths is mostly the softmax's exponentials (the exps alone are
  reported);
* norms, and the rest of the step (element-wise ops, resampling, concatenation, Python).

The floor of a step at equal math is the GEMM-like work at the best measured throughput plus the
measured time of everything else: no stock library call does those faster, so beating it needs
changed math (fewer multiply-adds, lower precision) or hand-written kernels.
``--upstream-s-per-step`` (upstream's wall seconds per step from ``bench/disco.py``'s comparison)
turns the floor into the best throughput ratio reachable against upstream.

    python bench/disco_breakdown.py --width quarter --frames 16 --threads 2 --upstream-s-per-step 12.7
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
GEMM_LIKE = ("3x3 convolutions", "1x1 convolutions", "other convolutions", "linear layers")


def _bench_disco():
    """``bench/disco.py`` as a module (its configs and pack imports)."""
    spec = importlib.util.spec_from_file_location("bench_disco", HERE / "disco.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _time(fn, repeats: int = 5, sync=lambda: None) -> float:
    fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def best_throughput(device: torch.device) -> dict:
    """GFLOP/s of a large square GEMM and of a wide 3x3 convolution batch, and exps per second."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    gemm = 2 * 2048**3 / _time(lambda: a @ b, sync=sync) / 1e9
    x = torch.randn(32, 640, 8, 8, device=device)
    w = torch.randn(640, 640, 3, 3, device=device) * 0.02
    conv = 2 * 32 * 64 * 640 * 640 * 9 / _time(lambda: F.conv2d(x, w, padding=1), sync=sync) / 1e9
    e = torch.randn(2**22, device=device)
    buffer = torch.empty_like(e)
    exps = 2**22 / _time(lambda: torch.exp(e, out=buffer), sync=sync)
    return {"gemm_gflops": gemm, "conv_gflops": conv, "exp_per_s": exps}


class StepProfile:
    """Forward hooks on the leaf kinds of work: own time, multiply-adds and exponentials per kind."""

    def __init__(self, device: torch.device) -> None:
        from diffusers.models.attention_processor import Attention

        self.attention_type = Attention
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.flops: dict[str, float] = collections.defaultdict(float)
        self.exps = 0.0
        self._stack: list[list] = []
        self._sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self._handles = []

    def kind(self, module: nn.Module) -> str | None:
        if isinstance(module, nn.Conv2d):
            names = {(3, 3): "3x3 convolutions", (1, 1): "1x1 convolutions"}
            return names.get(tuple(module.kernel_size), "other convolutions")
        if isinstance(module, nn.Linear):
            return "linear layers"
        if isinstance(module, self.attention_type):
            return "attention kernels"
        if isinstance(module, (nn.GroupNorm, nn.LayerNorm)):
            return "norms"
        return None

    def attach(self, net: nn.Module) -> None:
        for module in net.modules():
            kind = self.kind(module)
            if kind is not None:
                self._handles.append(module.register_forward_pre_hook(self._pre, with_kwargs=True))
                self._handles.append(module.register_forward_hook(self._post))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()

    def _pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self._sync()
        if isinstance(module, self.attention_type):
            hidden = args[0] if args else kwargs["hidden_states"]
            context = kwargs.get("encoder_hidden_states", args[1] if len(args) > 1 else None)
            batch, length = hidden.shape[0], hidden.shape[1]
            keys = length if context is None else context.shape[1]
            head_dim = module.inner_dim // module.heads
            pairs = batch * module.heads * length * keys
            self.flops["attention kernels"] += 4 * pairs * head_dim  # QK^T and PV
            self.exps += pairs
        self._stack.append([module, time.perf_counter(), 0.0])

    def _post(self, module: nn.Module, args: tuple, out) -> None:
        self._sync()
        _, start, children = self._stack.pop()
        spent = time.perf_counter() - start
        kind = self.kind(module)
        self.seconds[kind] += spent - children
        if self._stack:
            self._stack[-1][2] += spent
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_output = 2 * (module.in_channels // module.groups) * kh * kw
            self.flops[kind] += per_output * out.numel()
        elif isinstance(module, nn.Linear):
            self.flops[kind] += 2 * module.in_features * out.numel()


def measure(args) -> dict:
    bench = _bench_disco()
    _, loading, sampling = bench._imports()
    device = torch.device(args.device)
    model = loading.build_model(bench._configs(args.width))
    model.to(device)
    g = torch.Generator().manual_seed(0)
    tokens, uncond = sampling.encode_reference(model, torch.randn(1, 3, 224, 224, generator=g).to(device))
    poses = torch.rand(args.frames, 3, 256, 256, generator=g).to(device)
    background = torch.randn(1, 4, 32, 32, generator=g).to(device) * 0.18215
    x = torch.randn(args.frames, 4, 32, 32, generator=g).to(device)
    settings = sampling.SamplerSettings(steps=10, guidance=1.5, batch_size=args.frames)
    scheduler = sampling.make_scheduler(model)
    scheduler.set_timesteps(10)
    t = scheduler.timesteps[3]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        context, cfg = sampling.reference_context(tokens, uncond, settings)
        cond = sampling.prepare_conditions(model, context, cfg, poses, background)
        plain = _time(lambda: sampling.guided_noise(model, x, t, cond, settings), repeats=2, sync=sync)
        profile = StepProfile(device)
        for net in (model.unet, model.pose_controlnet, model.background_controlnet):
            profile.attach(net)
        sync()
        start = time.perf_counter()
        sampling.guided_noise(model, x, t, cond, settings)
        sync()
        hooked = time.perf_counter() - start
        profile.detach()
    best = best_throughput(device)
    return {"plain_s": plain, "hooked_s": hooked, "profile": profile, "best": best}


def report(result: dict, upstream_s: float | None) -> dict:
    """Per kind: seconds, share, achieved GFLOP/s and floor seconds; the step's floor and bound.

    Floors: GEMM-like kinds at the best measured GFLOP/s; attention at the smaller of its measured
    time and its multiply-adds at that rate plus its exponentials at ``torch.exp``'s rate; norms
    and the rest as measured. The bound also takes norms and the rest as free.
    """
    profile, best = result["profile"], result["best"]
    step = result["plain_s"]
    scale = step / result["hooked_s"]  # spread the hooks' own overhead over the kinds
    seconds = {k: v * scale for k, v in profile.seconds.items()}
    seconds["the rest"] = max(0.0, step - sum(seconds.values()))
    peak = max(best["gemm_gflops"], best["conv_gflops"]) * 1e9
    exp_s = profile.exps / best["exp_per_s"]
    floor = bound = 0.0
    rows = []
    for kind, spent in sorted(seconds.items(), key=lambda kv: -kv[1]):
        flops = profile.flops.get(kind, 0.0)
        if kind in GEMM_LIKE:
            best_s = flops / peak
        elif kind == "attention kernels":
            best_s = min(spent, flops / peak + exp_s)
        else:  # memory-bound: as measured
            best_s = spent
        floor += best_s
        bound += 0.0 if kind in ("norms", "the rest") else best_s
        rows.append({
            "kind": kind, "s": round(spent, 3), "share": round(spent / step, 3),
            "gflops": round(flops / spent / 1e9, 1) if flops and spent else None,
            "floor_s": round(best_s, 3),
        })  # fmt: skip
    out = {
        "step_s": round(step, 3),
        "best_gemm_gflops": round(best["gemm_gflops"], 1),
        "best_conv_gflops": round(best["conv_gflops"], 1),
        "attention_exps_s": round(exp_s, 3),
        "kinds": rows,
        "floor_s": round(floor, 3),
        "bound_s": round(bound, 3),
    }
    if upstream_s:
        out["ratio_now"] = round(upstream_s / step, 2)
        out["ratio_floor"] = round(upstream_s / floor, 2)
        out["ratio_bound"] = round(upstream_s / bound, 2)
    return out


def print_report(out: dict) -> None:
    gemm, conv = out["best_gemm_gflops"], out["best_conv_gflops"]
    print(
        f"one guided step: {out['step_s']:.2f} s; best GEMM {gemm:.0f} GFLOP/s, 3x3 conv {conv:.0f} GFLOP/s"
    )
    print(f"{'kind':22} {'s':>7} {'share':>6} {'GFLOP/s':>8} {'floor s':>8}")
    for r in out["kinds"]:
        gf = f"{r['gflops']:8.0f}" if r["gflops"] else f"{'':8}"
        print(f"{r['kind']:22} {r['s']:7.3f} {r['share']:6.1%} {gf} {r['floor_s']:8.3f}")
    print(f"softmax exponentials alone, at torch.exp's rate: {out['attention_exps_s']:.3f} s")
    print(f"floor at equal math: {out['floor_s']:.2f} s/step; with norms and the rest free too: "
          f"{out['bound_s']:.2f} s/step")  # fmt: skip
    if "ratio_now" in out:
        print(f"against upstream: {out['ratio_now']}x now, {out['ratio_floor']}x at the floor, "
              f"{out['ratio_bound']}x at the bound")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--width", default="quarter", choices=("tiny", "quarter", "full"))
    parser.add_argument(
        "--frames", type=int, default=16, help="frames per batch (the CFG batch is twice this)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--upstream-s-per-step",
        type=float,
        default=None,
        help="upstream's wall s/step from bench/disco.py's comparison (same machine, width)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    out = report(measure(args), args.upstream_s_per_step)
    print_report(out)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
