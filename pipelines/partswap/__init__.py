"""Part swap (motion-cosegmentation): checkpoint loading, batched swapping, segmentation pictures."""

from .model import FOLDER, PARSER, WEIGHTS, PartSwapModel, load_face_parser, load_partswap_checkpoint
from .swap import BLEND_SCALES, FITS, SwapOptions, parse_segments, part_swap, swap_tensors

__all__ = [
    "BLEND_SCALES",
    "FITS",
    "FOLDER",
    "PARSER",
    "WEIGHTS",
    "PartSwapModel",
    "SwapOptions",
    "load_face_parser",
    "load_partswap_checkpoint",
    "parse_segments",
    "part_swap",
    "swap_tensors",
]
