"""Part swap from the command line: put parts of a source face into every frame of a target video."""

from __future__ import annotations

import argparse

from ..core import video, weights
from .model import FOLDER, PARSER, WEIGHTS, load_face_parser, load_partswap_checkpoint
from .swap import BLEND_SCALES, FITS, part_swap


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="source image file (the parts come from it)")
    parser.add_argument("--driving", required=True, help="target video file or folder of frames")
    parser.add_argument("--output", required=True, help="output video file, or a folder for PNG frames")
    parser.add_argument(
        "--weights-dir", default=None, help=f"folder holding the checkpoints (else models/{FOLDER})"
    )
    parser.add_argument("--checkpoint", default="vox-10segments.pth.tar", help="checkpoint file name or path")
    parser.add_argument("--segments", default="eyes", help="parts to swap: names or indices, comma separated")
    parser.add_argument(
        "--face-parser", action="store_true", help=f"pick parts with {PARSER.filename} classes"
    )
    parser.add_argument("--use-source-segmentation", action="store_true", help="mask from the source's parts")
    parser.add_argument("--hard", action="store_true", help="hard (thresholded) mask edges")
    parser.add_argument("--blend-scale", choices=BLEND_SCALES, default="auto", help="mask anti-alias factor")
    parser.add_argument("--fit", choices=FITS, default="crop", help="how inputs are made square")
    parser.add_argument("--no-paste-back", action="store_true", help="output the model-size square only")
    parser.add_argument(
        "--segmentation-output", default=None, help="also write the frames' part pictures here"
    )
    parser.add_argument("--batch-size", type=int, default=8, help="frames per forward pass")
    parser.add_argument("--image-size", type=int, default=256, help="square size the model runs at")
    parser.add_argument("--max-frames", type=int, default=None, help="read at most this many target frames")


def run(args: argparse.Namespace) -> None:
    if args.weights_dir:
        weights.add_search_dir(FOLDER, args.weights_dir)
    spec = WEIGHTS.get(args.checkpoint, WEIGHTS["vox-10segments.pth.tar"])
    model = load_partswap_checkpoint(weights.resolve(spec, name=args.checkpoint), image_size=args.image_size)
    if args.face_parser:
        model.face_parser = load_face_parser(weights.resolve(PARSER))
    source = video.read_image(args.source)
    driving, fps = video.read_frames(args.driving, max_frames=args.max_frames)
    frames, _, driving_viz = part_swap(
        model,
        source,
        driving,
        args.segments,
        use_face_parser=args.face_parser,
        use_source_segmentation=args.use_source_segmentation,
        hard_edges=args.hard,
        blend_scale=args.blend_scale,
        fit=args.fit,
        paste_back=not args.no_paste_back,
        batch_size=args.batch_size,
    )
    out = video.write_frames(frames, args.output, fps=fps)
    print(f"wrote {frames.shape[0]} frames to {out}")
    if args.segmentation_output:
        print(f"wrote part pictures to {video.write_frames(driving_viz, args.segmentation_output, fps=fps)}")
