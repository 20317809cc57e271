"""DisCo speed and memory: seconds per DDIM step and peak memory at 256² for a batch of frames.

Random weights in the tiny test config (default), a quarter-width SD-1 (``--width quarter``:
160/320/640 channels, 12-layer CLIP) or the real SD-1 / ViT-L widths (``--width full``, 859 M UNet
+ two ControlNets). Each CFG step runs the UNet and both ControlNets on 2×batch latents (temporal
model, ``--temporal``: on one window of ``--frames``). Peak memory: CUDA max allocated, else peak
RSS of this process; ``import_mb`` is the RSS right after importing torch/diffusers/transformers.

``--upstream-python PY --upstream-dir DIR`` compares with upstream DisCo's ``Net``
(``ref_attn_clip_combine_controlnet``) run by PY (a venv with its pins: diffusers 0.14,
transformers 4.27) from a checkout DIR of Wangt-CN/DisCo. One seeded random model is written once
in the released layout (fp32); each side loads it in its own process, and the runs alternate
(ours, upstream, ours, ...; ``--repeats``) so a busy machine slows both alike. Per side: wall and
CPU seconds per step (medians over steps and repeats; the first step is a warm-up) and the peak RSS
while sampling (``/proc`` high-water mark reset after loading, so it is weights + activations).
Use ``--threads 1`` on a shared machine: single-thread CPU time hardly depends on other load.

``--load`` instead measures loading: a DeepSpeed checkpoint of the chosen config is written in the
released fp16 layout, then loaded in a fresh process through ``load_disco`` (the user path).

    python bench/disco.py --width quarter --frames 16 --batch-size 16 \
        --upstream-python /path/venv/bin/python --upstream-dir /path/DisCo
    python bench/disco.py --frames 16 --batch-size 16 --device cuda --width full --precision fp16
    python bench/disco.py --load --precision fp16
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# Real SD-1 / sd-image-variations widths: the tiny test configs (tests/disco_tiny.py) with the
# released sizes put back, so both stay the same architecture.
FULL_UNET_SIZES = {
    "sample_size": 64,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "cross_attention_dim": 768,
}
FULL_VAE_SIZES = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2}
QUARTER_UNET_SIZES = {**FULL_UNET_SIZES, "sample_size": 32, "block_out_channels": [160, 320, 640, 640]}
QUARTER_VAE_SIZES = {"block_out_channels": [64, 128, 256, 256], "layers_per_block": 2}
FULL_CLIP = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 768,
}
QUARTER_CLIP = {
    **FULL_CLIP,
    "hidden_size": 512,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
}
DTYPES = ("fp32", "fp16", "bf16")
WIDTHS = ("tiny", "quarter", "full")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _config_dicts(width: str) -> dict:
    """Plain-dict configs (JSON-able, so the upstream process can rebuild the same model)."""
    import disco_tiny

    if width == "tiny":
        return {"unet": disco_tiny.UNET, "vae": disco_tiny.VAE, "clip": disco_tiny.CLIP}
    unet_sizes, vae_sizes, clip = {
        "quarter": (QUARTER_UNET_SIZES, QUARTER_VAE_SIZES, QUARTER_CLIP),
        "full": (FULL_UNET_SIZES, FULL_VAE_SIZES, FULL_CLIP),
    }[width]
    vae = {**{k: v for k, v in disco_tiny.VAE.items() if k != "sample_size"}, **vae_sizes}
    return {"unet": {**disco_tiny.UNET, **unet_sizes}, "vae": vae, "clip": clip}


def _configs(width: str):
    import disco_tiny
    from transformers import CLIPVisionConfig

    dicts = _config_dicts(width)
    return {**dicts, "clip": CLIPVisionConfig(**dicts["clip"]), "scheduler": disco_tiny.SCHEDULER}


def _imports():
    import _pack

    _pack.ensure_package()
    import diffusers  # noqa: F401  (counted in the import baseline)
    import torch
    from motionsuite.pipelines.disco import loading, sampling

    return torch, loading, sampling


def bench_sampling(args) -> dict:
    torch, loading, sampling = _imports()
    import_mb = _rss_mb()
    model = loading.build_model(_configs(args.width), temporal=args.temporal)
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]
    device = torch.device(args.device)
    model.to(device=device, dtype=dtype)
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(1, 3, 224, 224, generator=g)
    cond, uncond = sampling.encode_reference(model, ref.to(device))
    poses = torch.rand(args.frames, 3, 256, 256, generator=g)
    background = torch.randn(1, 4, 32, 32, generator=g)
    times: list[float] = []
    last = [time.perf_counter()]

    def on_step(done: int, total: int, x0: torch.Tensor) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        times.append(now - last[0])
        last[0] = now

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    settings = sampling.SamplerSettings(
        steps=args.steps + 1, guidance=1.5, batch_size=args.batch_size, window=args.frames
    )
    # steps+1 DDIM steps; the first is a warm-up and is not counted
    sampling.sample(model, cond, uncond, poses, background, settings, callback=on_step)
    timed = times[1:] if len(times) > 1 else times
    cuda = device.type == "cuda"
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else _rss_mb()
    return {
        "config": args.width,
        "model": "temporal" if args.temporal else "image",
        "device": str(device),
        "precision": args.precision,
        "frames": args.frames,
        "batch_size": args.frames if args.temporal else args.batch_size,
        "s_per_step_per_batch": sum(timed) / len(timed),
        "peak_mb": round(peak, 1),
        **({} if cuda else {"import_mb": round(import_mb, 1), "delta_mb": round(peak - import_mb, 1)}),
    }


def bench_loading(args) -> dict:
    """Write a released-layout checkpoint (fp16, CLIP fp32), then load it in a fresh process."""
    torch, loading, _ = _imports()
    import disco_tiny

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = _configs(args.width)
        model = loading.build_model(configs, temporal=args.temporal)
        state = {
            k: v if k.startswith("clip_image_encoder.") else v.half()
            for k, v in loading.released_state_dict(model).items()
        }
        del model
        disco_tiny.write_deepspeed_checkpoint(root / "tiktok_cfg" / "mp_rank_00_model_states.pt", state)
        size_mb = sum(v.numel() * v.element_size() for v in state.values()) / 2**20
        del state
        disco_tiny.write_base_folder(root / "base")
        if args.width != "tiny":  # the tiny configs were written; put the wanted widths in
            for sub, cfg in (("unet", configs["unet"]), ("vae", configs["vae"])):
                (root / "base" / sub / "config.json").write_text(json.dumps(cfg))
            (root / "base" / "image_encoder" / "config.json").write_text(
                json.dumps(_config_dicts(args.width)["clip"])
            )
        cmd = [sys.executable, __file__, "--measure-load", str(root), "--precision", args.precision]
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return {"config": args.width, "checkpoint_mb": round(size_mb, 1), **result}


def measure_load(root: Path, precision: str) -> dict:
    torch, loading, _ = _imports()
    import_mb = _rss_mb()
    start = time.perf_counter()
    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    model = loading.load_disco(root / "base", root / "tiktok_cfg" / "mp_rank_00_model_states.pt", dtype)
    for module in model.modules().values():  # touch every weight, as a forward pass would
        for p in module.parameters():
            p.float().sum()
    return {
        "precision": precision,
        "temporal": model.temporal,
        "load_s": round(time.perf_counter() - start, 2),
        "import_mb": round(import_mb, 1),
        "peak_mb": round(_rss_mb(), 1),
        "delta_mb": round(_rss_mb() - import_mb, 1),
    }


# ---------------------------------------------------------------- ours vs upstream, same weights

GUIDANCE, SEED = 1.5, 42
_LOAD_PEAK: list[float] = []  # peak RSS before the sampling reset (imports + loading)


def _sampling_peak_reset() -> None:
    """Reset the process's RSS high-water mark (Linux), so the next peak is the sampling one."""
    _LOAD_PEAK.append(_status_mb("VmHWM"))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _status_mb(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process. Unlike ``ru_maxrss``, not inherited
    from the parent at fork, so a worker's figures are its own."""
    with open("/proc/self/status") as f:
        return int(re.search(field + r":\s+(\d+)", f.read()).group(1)) / 1024


def _sampling_peak_mb() -> float:
    return _status_mb("VmHWM")


def _bench_inputs(frames: int):
    """Reference (CLIP-normalised 224²), pose frames in [0,1], background in [-1,1]: same both sides."""
    import torch

    g = torch.Generator().manual_seed(0)
    reference = torch.randn(1, 3, 224, 224, generator=g)
    poses = torch.rand(frames, 3, 256, 256, generator=g)
    background = torch.rand(1, 3, 256, 256, generator=g) * 2 - 1
    return reference, poses, background


def _peaks(import_mb: float) -> dict:
    sampling = _sampling_peak_mb()
    return {"import_mb": import_mb, "sampling_peak_mb": sampling, "peak_mb": max(sampling, *_LOAD_PEAK)}


def _step_stats(wall: list[float], cpu: list[float]) -> dict:
    return {"wall_s": wall, "cpu_s": cpu}


def write_shared_model(workdir: Path, width: str) -> None:
    """One seeded random DisCo image model: configs + a DeepSpeed-style fp32 checkpoint (released keys)."""
    torch, loading, _ = _imports()
    import disco_tiny

    torch.manual_seed(SEED)
    dicts = _config_dicts(width)
    model = loading.build_model(_configs(width))
    for module in model.modules().values():  # zero-initialised layers too, so no branch is trivial
        for p in module.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.02)
    state = loading.released_state_dict(model)
    del model
    disco_tiny.write_deepspeed_checkpoint(workdir / "ckpt" / "mp_rank_00_model_states.pt", state)
    del state
    disco_tiny.write_base_folder(workdir / "base")
    for sub in ("unet", "vae"):
        (workdir / "base" / sub / "config.json").write_text(json.dumps(dicts[sub]))
    (workdir / "base" / "image_encoder" / "config.json").write_text(json.dumps(dicts["clip"]))
    (workdir / "configs.json").write_text(json.dumps({**dicts, "scheduler": disco_tiny.SCHEDULER}))


