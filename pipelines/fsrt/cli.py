"""FSRT: animate one or more source images of a face with a driving video."""

from __future__ import annotations

import argparse

import torch

from ..core import video, weights
from ..core.errors import InputError
from .animate import FITS, animate
from .model import FOLDER, WEIGHTS, load_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, nargs="+",
                        help="source image file(s), or a video / folder of frames (see --source-idx); "
                             "several views are encoded together (same size)")
    parser.add_argument("--source-idx", type=int, nargs="+", default=[0],
                        help="frames taken from a video or folder --source, e.g. 0 10 -1 (as upstream)")
    parser.add_argument("--driving", required=True, help="driving video file or folder of frames")
    parser.add_argument("--output", required=True, help="output video file, or a folder for PNG frames")
    parser.add_argument("--weights-dir", default=None,
                        help=f"folder holding vox256.pt and kp_detector.pt (else models/{FOLDER})")
    parser.add_argument("--checkpoint", default="vox256.pt", help="vox256.pt or vox256_2Source.pt")
    parser.add_argument("--kp-detector", default="kp_detector.pt", help="keypoint detector weights")
    parser.add_argument("--relative", action="store_true", help="relative keypoint motion (else absolute)")
    parser.add_argument("--adapt-scale", action="store_true", help="relative: rescale by keypoint hull sizes")
    parser.add_argument("--fit", choices=FITS, default="crop", help="how inputs are made square")
    parser.add_argument("--no-paste-back", action="store_true", help="output the model-size square only")
    parser.add_argument("--reference-frame", type=int, default=0, help="relative mode: reference frame")
    parser.add_argument("--find-best-frame", action="store_true", help="reference = closest face pose")
    parser.add_argument("--max-num-pixels", type=int, default=65536, help="query rays decoded at once")
    parser.add_argument("--batch-size", type=int, default=8, help="frames per keypoint-detector pass")
    parser.add_argument("--image-size", type=int, default=256, help="square size the model runs at")
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many driving frames")


def _read_views(path: str, indices: list[int]) -> list[torch.Tensor]:
    """An image file gives itself; a video or folder gives its frames at ``indices``."""
    frames, _ = video.read_frames(path)
    if frames.shape[0] == 1:
        return [frames]
    bad = [i for i in indices if not -frames.shape[0] <= i < frames.shape[0]]
    if bad:
        raise InputError(f"--source-idx {bad} outside the {frames.shape[0]} frames of '{path}'.")
    return [frames[i].unsqueeze(0) for i in indices]


def run(args: argparse.Namespace) -> None:
    if args.weights_dir:
        weights.add_search_dir(FOLDER, args.weights_dir)
    sources = [view for path in args.source for view in _read_views(path, args.source_idx)]
    if len({tuple(s.shape) for s in sources}) > 1:
        raise InputError("all --source images must have the same size; crop or resize them first.")
    sources = torch.cat(sources)
    driving, fps = video.read_frames(args.driving, max_frames=args.max_frames)
    spec = WEIGHTS.get(args.checkpoint, WEIGHTS["vox256.pt"])
    model = load_model(weights.resolve(spec, name=args.checkpoint),
                       weights.resolve(WEIGHTS["kp_detector.pt"], name=args.kp_detector),
                       image_size=args.image_size)
    frames = animate(model, sources, driving, relative=args.relative, adapt_scale=args.adapt_scale,
                     fit=args.fit, paste_back=not args.no_paste_back, max_num_pixels=args.max_num_pixels,
                     batch_size=args.batch_size, reference_frame=args.reference_frame,
                     find_best_frame=args.find_best_frame)
    out = video.write_frames(frames, args.output, fps=fps)
    print(f"wrote {frames.shape[0]} frames to {out}")
