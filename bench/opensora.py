"""Open-Sora STDiT3 speed and memory: ours against upstream's, same random weights, same run.

One timed unit is one sampling step's DiT call: a classifier-free-guidance forward on a batch of 2
(prompt + null caption) at the chosen size, as the rectified-flow sampler makes it. The two models
alternate (ours, upstream, ours, upstream …) so load from other processes on a shared CPU hits both
alike; the median is reported, and the ratio ours / upstream.

Peak memory is what one forward adds on top of the weights and inputs: on CUDA the allocator's peak
(``max_memory_allocated``) minus what was allocated before the call; on the CPU the peak resident
size during one forward in a fresh process per model (sampled every millisecond, glibc told to
map every block of 64 KiB or more on its own so that freed memory leaves the resident size), minus the
size before it.

Upstream is imported from a checkout of hpcaitech/Open-Sora, branch ``opensora/v1.2`` (``--upstream
DIR``), in an environment with its own dependencies (einops, timm, rotary_embedding_torch, mmengine).
Missing packages that upstream imports but does not need for inference (colossalai; xformers, given
an SDPA stand-in with xformers' block-diagonal mask semantics) are replaced by small stand-ins here;
flash-attn is used by upstream when installed, on CUDA in fp16/bf16, as its release config does.

    python bench/opensora.py --upstream ~/Open-Sora --depth 2 --resolution 144p --frames 17  # CPU
    python bench/opensora.py --upstream ~/Open-Sora --device cuda --precision bf16 --resolution 720p \
        --frames 102                                                    # full STDiT3-XL/2 on a GPU
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


# ------------------------------------------------------------------------------------------ models
def _config(args) -> dict:
    return dict(
        depth=args.depth, hidden_size=args.hidden, num_heads=args.heads, patch_size=[1, 2, 2], in_channels=4,
        caption_channels=4096, model_max_length=300, qk_norm=True, pred_sigma=True, input_sq_size=512,
    )  # fmt: skip


def _stand_ins(root: Path) -> None:
    """Register modules upstream imports at load time but inference never uses (see module doc)."""

    def module(name: str, **attrs) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__spec__ = importlib.machinery.ModuleSpec(name, None)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
        return mod

    class Unused:
        def __init__(self, *args, **kwargs):
            pass

    if importlib.util.find_spec("colossalai") is None:
        module("colossalai")
        module("colossalai.booster", Booster=Unused)
        module("colossalai.checkpoint_io", GeneralCheckpointIO=Unused)
        module("colossalai.utils", get_current_device=lambda: torch.device("cpu"))
        module("colossalai.cluster", DistCoordinator=Unused)
    if importlib.util.find_spec("xformers") is None:

        class BlockDiagonalMask:
            def __init__(self, q_lens, kv_lens):
                self.q_lens, self.kv_lens = list(q_lens), list(kv_lens)

            @classmethod
            def from_seqlens(cls, q_seqlen, kv_seqlen=None):
                return cls(q_seqlen, q_seqlen if kv_seqlen is None else kv_seqlen)

        def memory_efficient_attention(q, k, v, p=0.0, attn_bias=None):
            q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (1, H, ΣN, D)
            mask = None
            if attn_bias is not None:  # block diagonal: query i of sample b sees keys of sample b only
                qb = torch.repeat_interleave(torch.tensor(attn_bias.q_lens, device=q.device))
                kb = torch.repeat_interleave(torch.tensor(attn_bias.kv_lens, device=q.device))
                mask = qb[:, None] == kb[None, :]
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2)

        fmha = module("xformers.ops.fmha", BlockDiagonalMask=BlockDiagonalMask)
        ops = module("xformers.ops", fmha=fmha, memory_efficient_attention=memory_efficient_attention)
        module("xformers", ops=ops)
    # package shells: import only the files STDiT3 needs, not every model, dataset and video reader
    for name in ("opensora.models", "opensora.datasets"):
        module(name, IMG_FPS=120).__path__ = [str(root / name.replace(".", "/"))]


def build_upstream(args, state: dict) -> torch.nn.Module:
    root = Path(args.upstream).expanduser().resolve()
    if not (root / "opensora" / "models" / "stdit" / "stdit3.py").is_file():
        raise SystemExit(f"--upstream {root}: no opensora/models/stdit/stdit3.py (check out opensora/v1.2)")
    sys.path.insert(0, str(root))
    _stand_ins(root)
    from opensora.models.stdit.stdit3 import STDiT3, STDiT3Config

    dtype, cuda = DTYPES[args.precision], args.device.startswith("cuda")
    flash = cuda and dtype != torch.float32 and importlib.util.find_spec("flash_attn") is not None
    model = STDiT3(STDiT3Config(**_config(args), enable_flash_attn=flash, enable_layernorm_kernel=False))
    model.load_state_dict(state)
    return model.eval().requires_grad_(False).to(args.device, dtype)


def build_ours(args) -> tuple[torch.nn.Module, dict]:
    import _pack

    _pack.ensure_package()
    from motionsuite.models.opensora import STDiT3, STDiT3Config
    from parity_utils import random_state_dict

    torch.manual_seed(0)
    model = STDiT3(STDiT3Config.from_dict(_config(args)))
    state = random_state_dict(model, 1, gain=0.5)
    state["rope.freqs"] = model.rope.freqs.clone()
    model.load_state_dict(state)
    model.swap_blocks, model.offload_device = args.block_swap, torch.device("cpu")
    return model.eval().requires_grad_(False).to(args.device, DTYPES[args.precision]), state


def inputs(args, model) -> dict:
    """The sampler's CFG call: latents twice, prompt features + the learned null caption, mask reused."""
    from motionsuite.pipelines.opensora import aspect

    height, width = aspect.image_size(args.resolution, args.aspect)
    latent_t = args.frames // 17 * 5 + (args.frames % 17 + 3) // 4 if args.frames > 1 else 1
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, latent_t, height // 8, width // 8, generator=g).repeat(2, 1, 1, 1, 1)
    y = torch.randn(1, 1, 300, 4096, generator=g)
    null = model.y_embedder.y_embedding.detach().float().cpu()[None, None]
    mask = torch.zeros(2, 300, dtype=torch.long)
    mask[:, : args.tokens] = 1
    dev = args.device

    def scalar(value: float) -> torch.Tensor:
        return torch.tensor([float(value)], device=dev)

    batch = dict(
        x=x.to(dev), timestep=scalar(700.0).repeat(2), y=torch.cat([y, null]).to(dev), mask=mask.to(dev),
        fps=scalar(24.0), height=scalar(height), width=scalar(width),
    )  # fmt: skip
    if args.x_mask:  # first latent frame is a clean reference (image-to-video)
        batch["x_mask"] = torch.ones(2, latent_t, dtype=torch.bool, device=dev)
        batch["x_mask"][:, 0] = False
    return batch