def worker_ours(workdir: Path, frames: int, steps: int) -> dict:
    torch, loading, sampling = _imports()
    import_mb = _status_mb("VmRSS")
    model = loading.load_disco(workdir / "base", workdir / "ckpt" / "mp_rank_00_model_states.pt")
    reference, poses, background = _bench_inputs(frames)
    cond, uncond = sampling.encode_reference(model, reference)
    _sampling_peak_reset()
    latent = sampling.encode_background(model, background)
    wall, cpu = [], []
    last = [time.perf_counter(), time.process_time()]

    def on_step(done: int, total: int, x0) -> None:
        now = [time.perf_counter(), time.process_time()]
        wall.append(now[0] - last[0])
        cpu.append(now[1] - last[1])
        last[:] = now

    settings = sampling.SamplerSettings(steps=steps + 1, guidance=GUIDANCE, batch_size=frames, seed=SEED)
    sampling.sample(model, cond, uncond, poses, latent, settings, callback=on_step)
    return {**_step_stats(wall[1:], cpu[1:]), **_peaks(import_mb)}


def worker_upstream(workdir: Path, upstream_dir: Path, frames: int, steps: int) -> dict:
    """Runs under the upstream venv: builds upstream ``Net`` and times its ControlNet+UNet calls."""
    import logging
    import types

    import numpy as np
    import torch
    import torch.nn.functional as F
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from PIL import Image
    from torch import nn
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    import_mb = _status_mb("VmRSS")
    configs = json.loads((workdir / "configs.json").read_text())
    base = workdir / "upstream_base"  # upstream reads weights from the base folder, then the checkpoint
    if not (base / "unet").exists():
        UNet2DConditionModel(**configs["unet"]).save_pretrained(base / "unet")
        AutoencoderKL(**configs["vae"]).save_pretrained(base / "vae")
        clip = CLIPVisionModelWithProjection(CLIPVisionConfig(**configs["clip"]))
        clip.save_pretrained(base / "image_encoder")
        del clip
        CLIPImageProcessor().save_pretrained(base / "feature_extractor")
        scheduler = {k: v for k, v in configs["scheduler"].items() if not k.startswith("_")}
        scheduler.pop("clip_sample", None)
        PNDMScheduler(**scheduler).save_pretrained(base / "scheduler")
    # upstream's ``config``/``utils`` packages pull in training-only modules; give Net what it uses
    sys.path.insert(0, str(upstream_dir))
    names = dict(os=os, nn=nn, np=np, F=F, torch=torch, Image=Image, logger=logging.getLogger("disco"))
    names.update(ensure_dirname=lambda *a, **k: None, data2file=None, dl2ld=None)
    config = types.ModuleType("config")
    config.__path__ = [str(upstream_dir / "config")]
    config.__dict__.update(names)
    config.__all__ = list(names)
    utils = types.ModuleType("utils")
    utils.__path__ = []
    dist = types.ModuleType("utils.dist")
    dist.synchronize, dist.get_rank = (lambda: None), (lambda: 0)
    sys.modules.update({"config": config, "utils": utils, "utils.dist": dist})
    from config.ref_attn_clip_combine_controlnet.net import Net

    class Args(dict):
        def __getattr__(self, key):
            try:
                return self[key]
            except KeyError as e:
                raise AttributeError(key) from e

    args = Args(
        pretrained_model_path=str(base), eval_scheduler="ddim",
        enable_xformers_memory_efficient_attention=False, ref_null_caption=False, refer_sdvae=True,
        gradient_checkpointing=False, drop_text=0.0,
        scale_factor=0.18215, guidance_scale=GUIDANCE, controlnet_conditioning_scale_cond=1.0,
        controlnet_conditioning_scale_ref=1.0, combine_clip_local=True, refer_clip_proj=False, drop_ref=0.05,
        num_inf_images_per_prompt=1, num_inference_steps=steps + 1, seed=SEED, stepwise_sample_depth=-1,
        freeze_unet=False, unet_unfreeze_type="all",
    )  # fmt: skip
    net = Net(args)
    state = torch.load(workdir / "ckpt" / "mp_rank_00_model_states.pt", map_location="cpu")["module"]
    result = net.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("position_ids")]  # a buffer, not a weight
    if missing or result.unexpected_keys:
        raise RuntimeError(f"upstream Net does not take the shared weights: {result}")
    del state
    nn.Module.train(net, False)  # Net.train() re-freezes and returns None
    net.image_decoder = lambda latents: latents  # decoding is not part of a sampler step
    wall, cpu, start = [], [], {}
    controlnet_forward, unet_forward = net.controlnet.forward, net.unet.forward

    def timed_controlnet(*a, **k):
        start["t"] = (time.perf_counter(), time.process_time())
        return controlnet_forward(*a, **k)

    def timed_unet(*a, **k):
        out = unet_forward(*a, **k)
        wall.append(time.perf_counter() - start["t"][0])
        cpu.append(time.process_time() - start["t"][1])
        return out

    net.controlnet.forward, net.unet.forward = timed_controlnet, timed_unet
    reference, poses, background = _bench_inputs(frames)
    inputs = {
        "label_imgs": torch.zeros(frames, 3, 256, 256),
        "reference_img": reference.expand(frames, -1, -1, -1),
        "reference_img_controlnet": background.expand(frames, -1, -1, -1),
        "cond_imgs": poses,
    }
    _sampling_peak_reset()
    with torch.no_grad():
        net.forward(inputs)
    return {**_step_stats(wall[1:], cpu[1:]), **_peaks(import_mb)}


