"""First Order Motion Model: animate a source image with the motion of a driving video.

    python cli.py fomm --source face.png --driving video.mp4 --output out.mp4 --weights-dir DIR
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..core import images, video, weights
from ..core.device import parse_device
from ..core.progress import Progress
from .animate import CROP_MODES, AnimateOptions, animate
from .model import FOLDER, SPECS, load_fomm_checkpoint
from .motion import MotionOptions

log = logging.getLogger("MotionSuite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="source image (the face to animate)")
    parser.add_argument("--driving", required=True, help="driving video file or folder of frames")
    parser.add_argument("--output", required=True,
                        help="output video file (.mp4, .webm, .gif) or, without extension, a PNG folder")
    parser.add_argument("--weights-dir", default=None,
                        help="folder holding vox-cpk.pth.tar / vox-adv-cpk.pth.tar (else the pack's folders)")
    parser.add_argument("--model", choices=sorted(SPECS), default="vox-adv", help="checkpoint to use")
    parser.add_argument("--absolute", action="store_true",
                        help="use the driving keypoints as they are (default: relative motion)")
    parser.add_argument("--no-adapt-scale", action="store_true",
                        help="do not rescale the motion by the keypoint hull sizes")
    parser.add_argument("--find-best-frame", action="store_true",
                        help="start from the driving frame closest to the source pose (needs face-alignment)")
    parser.add_argument("--crop", choices=CROP_MODES, default="center", help="how inputs become squares")
    parser.add_argument("--paste-back", action="store_true", help="paste result into the full source")
    parser.add_argument("--batch-size", type=int, default=8, help="driving frames per batch")
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    parser.add_argument("--fps", type=float, default=None, help="output fps (default: driving fps)")


def run(args: argparse.Namespace) -> None:
    spec = SPECS[args.model]
    if args.weights_dir:
        weights.add_search_dir(FOLDER, args.weights_dir)
    path = weights.resolve(spec)
    log.info("FOMM: loading %s", path)
    model = load_fomm_checkpoint(path, name=args.model)
    source = images.to_bchw(video.read_image(args.source), "source")
    frames, fps = video.read_frames(args.driving)
    driving = images.to_bchw(frames, "driving")
    options = AnimateOptions(
        motion=MotionOptions(relative_movement=not args.absolute, relative_jacobian=not args.absolute,
                             adapt_movement_scale=not args.no_adapt_scale),
        crop=args.crop, paste_back=args.paste_back, find_best_frame=args.find_best_frame)
    with Progress(driving.shape[0], desc="FOMM") as bar:
        out = animate(model, source, driving, options, batch_size=args.batch_size, progress=bar.update,
                      device=parse_device(args.device))
    written = video.write_frames(images.to_bhwc(out), Path(args.output), fps=args.fps or fps)
    print(f"wrote {out.shape[0]} frames to {written}")
