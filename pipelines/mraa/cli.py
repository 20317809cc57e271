"""MRAA: animate a source image with a driving video (Motion Representations for Articulated Animation)."""

from __future__ import annotations

import argparse

from ..core import video, weights
from .animate import FITS, MODES, animate
from .model import DEFAULT_FILE, FOLDER, WEIGHTS, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="source image file")
    parser.add_argument("--driving", required=True, help="driving video file or folder of frames")
    parser.add_argument("--output", required=True, help="output video file, or a folder for PNG frames")
    parser.add_argument(
        "--weights-dir", default=None, help=f"folder holding the checkpoint (else models/{FOLDER})"
    )
    parser.add_argument(
        "--checkpoint",
        default=DEFAULT_FILE,
        help=f"checkpoint file name ({', '.join(WEIGHTS)}) or other file",
    )
    parser.add_argument("--mode", choices=MODES, default="avd", help="region transfer mode")
    parser.add_argument("--fit", choices=FITS, default="crop", help="how inputs are made square")
    parser.add_argument("--no-paste-back", action="store_true", help="output the model-size square only")
    parser.add_argument(
        "--reference-frame", type=int, default=0, help="relative mode: driving reference frame"
    )
    parser.add_argument(
        "--background-motion", action="store_true", help="apply the background-motion network"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="frames per forward pass")
    parser.add_argument("--image-size", type=int, default=0, help="square model size (0: the checkpoint's)")
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many driving frames")


def run(args: argparse.Namespace) -> None:
    if args.weights_dir:
        weights.add_search_dir(FOLDER, args.weights_dir)
    spec = WEIGHTS.get(args.checkpoint, WEIGHTS[DEFAULT_FILE])
    model = load_model(weights.resolve(spec, name=args.checkpoint), image_size=args.image_size)
    source = video.read_image(args.source)
    driving, fps = video.read_frames(args.driving, max_frames=args.max_frames)
    frames = animate(
        model,
        source,
        driving,
        mode=args.mode,
        fit=args.fit,
        paste_back=not args.no_paste_back,
        batch_size=args.batch_size,
        reference_frame=args.reference_frame,
        background_motion=args.background_motion,
    )
    out = video.write_frames(frames, args.output, fps=fps)
    print(f"wrote {frames.shape[0]} frames to {out}")