def compare_with_upstream(args) -> dict:
    """Alternate ours/upstream worker processes on one shared random model; medians per side."""
    runs: dict[str, list[dict]] = {"ours": [], "upstream": []}
    common = ["--frames", str(args.frames), "--steps", str(args.steps), "--threads", str(args.threads)]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        write_shared_model(workdir, args.width)
        commands = {
            "ours": [sys.executable, __file__, "--worker", "ours", "--workdir", tmp, *common],
            "upstream": [
                args.upstream_python, __file__, "--worker", "upstream", "--workdir", tmp,
                "--upstream-dir", str(args.upstream_dir), *common,
            ],
        }  # fmt: skip
        for _ in range(args.repeats):
            for side in ("ours", "upstream"):
                proc = subprocess.run(commands[side], capture_output=True, text=True)
                if proc.returncode:
                    raise RuntimeError(f"{side} worker failed:\n{proc.stderr[-3000:]}")
                runs[side].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    table = {}
    for side, results in runs.items():
        table[side] = {
            "wall_s_per_step": round(statistics.median(v for r in results for v in r["wall_s"]), 3),
            "cpu_s_per_step": round(statistics.median(v for r in results for v in r["cpu_s"]), 3),
            "sampling_peak_mb": round(statistics.median(r["sampling_peak_mb"] for r in results)),
            "process_peak_mb": round(statistics.median(r["peak_mb"] for r in results)),
            "import_mb": round(statistics.median(r["import_mb"] for r in results)),
        }
        table[side]["sampling_above_import_mb"] = table[side]["sampling_peak_mb"] - table[side]["import_mb"]
    ours, up = table["ours"], table["upstream"]
    return {
        "config": args.width,
        "frames": args.frames,
        "threads": args.threads,
        "repeats": args.repeats,
        **table,
        "speedup_wall": round(up["wall_s_per_step"] / ours["wall_s_per_step"], 2),
        "speedup_cpu": round(up["cpu_s_per_step"] / ours["cpu_s_per_step"], 2),
        "sampling_peak_ratio": round(ours["sampling_peak_mb"] / up["sampling_peak_mb"], 2),
    }


