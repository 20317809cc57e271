"""MRFA: animate a source face with a driving video (motion refinement face animation)."""

from __future__ import annotations

import argparse

from ..core import video, weights
from .animate import FITS, MODES, animate
from .model import FOLDER, WEIGHTS, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="source image file")
    parser.add_argument("--driving", required=True, help="driving video file or folder of frames")
    parser.add_argument("--output", required=True, help="output video file, or a folder for PNG frames")
    parser.add_argument(
        "--weights-dir", default=None, help=f"folder holding the .pth files (else models/{FOLDER})"
    )
    parser.add_argument("--checkpoint", default="vox.pth", help="vox.pth, celebvhq.pth, or a file name/path")
    parser.add_argument("--mode", choices=MODES, default="relative", help="keypoint transfer mode")
    parser.add_argument("--adapt-scale", action="store_true", help="relative mode: adapt the movement scale")
    parser.add_argument(
        "--background-motion", action="store_true", help="celebvhq: transfer background motion"
    )
    parser.add_argument("--fit", choices=FITS, default="crop", help="how inputs are made square")
    parser.add_argument("--no-paste-back", action="store_true", help="output the model-size square only")
    parser.add_argument(
        "--reference-frame", type=int, default=0, help="relative mode: driving reference frame"
    )
    parser.add_argument("--find-best-frame", action="store_true", help="reference = closest face pose")
    parser.add_argument("--batch-size", type=int, default=4, help="frames per forward pass")
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many driving frames")


def run(args: argparse.Namespace) -> None:
    if args.weights_dir:
        weights.add_search_dir(FOLDER, args.weights_dir)
    spec = WEIGHTS.get(args.checkpoint, WEIGHTS["vox.pth"])
    model = load_model(weights.resolve(spec, name=args.checkpoint))
    source = video.read_image(args.source)
    driving, fps = video.read_frames(args.driving, max_frames=args.max_frames)
    frames = animate(
        model,
        source,
        driving,
        mode=args.mode,
        adapt_movement_scale=args.adapt_scale,
        background_motion=args.background_motion,
        fit=args.fit,
        paste_back=not args.no_paste_back,
        batch_size=args.batch_size,
        reference_frame=args.reference_frame,
        find_best_frame=args.find_best_frame,
    )
    out = video.write_frames(frames, args.output, fps=fps)
    print(f"wrote {frames.shape[0]} frames to {out}")
