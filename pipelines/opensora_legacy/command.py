"""The command line for Open-Sora 1.1 / 1.0 and PixArt (``python cli.py opensora --version 1.1 …``).

Reached through ``pipelines/opensora/cli.py``, which owns the arguments; this module runs them:
T5 at the version's caption length (200/120/300 tokens, as upstream tokenises), then the DiT
with its SD VAE. Images given with ``--image`` condition v1.1 (1 = first frame, 2 = first + last,
more = keyframes spread evenly).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..core import video, weights
from ..core.device import get_torch_device, resolve_dtype
from ..core.errors import InputError, MissingWeightsError
from ..core.memory import on_device
from ..opensora import aspect, text
from . import generate, versions


def find(weights_dir: str | None, name: str, source: str, folders: tuple[str, ...] = ("opensora",)) -> Path:
    """``name`` in --weights-dir, else in models/<folder> for each folder."""
    bases = [Path(weights_dir)] if weights_dir else []
    for folder in folders:
        bases += weights.search_dirs(folder)
    for base in bases:
        if (base / name).exists():
            return base / name
    raise MissingWeightsError(
        f"'{name}' not found (looked in --weights-dir and models/opensora); download {source}."
    )


def run(args: argparse.Namespace) -> None:
    spec = versions.get(args.version)
    height = width = 0
    if args.width or args.height:
        if not (args.width and args.height):
            raise InputError("--width and --height go together.")
        height, width = args.height, args.width
    elif args.resolution:
        height, width = aspect.image_size(args.resolution, args.aspect)
    if args.image and spec.network != "stdit2":
        raise InputError(f"--image needs --version 1.1; {spec.label} generates from text only.")
    dtype = resolve_dtype(args.precision, get_torch_device())
    model = generate.load_model(
        spec,
        find(args.weights_dir, args.dit or spec.checkpoint, spec.checkpoint_source),
        find(args.weights_dir, args.vae or spec.vae, spec.vae_source, ("opensora", "vae")),
        height=height, width=width, num_frames=aspect.frame_count(args.frames) if args.frames else 0,
        fps=args.fps or 0.0, dtype=dtype,
    )  # fmt: skip

    t5 = text.load_t5(find(args.weights_dir, args.t5, "DeepFloyd/t5-v1_1-xxl", ("text_encoders",)), dtype)
    t5.max_length = model.text_length
    prompts = [args.prompt] + ([args.negative] if args.negative else [])
    with on_device(t5.encoder) as device:
        y, mask = text.encode(t5, prompts, device)
    del t5  # T5 is freed before the DiT runs

    reference, mode, keyframes = None, "none", "0"
    if args.image:
        frames = torch.cat([video.read_image(p)[..., :3] for p in args.image])
        reference = generate.encode_frames(model, frames)
        n, last = frames.shape[0], model.num_frames - 1
        mode = {1: "first frame", 2: "first + last frame"}.get(n, "keyframes")
        keyframes = ",".join(str(round(i * last / (n - 1))) for i in range(n)) if n > 1 else "0"
    negative = (y[1:], mask[1:]) if args.negative else None
    latent = generate.generate(
        model, (y[:1], mask[:1]), negative, seed=args.seed, steps=args.steps or 0,
        guidance=args.guidance or 0.0, reference=reference, mode=mode, keyframes=keyframes,
    )  # fmt: skip
    images = generate.decode(model, latent)
    fps = spec.save_fps * (model.fps / spec.fps)
    out = Path(args.output)
    if not spec.video and out.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
        written = [
            video.write_image(images[i : i + 1], _numbered(out, i, images.shape[0]))
            for i in range(len(images))
        ]
        print(f"wrote {len(written)} image(s) to {written[0]}")
        return
    written_path = video.write_frames(images, out, fps=fps)
    print(f"wrote {images.shape[0]} frames to {written_path}")


def _numbered(path: Path, index: int, count: int) -> Path:
    return path if count == 1 else path.with_name(f"{path.stem}_{index:03d}{path.suffix}")
