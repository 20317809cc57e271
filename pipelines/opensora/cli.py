"""Open-Sora: text (and optional images) → video; 1.2 by default, 1.1/1.0 and PixArt with --version.

    python cli.py opensora --prompt "a cat on the beach" --output out.mp4 --weights-dir DIR \
        [--image first.png [--image last.png]] [--resolution 240p] [--aspect "16:9 landscape"] \
        [--frames 51] [--steps 30] [--seed 0] [--version {1.2,1.1,1.0,pixart-alpha,pixart-sigma}]

DIR holds OpenSora-STDiT-v3/, OpenSora-VAE-v1.2/ and t5-v1_1-xxl/ (see docs/opensora.md); for the
older versions the checkpoint and SD-VAE folder of docs/opensora_legacy.md. Options left out take
each version's upstream defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import video, weights
from ..core.device import DTYPE_CHOICES, get_offload_device, get_torch_device, resolve_dtype
from ..core.errors import InputError
from ..core.memory import on_device
from ..opensora_legacy import command as legacy_command
from ..opensora_legacy import versions as legacy_versions
from . import aspect, generate, loading, text

VERSIONS = ("1.2", *legacy_versions.VERSIONS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prompt", required=True, help="what the video shows")
    parser.add_argument("--negative", default="", help="negative prompt (default: the learned null caption)")
    parser.add_argument("--image", action="append", default=[], help="reference image(s): 1 = first frame, "
                        "2 = first + last frame, more = keyframes spread evenly")  # fmt: skip
    parser.add_argument(
        "--output", required=True, help="video file, or a folder (no extension) of PNG frames"
    )
    parser.add_argument("--weights-dir", default=None, help="folder with the three model folders")
    parser.add_argument(
        "--version", default="1.2", choices=VERSIONS, help="Open-Sora version or PixArt model"
    )
    parser.add_argument("--resolution", default=None, choices=list(aspect.RESOLUTIONS),
                        help="pixel budget (default: 240p; older versions: their trained size)")  # fmt: skip
    parser.add_argument("--aspect", default="16:9 landscape", help=f"one of {list(aspect.ASPECT_RATIOS)}")
    parser.add_argument("--width", type=int, default=0, help="custom width (with --height), multiple of 16")
    parser.add_argument("--height", type=int, default=0, help="custom height (with --width), multiple of 16")
    parser.add_argument("--frames", default=None, help="frame count or duration (2s, 4s, 8s, 16s); default "
                        "51 (v1.0/1.1: 16; PixArt: number of images, 1)")  # fmt: skip
    parser.add_argument("--fps", type=float, default=None, help="frame rate told to the model (default 24)")
    parser.add_argument("--steps", type=int, default=None, help="default 30 (IDDPM 100, DPM-Solver++ 20)")
    parser.add_argument("--guidance", type=float, default=None, help="default 7.0 (PixArt-Σ 4.5)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--aesthetic", type=float, default=6.5, help="aesthetic score suffix (0 = off)")
    parser.add_argument("--motion", type=float, default=0.0, help="motion score suffix (0 = off)")
    parser.add_argument("--camera", default="none", choices=list(text.CAMERA_MOTIONS))
    parser.add_argument("--precision", choices=DTYPE_CHOICES, default="auto")
    parser.add_argument("--block-swap", type=int, default=0, help="DiT block pairs kept on the CPU")
    parser.add_argument("--dit", default=None, help="DiT folder/file (default: the version's released name)")
    parser.add_argument("--vae", default=None, help="VAE folder (default: the version's released name)")
    parser.add_argument("--t5", default="t5-v1_1-xxl")


def _folder(weights_dir: str | None, name: str, origin: str) -> Path:
    for base in ([Path(weights_dir)] if weights_dir else []) + weights.search_dirs("opensora"):
        if (base / name).is_dir():
            return base / name
    raise FileNotFoundError(
        f"'{name}' not found (looked in --weights-dir and models/opensora); download {origin}."
    )


def run(args: argparse.Namespace) -> None:
    if args.version != "1.2":
        legacy_command.run(args)
        return
    args.frames = "51" if args.frames is None else args.frames
    args.fps = 24.0 if args.fps is None else args.fps
    args.steps = 30 if args.steps is None else args.steps
    args.guidance = 7.0 if args.guidance is None else args.guidance
    args.dit, args.vae = args.dit or "OpenSora-STDiT-v3", args.vae or "OpenSora-VAE-v1.2"
    height, width = aspect.image_size(args.resolution or "240p", args.aspect)
    if args.width or args.height:
        if not (args.width and args.height) or args.width % 16 or args.height % 16:
            raise InputError("--width and --height go together, as multiples of 16.")
        height, width = args.height, args.width
    dtype = resolve_dtype(args.precision, get_torch_device())
    t5 = text.load_t5(_folder(args.weights_dir, args.t5, "DeepFloyd/t5-v1_1-xxl"), dtype=dtype)
    prompts = [text.add_scores(args.prompt, args.aesthetic or None, args.motion or None, args.camera)]
    if args.negative:
        prompts.append(args.negative)
    with on_device(t5.encoder) as device:
        y, mask = text.encode(t5, prompts, device)
    del t5  # T5 is freed before the DiT runs
    offload = get_offload_device()
    dit_dir = _folder(args.weights_dir, args.dit, "hpcai-tech/OpenSora-STDiT-v3")
    vae_dir = _folder(args.weights_dir, args.vae, "hpcai-tech/OpenSora-VAE-v1.2")
    model = generate.OpenSoraModel(
        dit=loading.load_stdit3(dit_dir, dtype, offload),
        vae=loading.load_vae(vae_dir, dtype, offload),
        height=height, width=width, num_frames=aspect.frame_count(args.frames), fps=args.fps, dtype=dtype,
        block_swap=args.block_swap,
    )  # fmt: skip
    generate.check_frames(model, model.num_frames)
    reference, mode, keyframes = None, "none", ""
    if args.image:
        import torch

        images = torch.cat([video.read_image(p)[..., :3] for p in args.image])
        if images.shape[0] > 1 and len({tuple(i.shape) for i in images}) > 1:
            raise InputError("reference images must have the same size.")
        reference = generate.encode_frames(model, images, as_video=False)
        n = images.shape[0]
        mode = {1: "first frame", 2: "first + last frame"}.get(n, "keyframes")
        keyframes = (
            ",".join(str(round(i * (model.num_frames - 1) / (n - 1))) for i in range(n)) if n > 1 else "0"
        )
    negative = (y[1:], mask[1:]) if args.negative else None
    latent = generate.generate(
        model, (y[:1], mask[:1]), negative, seed=args.seed, steps=args.steps, guidance=args.guidance,
        reference=reference, mode=mode, keyframes=keyframes,
    )  # fmt: skip
    frames = generate.decode(model, latent)
    written = video.write_frames(frames, Path(args.output), fps=args.fps)
    print(f"wrote {frames.shape[0]} frames to {written}")
