"""DisPose speed and memory: one sampler step on one tile (ControlNet + UNet), ours vs upstream.

Both sides get the SVD-XT 1.1 / DisPose.pth channel widths (1.5 B UNet + 0.7 B ControlNet) and the
same random weights: our modules are filled from one seed, and the upstream modules (imported from
``--upstream DIR``, a checkout of lihxxx/DisPose, never from this repository) are built on the meta
device and given the very same tensors (``load_state_dict(assign=True)``), so the weights are in
memory once. One "step" is what the sampler does per tile and denoising step: ControlNet then
UNet on the tile, with classifier-free guidance (uncond + cond).

Variants (``--variants``):

* ``upstream``: upstream ``ControlNetSVDModel`` + MimicMotion ``UNetSpatioTemporalConditionModel``,
  both CFG halves in one batch of 2, as ``Ctrl_Pipeline`` calls them;
* ``ours``: ``pipelines.dispose.sampling`` tile call, halves batched (``cfg_batched=True``);
* ``ours-seq``: the same, one half after the other (``cfg_batched=False``, the memory switch);
* ``ours-fp8``: ``ours`` with fp8 weight storage (``pipelines.core.fp8``), when available.

Repeats are interleaved (A, B, C, A, B, C, ...) because the CPU is shared; the median is reported
with ratios against ``upstream``. Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` (total,
and above the weights); on CPU the peak RSS of this process during the variant's runs (VmHWM after
resetting it through /proc/self/clear_refs), above the RSS before them.

    python bench/dispose.py --upstream ../DisPose                     # CPU, 64x64 px, 4-frame tile
    python bench/dispose.py --upstream ../DisPose --device cuda --dtype fp16 --height 576 --width 1024 \\
        --frames 16 --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

#: stable-video-diffusion-img2vid-xt-1-1/unet/config.json (the MimicMotion / DisPose UNet layout).
SVD_XT_UNET = {
    "sample_size": 96,
    "in_channels": 8,
    "out_channels": 4,
    "down_block_types": [
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "CrossAttnDownBlockSpatioTemporal",
        "DownBlockSpatioTemporal",
    ],
    "up_block_types": [
        "UpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
        "CrossAttnUpBlockSpatioTemporal",
    ],
    "block_out_channels": [320, 640, 1280, 1280],
    "addition_time_embed_dim": 256,
    "projection_class_embeddings_input_dim": 768,
    "layers_per_block": 2,
    "cross_attention_dim": 1024,
    "transformer_layers_per_block": 1,
    "num_attention_heads": [5, 10, 20, 20],
    "num_frames": 25,
}
DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class PeakMemory:
    """Peak memory of a block in MiB: CUDA allocator peak, else the process's peak RSS (VmHWM)."""

    def __init__(self, torch, device) -> None:
        self.torch, self.cuda = torch, device.type == "cuda"

    def start(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            self.base = self.torch.cuda.memory_allocated()
        else:
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.base = _status_kb("VmRSS") * 1024

    def stop(self) -> tuple[float, float]:
        """(peak, peak above the start) in MiB."""
        if self.cuda:
            self.torch.cuda.synchronize()
            peak = self.torch.cuda.max_memory_allocated()
        else:
            peak = _status_kb("VmHWM") * 1024
        return peak / 2**20, (peak - self.base) / 2**20


def fill_random(module, seed: int) -> None:
    """Seeded N(0, 1/fan_in) weights, norm scales near 1, small biases (fast: float32 draws)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.state_dict(keep_vars=True).items()):
            if not torch.is_floating_point(p):
                continue
            if p.dim() >= 2:
                val = torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel())
            else:
                val = (torch.rand(p.shape, generator=gen) - 0.5) * 0.2 + float(name.endswith("weight"))
            p.copy_(val)


def build_ours(config: dict, dtype, device):
    """Our UNet and ControlNet at the released widths, filled from seeds 1 and 2."""
    import torch
    from motionsuite.models.dispose.controlnet import DisPoseControlNet
    from motionsuite.models.dispose.unet import MimicMotionUNet

    with torch.device("meta"):
        unet = MimicMotionUNet.from_config(config)
        controlnet = DisPoseControlNet.from_unet_config(config, 1280)
    nets = []
    for net, seed in ((unet, 1), (controlnet, 2)):
        net = net.to_empty(device="cpu")
        fill_random(net, seed)
        net = net.to(device) if dtype == torch.float32 else net.to(device=device, dtype=dtype)
        nets.append(net.eval().requires_grad_(False))
    return nets


def import_upstream(folder: Path):
    """Upstream's UNet and ControlNet classes from a lihxxx/DisPose checkout (``mimicmotion/``)."""
    import diffusers.loaders

    if not (folder / "mimicmotion" / "modules" / "controlnet.py").is_file():
        raise SystemExit(f"--upstream {folder}: no mimicmotion/modules/controlnet.py (clone lihxxx/DisPose)")
    if not hasattr(diffusers.loaders, "FromOriginalControlNetMixin"):
        # removed from newer diffusers; upstream only uses it for from_single_file
        diffusers.loaders.FromOriginalControlNetMixin = type("FromOriginalControlNetMixin", (), {})
    sys.path.insert(0, str(folder))
    from mimicmotion.modules.controlnet import ControlNetSVDModel
    from mimicmotion.modules.unet import UNetSpatioTemporalConditionModel

    return UNetSpatioTemporalConditionModel, ControlNetSVDModel


def build_upstream(folder: Path, config: dict, ours_unet, ours_controlnet):
    """Upstream modules sharing our weight tensors (same key names, built on the meta device)."""
    import torch

    unet_cls, cn_cls = import_upstream(folder)
    if list(config["block_out_channels"]) != SVD_XT_UNET["block_out_channels"]:
        # upstream hard-codes the PointAdapter's output widths to the released ones
        import functools

        import mimicmotion.modules.controlnet as upstream_cn

        upstream_cn.PointAdapter = functools.partial(
            upstream_cn.PointAdapter, embedding_channels=1280, channels=config["block_out_channels"]
        )
    kwargs = {k: v for k, v in config.items() if not k.startswith("_")}
    with torch.device("meta"):
        unet = unet_cls(**kwargs)
        controlnet = cn_cls(**{k: v for k, v in kwargs.items() if k != "up_block_types"})
    unet.load_state_dict(ours_unet.state_dict(), strict=True, assign=True)
    controlnet.load_state_dict(ours_controlnet.state_dict(), strict=True, assign=True)
    for net in (unet, controlnet):
        leftover = [n for n, b in net.named_buffers() if b.is_meta]
        if leftover:
            raise SystemExit(f"upstream buffers not in the state dict: {leftover[:4]}")
    return unet.eval().requires_grad_(False), controlnet.eval().requires_grad_(False)


def make_inputs(args, torch, dtype, device) -> dict:
    """One tile's inputs for both CFG halves (uncond first), as the sampler builds them."""
    import numpy as np

    g = torch.Generator().manual_seed(0)
    f, h, w = args.frames, args.height, args.width
    x = torch.randn(1, f, 4, h // 8, w // 8, generator=g)
    lat = torch.randn(1, 1, 4, h // 8, w // 8, generator=g).expand(1, f, -1, -1, -1)
    ctx = torch.randn(1, 1, 1024, generator=g)
    pose = torch.randn(f, 320, h // 8, w // 8, generator=g) * 0.1
    cand = torch.rand(f, 18, 2, generator=g).double().numpy()
    ids, score = np.arange(18.0)[None], np.ones((1, 18))
    points = [{"candidate": cand[i], "subset": ids, "score": score} for i in range(f)]
    cast = {"device": device, "dtype": dtype}
    return {
        "x": x.to(**cast),
        "t": torch.tensor(1.2, device=device),
        "ctx": torch.cat([torch.zeros_like(ctx), ctx]).to(**cast),
        "lat": torch.cat([torch.zeros_like(lat), lat]).to(**cast),
        "pose": torch.cat([torch.zeros_like(pose), pose]).to(**cast),
        "ids": torch.tensor([[6.0, 127.0, 0.02]] * 2, **cast),
        "flow": (torch.randn(1, f - 1, 2, h, w, generator=g) * 3).to(**cast),
        "traj": (torch.randn(1, f - 1, 2, h, w, generator=g) * 0.1).to(**cast),
        "points": points,
        "emb": torch.randn(1, 18, 1280, generator=g).to(**cast),
    }


def step_ours(unet, controlnet, inp: dict, batched: bool):
    """One tile, both halves, through the sampler's own tile call; returns (2,F,4,h,w)."""
    import torch
    from motionsuite.pipelines.dispose.sampling import _denoise_tile

    f = inp["x"].shape[1]
    groups = [[0, 1]] if batched else [[0], [1]]
    outs = []
    for group in groups:
        n = len(group)
        outs.append(
            _denoise_tile(
                unet,
                controlnet,
                inp["x"].expand(n, -1, -1, -1, -1),
                inp["t"],
                inp["ctx"][group],
                inp["ids"][group],
                inp["lat"][group],
                torch.cat([inp["pose"][i * f : (i + 1) * f] for i in group]),
                inp["flow"].expand(n, -1, -1, -1, -1),
                inp["traj"].expand(n, -1, -1, -1, -1),
                inp["points"],
                inp["emb"],
                1.0,
            )
        )
    return torch.cat(outs)


def step_upstream(unet, controlnet, inp: dict):
    """One tile, both halves in one batch, called as upstream's ``Ctrl_Pipeline`` does."""
    import torch

    x = torch.cat([inp["x"].expand(2, -1, -1, -1, -1), inp["lat"]], dim=2)
    h, w = inp["flow"].shape[-2:]
    down, mid, _ = controlnet(
        x,
        inp["t"],
        encoder_hidden_states=inp["ctx"],
        controlnet_cond=torch.zeros(1, 3, h, w, device=x.device, dtype=x.dtype),
        controlnet_flow=inp["flow"].expand(2, -1, -1, -1, -1),
        traj_flow=inp["traj"].expand(2, -1, -1, -1, -1),
        pose_latents=inp["pose"],
        point_list=inp["points"],
        ref_point_emb=inp["emb"],
        added_time_ids=inp["ids"],
        conditioning_scale=1.0,
        return_dict=False,
    )
    return unet(
        x,
        inp["t"],
        encoder_hidden_states=inp["ctx"],
        added_time_ids=inp["ids"],
        pose_latents=inp["pose"],
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
        return_dict=False,
    )[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--upstream", type=Path, default=None, help="lihxxx/DisPose checkout (has mimicmotion/)"
    )
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--frames", type=int, default=4, help="tile size (frames per UNet call)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per variant (after one warm-up)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
    parser.add_argument("--variants", default="upstream,ours,ours-seq,ours-fp8")
    parser.add_argument("--tiny", action="store_true", help="tiny test widths (smoke run), not the release")
    args = parser.parse_args()

    import _pack

    _pack.ensure_package()
    import torch

    torch.set_grad_enabled(False)
    device, dtype = torch.device(args.device), getattr(torch, DTYPES[args.dtype])
    if args.height % 64 or args.width % 64:
        raise SystemExit("--height and --width must be multiples of 64")
    if args.tiny:
        import dispose_tiny

        config = {**dispose_tiny.UNET, "cross_attention_dim": 1024, "addition_time_embed_dim": 256}
        config["projection_class_embeddings_input_dim"] = 768
        config["block_out_channels"] = [320, 320, 320, 320]
    else:
        config = SVD_XT_UNET
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "upstream" in variants and args.upstream is None:
        variants.remove("upstream")
        print("no --upstream DIR: upstream variant skipped", file=sys.stderr)

    start = time.perf_counter()
    unet, controlnet = build_ours(config, dtype, device)
    params = sum(p.numel() for m in (unet, controlnet) for p in m.parameters())
    runners = {}
    if "upstream" in variants:
        up_unet, up_cn = build_upstream(args.upstream, config, unet, controlnet)
        runners["upstream"] = lambda inp: step_upstream(up_unet, up_cn, inp)
    runners["ours"] = lambda inp: step_ours(unet, controlnet, inp, batched=True)
    runners["ours-seq"] = lambda inp: step_ours(unet, controlnet, inp, batched=False)
    if "ours-fp8" in variants:
        from motionsuite.pipelines.core import fp8

        fp8_nets = []
        for net in (unet, controlnet):
            with torch.device("meta"):
                twin = type(net).from_config(config) if hasattr(net, "from_config") else None
                twin = twin or type(net).from_unet_config(config, 1280)
            twin.load_state_dict(net.state_dict(), assign=True)  # shares ours, then converts a copy
            fp8_nets.append(fp8.store_weights_in_fp8(twin.eval(), dtype))
        runners["ours-fp8"] = lambda inp: step_ours(*fp8_nets, inp, batched=True)
    variants = [v for v in variants if v in runners]
    inputs = make_inputs(args, torch, dtype, device)
    build_s = time.perf_counter() - start

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    outputs, times, memory = {}, {v: [] for v in variants}, {}
    meter = PeakMemory(torch, device)
    for v in variants:  # warm-up, output and peak memory of one step
        meter.start()
        outputs[v] = runners[v](inputs).float().cpu()
        memory[v] = meter.stop()
    for _ in range(args.repeats):
        for v in variants:
            sync()
            t0 = time.perf_counter()
            runners[v](inputs)
            sync()
            times[v].append(time.perf_counter() - t0)

    ref = "upstream" if "upstream" in variants else variants[0]
    median = {v: statistics.median(times[v]) for v in variants}
    result = {
        "config": "tiny" if args.tiny else "svd-xt-1.1 widths",
        "params_M": round(params / 1e6, 1),
        "device": str(device),
        "dtype": args.dtype,
        "tile": f"{args.frames}x{args.height}x{args.width}",
        "build_s": round(build_s, 1),
        "variants": {
            v: {
                "s_per_step": round(median[v], 3),
                "runs": [round(t, 3) for t in times[v]],
                f"speedup_vs_{ref}": round(median[ref] / median[v], 3),
                "peak_mb": round(memory[v][0], 1),
                "peak_above_start_mb": round(memory[v][1], 1),
                f"max_abs_diff_vs_{ref}": float((outputs[v] - outputs[ref]).abs().max()),
                f"rel_l2_vs_{ref}": float((outputs[v] - outputs[ref]).norm() / outputs[ref].norm()),
            }
            for v in variants
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