# -------------------------------------------------------------------------------------- measuring
def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _forward(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).float()


def cpu_peak_mb(model, batch) -> float:
    """Peak RSS above the pre-forward size during one forward (sampled in a thread every ~1 ms)."""
    base, peak, done = _rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.001)

    thread = threading.Thread(target=sample)
    thread.start()
    _forward(model, batch)
    done.set()
    thread.join()
    return (max(peak[0], _rss_bytes()) - base) / 2**20


def cuda_peak_mb(model, batch) -> float:
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    _forward(model, batch)
    torch.cuda.synchronize()
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def weights_mb(model) -> float:
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]) / 2**20


def memory_in_fresh_process(args, which: str) -> float:
    cmd = [sys.executable, __file__, *sys.argv[1:], "--memory-of", which]
    # glibc: every block ≥ 64 KiB its own mapping, returned on free, so RSS follows live tensors
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mb"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--upstream", help="checkout of hpcaitech/Open-Sora opensora/v1.2 (omit: ours only)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=list(DTYPES), default="fp32")
    p.add_argument("--resolution", default="144p")
    p.add_argument("--aspect", default="16:9 landscape")
    p.add_argument("--frames", type=int, default=17, help="pixel frames (17 → 5 latent frames)")
    p.add_argument("--depth", type=int, default=28, help="block pairs (28 = STDiT3-XL/2; fewer for a CPU)")
    p.add_argument("--hidden", type=int, default=1152)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--tokens", type=int, default=30, help="real caption tokens (of 300)")
    p.add_argument("--x-mask", action="store_true", help="first latent frame as a clean reference (I2V)")
    p.add_argument("--block-swap", type=int, default=0, help="ours: block pairs kept on the CPU")
    p.add_argument("--repeats", type=int, default=3, help="timed forwards per model (interleaved)")
    p.add_argument("--memory-of", choices=["ours", "upstream"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device.startswith("cuda") is False and args.block_swap:
        print("note: block swap only moves memory on a GPU", file=sys.stderr)

    ours, state = build_ours(args)
    models = {"ours": ours}
    if args.upstream:
        models["upstream"] = build_upstream(args, state)
    del state
    batch = inputs(args, ours)
    cuda = args.device.startswith("cuda")
    if args.memory_of:  # child process: one model, one forward
        model = models[args.memory_of]
        models.clear()
        print(json.dumps({"peak_mb": cpu_peak_mb(model, batch)}))
        return

    results = {name: {"weights_mb": round(weights_mb(m), 1), "seconds": []} for name, m in models.items()}
    outputs = {name: _forward(m, batch).cpu() for name, m in models.items()}  # warm-up, and same result?
    for _ in range(args.repeats):
        for name, model in models.items():  # interleaved: ours, upstream, ours, upstream …
            _sync(args.device)
            start = time.perf_counter()
            _forward(model, batch)
            _sync(args.device)
            results[name]["seconds"].append(time.perf_counter() - start)
    for name, model in models.items():
        peak = cuda_peak_mb(model, batch) if cuda else memory_in_fresh_process(args, name)
        results[name].update(
            s_per_step=round(statistics.median(results[name]["seconds"]), 4),
            forward_peak_mb=round(peak, 1),
            output_mean_abs=round(float(outputs[name].abs().mean()), 6),
        )
        results[name]["seconds"] = [round(s, 4) for s in results[name]["seconds"]]
    report = {
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "precision": args.precision,
        "size": f"{args.resolution} {args.aspect}, {args.frames} frames, batch 2 (CFG)",
        "depth": args.depth,
        "hidden": args.hidden,
        "block_swap": args.block_swap,
        **results,
    }
    if "upstream" in results:
        report["output_max_abs_diff"] = float((outputs["ours"] - outputs["upstream"]).abs().max())
        report["time_ratio_ours_over_upstream"] = round(
            results["ours"]["s_per_step"] / results["upstream"]["s_per_step"], 3
        )
        report["peak_ratio_ours_over_upstream"] = round(
            results["ours"]["forward_peak_mb"] / max(results["upstream"]["forward_peak_mb"], 1e-6), 3
        )
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
