"""DisPose: animate a reference image with the poses of a driving clip.

    python cli.py dispose --reference IMG --reference-pose ref_pose.json --driving-pose poses.json \
        --output OUT --weights-dir DIR [--width 576 --height 1024] [--tile 16 --overlap 6] [--steps 25]

Poses are POSE_KEYPOINT JSON files as saved by comfyui_controlnet_aux ("Save Pose Keypoints"): a
list with one ``{"people": [{"pose_keypoints_2d": [...]}], "canvas_width", "canvas_height"}`` per
frame. Without them the built-in DWPose runs: ``--driving VIDEO`` instead of ``--driving-pose``,
and the reference pose is estimated when ``--reference-pose`` is left out (yolox_l.onnx and
dw-ll_ucoco_384.onnx in the weights folder or models/dwpose).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..core import video, weights
from ..core.device import DTYPE_CHOICES, get_offload_device, get_torch_device, resolve_dtype
from ..core.errors import InputError, MissingWeightsError
from . import generate
from .dwpose import cli_poses
from .loading import POSE_NET_FILE, has_pose_net, load_dispose
from .sampling import SamplerSettings

FOLDER = "dispose"
BASE_FOLDER = "stable-video-diffusion-img2vid-xt-1-1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reference", required=True, help="image of the person to animate")
    parser.add_argument("--reference-pose", default=None, help="reference POSE_KEYPOINT JSON (else DWPose)")
    parser.add_argument("--driving-pose", default=None, help="POSE_KEYPOINT JSON of the driving frames")
    parser.add_argument("--driving", default=None, help="driving video or frame folder (poses by DWPose)")
    parser.add_argument(
        "--output", required=True, help="video file, or a folder (no extension) of PNG frames"
    )
    parser.add_argument("--weights-dir", default=None, help="folder with the DisPose files and SVD folder")
    parser.add_argument("--base-folder", default=BASE_FOLDER, help="SVD-XT 1.1 diffusers folder name")
    parser.add_argument("--mimicmotion", default="MimicMotion_1-1.pth", help="MimicMotion checkpoint")
    parser.add_argument(
        "--pose-net",
        default=None,
        help=f"PoseNet file; default: from the MimicMotion file, else {POSE_NET_FILE} (kijai's merged UNet)",
    )
    parser.add_argument("--controlnet", default="DisPose.pth", help="DisPose ControlNet checkpoint")
    parser.add_argument("--cmp", default="ckpt_iter_42000.pth.tar", help="CMP checkpoint")
    parser.add_argument("--width", type=int, default=576, help="output width (multiple of 64)")
    parser.add_argument("--height", type=int, default=1024, help="output height (multiple of 64)")
    parser.add_argument("--fit", choices=generate.FIT_MODES, default="crop", help="reference fitting")
    parser.add_argument(
        "--retarget",
        choices=generate.RETARGET_MODES,
        default="global",
        help="pose fitting: global (upstream), per-limb (reference limb lengths) or none",
    )
    parser.add_argument("--tile", type=int, default=16, help="frames per tile (incl. the reference frame)")
    parser.add_argument("--overlap", type=int, default=6, help="frames shared by neighbouring tiles")
    parser.add_argument("--steps", type=int, default=25, help="Euler steps")
    parser.add_argument("--min-guidance", type=float, default=2.0, help="guidance at the first frame")
    parser.add_argument("--max-guidance", type=float, default=2.0, help="guidance at the last frame")
    parser.add_argument("--noise-aug", type=float, default=0.0, help="reference noise augmentation")
    parser.add_argument("--seed", type=int, default=42, help="start noise seed")
    parser.add_argument("--decode-chunk", type=int, default=8, help="frames per VAE decoder call")
    parser.add_argument("--precision", choices=DTYPE_CHOICES, default="auto", help="network precision")
    parser.add_argument("--fps", type=float, default=15.0, help="output fps")


def _poses(path: str) -> list[dict]:
    data = json.loads(Path(path).read_text())
    frames = data if isinstance(data, list) else [data]
    if not frames:
        raise InputError(f"{path} holds no pose frames.")
    return frames


def _find(name: str) -> Path:
    path = weights.find_file(FOLDER, name)
    if path is None:
        raise MissingWeightsError(
            f"'{name}' not found in {[str(d) for d in weights.search_dirs(FOLDER)]}; see docs/dispose.md "
            "(weights table) for where each file comes from."
        )
    return path


def run(args: argparse.Namespace) -> None:
    if args.weights_dir:
        weights.add_search_dir(FOLDER, args.weights_dir)
    reference = video.read_image(args.reference)
    ref_pose, drv_pose = cli_poses(args, reference, _poses)  # first: fails fast without pose files
    mimicmotion = _find(args.mimicmotion)
    pose_net = args.pose_net or (None if has_pose_net(mimicmotion) else POSE_NET_FILE)
    model = load_dispose(
        _find(args.base_folder),
        mimicmotion,
        _find(args.controlnet),
        _find(args.cmp),
        pose_net_file=_find(pose_net) if pose_net else None,
        dtype=resolve_dtype(args.precision, get_torch_device()),
        device=get_offload_device(),
    )
    cond = generate.encode_motion(
        model,
        reference,
        ref_pose,
        drv_pose,
        args.height,
        args.width,
        args.fit,
        args.retarget,
    )
    settings = SamplerSettings(
        steps=args.steps,
        min_guidance=args.min_guidance,
        max_guidance=args.max_guidance,
        tile=args.tile,
        overlap=args.overlap,
        noise_aug_strength=args.noise_aug,
        seed=args.seed,
    )
    latents = generate.generate_latents(model, cond, settings)
    frames = generate.decode_latents(model, latents, args.decode_chunk, min(2, args.decode_chunk - 1))
    written = video.write_frames(frames, Path(args.output), fps=args.fps)
    print(f"wrote {frames.shape[0]} frames to {written}")
