"""DisCo: animate a reference person with a pose sequence (optionally on another background).

    python cli.py disco --reference person.png --reference-mask person_mask.png --poses poses/ \
        --output out.mp4 --weights-dir DIR [--background bg.png --background-mask bg_mask.png]
        [--temporal [--window 16 --overlap 4]]

Image or temporal model is recognised from the checkpoint's weights; ``--temporal`` picks the
default temporal checkpoint and insists that the file is one.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from ..core import video, weights
from ..core.device import DTYPE_CHOICES, get_offload_device, get_torch_device, resolve_dtype
from ..core.errors import InputError
from . import generate, sampling
from .loading import convert_to_safetensors, load_disco

log = logging.getLogger("MotionSuite")
FOLDER = "disco"
DEFAULT_CHECKPOINT = "moretiktok_cfg/mp_rank_00_model_states.pt"
DEFAULT_TEMPORAL_CHECKPOINT = "moretiktok_tm_cfg/mp_rank_00_model_states.pt"
BASE_FOLDER = "sd-image-variations-diffusers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--convert",
        default=None,
        metavar="PT",
        help="only convert this mp_rank_00_model_states.pt to an fp16 .safetensors beside it",
    )
    parser.add_argument("--reference", help="image of the person to animate")
    parser.add_argument(
        "--reference-mask", default=None, help="person mask of the reference (white = person)"
    )
    parser.add_argument("--poses", help="pose skeleton video or folder of pose images")
    parser.add_argument("--background", default=None, help="background image (default: the reference's)")
    parser.add_argument("--background-mask", default=None, help="person mask of the background image")
    parser.add_argument(
        "--output", required=True, help="video file, or a folder (no extension) of PNG frames"
    )
    parser.add_argument(
        "--weights-dir", default=None, help="folder with the DisCo checkpoint and base folder"
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help=f"checkpoint path inside the folder (default {DEFAULT_CHECKPOINT}, "
        f"with --temporal {DEFAULT_TEMPORAL_CHECKPOINT})",
    )
    parser.add_argument("--temporal", action="store_true", help="use (and require) a temporal checkpoint")
    parser.add_argument("--window", type=int, default=16, help="temporal model: frames per window")
    parser.add_argument(
        "--overlap", type=int, default=0, help="temporal model: frames blended between windows (0: DisCo's)"
    )
    parser.add_argument(
        "--base-folder", default=BASE_FOLDER, help="sd-image-variations-diffusers folder name"
    )
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--guidance", type=float, default=0.0, help="CFG scale (0: 1.5 *_cfg, 3 *_nocfg)")
    parser.add_argument("--seed", type=int, default=42, help="start noise seed")
    parser.add_argument("--size", type=int, default=256, help="output size (trained: 256)")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per UNet call")
    parser.add_argument("--precision", choices=DTYPE_CHOICES, default="auto", help="network precision")
    parser.add_argument("--fps", type=float, default=None, help="output fps (default: the poses' fps)")


def _read_mask(path: str | None) -> torch.Tensor | None:
    if path is None:
        return None
    return video.read_image(path)[..., :3].mean(dim=-1)  # (1,H,W) in 0..1


def run(args: argparse.Namespace) -> None:
    if args.convert:
        print(f"wrote {convert_to_safetensors(args.convert)}")
        return
    missing = [f"--{n}" for n in ("reference", "poses", "output") if not getattr(args, n)]
    if missing:
        raise InputError(f"missing {', '.join(missing)} (needed unless --convert is given).")
    if args.weights_dir:
        weights.add_search_dir(FOLDER, args.weights_dir)
    name = args.checkpoint or (DEFAULT_TEMPORAL_CHECKPOINT if args.temporal else DEFAULT_CHECKPOINT)
    ckpt = weights.find_file(FOLDER, name)
    base = weights.find_file(FOLDER, args.base_folder)
    if ckpt is None:
        raise FileNotFoundError(
            f"DisCo checkpoint '{name}' not found in "
            f"{[str(d) for d in weights.search_dirs(FOLDER)]}. "
            "Download it from the DisCo README (github.com/Wangt-CN/DisCo, 'Model Checkpoints')."
        )
    if base is None:
        raise FileNotFoundError(
            f"Base folder '{args.base_folder}' not found; download lambdalabs/sd-image-variations-diffusers "
            "from Hugging Face into the weights folder."
        )
    log.info("DisCo: loading %s (base %s)", ckpt, base)
    model = load_disco(base, ckpt, resolve_dtype(args.precision, get_torch_device()), get_offload_device())
    if args.temporal and not model.temporal:
        raise InputError(f"{ckpt} is a DisCo image checkpoint; --temporal needs a temporal one.")
    poses, fps = video.read_frames(args.poses)
    if poses.shape[0] == 0:
        raise InputError(f"no pose frames found in {args.poses}.")
    condition = generate.make_condition(
        model,
        video.read_image(args.reference),
        _read_mask(args.reference_mask),
        None if args.background is None else video.read_image(args.background),
        _read_mask(args.background_mask),
        size=args.size,
    )
    settings = sampling.SamplerSettings(
        steps=args.steps,
        guidance=args.guidance,
        seed=args.seed,
        batch_size=args.batch_size,
        window=args.window,
        overlap=args.overlap,
    )
    latents = generate.generate(model, condition, poses, settings)
    frames = generate.decode(model, latents, args.batch_size)
    written = video.write_frames(frames, Path(args.output), fps=args.fps or fps)
    print(f"wrote {frames.shape[0]} frames to {written}")