def print_table(result: dict) -> None:
    print(f"DisCo image model, {result['config']} width, {result['frames']} frames, CPU fp32, "
          f"{result['threads']} thread(s), {result['repeats']} alternating repeat(s), medians")  # fmt: skip
    print(f"{'':10} {'wall s/step':>12} {'CPU s/step':>11} {'sampling peak MB':>17} {'of it imports MB':>17}")
    for side in ("upstream", "ours"):
        r = result[side]
        print(f"{side:10} {r['wall_s_per_step']:12.2f} {r['cpu_s_per_step']:11.2f} "
              f"{r['sampling_peak_mb']:17d} {r['import_mb']:17d}")  # fmt: skip
    print(f"speed-up: {result['speedup_wall']}x wall, {result['speedup_cpu']}x CPU; "
          f"sampling peak ours/upstream: {result['sampling_peak_ratio']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed DDIM steps (after one warm-up step)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=DTYPES)
    parser.add_argument("--width", default="tiny", choices=WIDTHS, help="model widths (see module doc)")
    parser.add_argument("--full", action="store_true", help="same as --width full")
    parser.add_argument("--temporal", action="store_true", help="the temporal model (one window of --frames)")
    parser.add_argument("--load", action="store_true", help="measure checkpoint loading instead of sampling")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument("--upstream-python", default=None, help="python of a venv with upstream's pins")
    parser.add_argument("--upstream-dir", type=Path, default=None, help="checkout of Wangt-CN/DisCo")
    parser.add_argument("--repeats", type=int, default=1, help="alternating ours/upstream runs per side")
    parser.add_argument("--measure-load", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=("ours", "upstream"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.full:
        args.width = "full"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.worker == "upstream":
        result = worker_upstream(args.workdir, args.upstream_dir, args.frames, args.steps)
    elif args.worker == "ours":
        result = worker_ours(args.workdir, args.frames, args.steps)
    elif args.upstream_python:
        if args.upstream_dir is None:
            parser.error("--upstream-python needs --upstream-dir (a checkout of Wangt-CN/DisCo)")
        result = compare_with_upstream(args)
        print_table(result)
    elif args.measure_load:
        result = measure_load(Path(args.measure_load), args.precision)
    elif args.load:
        result = bench_loading(args)
    else:
        result = bench_sampling(args)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
