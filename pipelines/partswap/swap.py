"""Part swap: put selected parts of a source face into every frame of a target video.

The algorithm box (upstream part_swap.py:make_video, batched):
1. bring the source and the target frames to the model's square size (crop / pad / stretch);
2. segment the source once and encode it once;
3. for each batch of target frames: segment them, build the blend mask M from the selected parts
   (learned parts, or the face parser's classes; of the source or of the frames), optionally
   hard (M > 0.5), downscale it by ``blend_scale`` to the feature size; the generator aligns the
   source to each frame (part-wise affine warps, or FOMM dense motion) and blends the features;
4. optionally paste the swapped square back into the full-size target frames;
5. draw the part labels of the source and of every frame (segmentation pictures).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core import images
from ..core.errors import InputError
from ..core.memory import on_device, run_batched
from ..core.progress import Progress
from .model import PartSwapModel
from .visualize import overlay

FITS = ("crop", "pad", "stretch")
BLEND_SCALES = ("auto", "1", "0.5", "0.25", "0.125", "0.0625")


@dataclass(frozen=True)
class SwapOptions:
    """What the user chooses besides the model and the images."""

    segments: tuple[int, ...] = (1,)  # channel indices of the mask source (0 = background)
    use_face_parser: bool = False
    use_source_segmentation: bool = False
    hard_edges: bool = False
    blend_scale: float | None = None  # None: upstream's choice (1 learned parts, 0.125 parser)


def label_names(model: PartSwapModel, use_face_parser: bool) -> tuple[str, ...]:
    """Channel names of the mask source the options select."""
    return model.parser_classes if use_face_parser else model.segment_names


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def parse_segments(spec: str | list | tuple, names: tuple[str, ...]) -> tuple[int, ...]:
    """Names or indices (comma/space separated string or a list) -> sorted unique channel indices."""
    items = re.split(r"[,;\s]+", spec.strip()) if isinstance(spec, str) else [str(s) for s in spec]
    items = [i for i in items if i]
    if not items:
        raise InputError(f"choose at least one part to swap; valid names: {', '.join(names)}.")
    lookup = {_norm(n): i for i, n in enumerate(names)}
    out = []
    for item in items:
        if re.fullmatch(r"\d+", item):
            index = int(item)
        elif _norm(item) in lookup:
            index = lookup[_norm(item)]
        else:
            raise InputError(
                f"unknown part {item!r}; valid names: {', '.join(names)} (or indices 0-{len(names) - 1})."
            )
        if not 0 <= index < len(names):
            raise InputError(
                f"part index {index} is out of range 0-{len(names) - 1} for this mask source "
                f"({', '.join(names)})."
            )
        out.append(index)
    return tuple(sorted(set(out)))


def blend_scale_value(choice: str | float | None, use_face_parser: bool) -> float:
    """The anti-alias factor from mask to feature resolution; 'auto' gives upstream's values."""
    if choice in (None, "auto"):
        return 0.125 if use_face_parser else 1.0
    try:
        scale = float(choice)
    except (TypeError, ValueError):
        raise InputError(f"blend_scale must be one of {', '.join(BLEND_SCALES)}; got {choice!r}.") from None
    if not 0 < scale <= 1 or abs(1 / scale - round(1 / scale)) > 1e-6:
        raise InputError(f"blend_scale must be 1/k for a whole k (1, 0.5, 0.25, 0.125, ...); got {choice!r}.")
    return scale


class _Masks:
    """Per-image class probabilities from the chosen mask source, at the resolution the blend needs."""

    def __init__(self, model: PartSwapModel, options: SwapOptions, feature_size: int, size: int) -> None:
        self.model, self.options, self.size = model, options, size
        self.scale = blend_scale_value(options.blend_scale, options.use_face_parser)
        self.mask_size = round(feature_size / self.scale)

    def probabilities(self, frames: torch.Tensor, segmentation: dict) -> torch.Tensor:
        if self.options.use_face_parser:
            # upstream: nearest upscaling of the 256 px frame to the parser's 512 px
            return self.model.face_parser.parse(F.interpolate(frames, size=(2 * self.size, 2 * self.size)))
        return segmentation["segmentation"]

    def blend_mask(self, probs: torch.Tensor) -> torch.Tensor:
        if probs.shape[-1] != self.mask_size:
            probs = F.interpolate(
                probs, size=(self.mask_size, self.mask_size), mode="bilinear", align_corners=False
            )
        mask = probs[:, list(self.options.segments)].sum(dim=1, keepdim=True)
        return (mask > 0.5).to(mask.dtype) if self.options.hard_edges else mask

    def labels(self, probs: torch.Tensor) -> torch.Tensor:
        """Hard labels at the model size (for the pictures), as uint8 on the CPU."""
        mode = (
            {"mode": "nearest"}
            if probs.shape[-1] > self.size
            else {"mode": "bilinear", "align_corners": False}
        )
        return F.interpolate(probs, size=(self.size, self.size), **mode).argmax(dim=1).to(torch.uint8).cpu()


def check_options(model: PartSwapModel, options: SwapOptions) -> None:
    if options.use_face_parser and model.face_parser is None:
        raise InputError(
            "use_face_parser is on but no face parser was loaded; choose 79999_iter.pth in the loader."
        )
    if not options.use_face_parser and not model.learned_segmentation:
        raise InputError(
            f"'{model.name}' is a FOMM checkpoint without a learned segmentation; turn on "
            "use_face_parser (upstream: --supervised) to pick parts with the face parser."
        )
    names = label_names(model, options.use_face_parser)
    bad = [i for i in options.segments if not 0 <= i < len(names)]
    if bad or not options.segments:
        raise InputError(
            f"parts {bad or 'none'} are not valid for this mask source; choose from {', '.join(names)}."
        )


@torch.no_grad()
def swap_tensors(
    model: PartSwapModel,
    source: torch.Tensor,
    driving: torch.Tensor,
    options: SwapOptions = SwapOptions(),
    batch_size: int = 8,
    progress: Progress | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """source (1,3,S,S), driving (N,3,S,S) at model size in 0..1 -> swapped frames (N,3,S,S) and the
    hard part labels of the source (1,S,S) and of the frames (N,S,S) (uint8, CPU)."""
    check_options(model, options)
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1; got {batch_size}.")
    n, size = driving.shape[0], source.shape[-1]
    seg, gen = model.segmentation, model.generator
    with on_device(*model.modules()) as device:
        src = source.to(device)
        seg_source = seg(src)
        features = gen.encode(src)
        dm = gen.dense_motion_network
        source_small = dm.down(src) if dm is not None and dm.scale_factor != 1 else None
        masks = _Masks(model, options, features.shape[-1], size)
        source_probs = masks.probabilities(src, seg_source)
        source_mask = masks.blend_mask(source_probs) if options.use_source_segmentation else None

        def render(start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
            frames = driving[start:stop].to(device)
            seg_target = seg(frames)
            probs = masks.probabilities(frames, seg_target)
            mask = source_mask if options.use_source_segmentation else masks.blend_mask(probs)
            out = gen.swap(
                src,
                frames,
                seg_source,
                seg_target,
                mask,
                masks.scale,
                options.use_source_segmentation,
                source_features=features,
                source_small=source_small,
            )
            return out.float().cpu(), masks.labels(probs)

        def tick(count: int) -> None:
            if progress is not None:
                progress.update(count)

        results = run_batched(render, n, batch_size, on_batch=tick, what="part swap")
        source_labels = masks.labels(source_probs)
    return torch.cat([r[0] for r in results]), source_labels, torch.cat([r[1] for r in results])


def _boxes(x: torch.Tensor, fit: str) -> images.CropBox:
    h, w = x.shape[-2:]
    return images.pad_box(h, w) if fit == "pad" else images.square_box(h, w)


def part_swap(
    model: PartSwapModel,
    source_image: torch.Tensor,
    driving_frames: torch.Tensor,
    segments: str | list | tuple,
    use_face_parser: bool = False,
    use_source_segmentation: bool = False,
    hard_edges: bool = False,
    blend_scale: str | float | None = "auto",
    fit: str = "crop",
    paste_back: bool = True,
    viz_alpha: float = 0.6,
    batch_size: int = 8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ComfyUI IMAGEs in and out: (swapped frames, source segmentation picture, frame pictures).

    ``segments`` names the parts (or their indices) of the learned segmentation, or of the face
    parser's classes with ``use_face_parser``. With ``paste_back`` the swapped square goes back into
    the full-size target frames (not for ``fit = stretch``).
    """
    if fit not in FITS:
        raise InputError(f"unknown fit {fit!r}; choose one of {', '.join(FITS)}.")
    if not 0 <= viz_alpha <= 1:
        raise InputError(f"viz_alpha must be within 0..1; got {viz_alpha}.")
    names = (
        label_names(model, use_face_parser) if (model.face_parser is not None or not use_face_parser) else ()
    )
    if use_face_parser and model.face_parser is None:
        raise InputError(
            "use_face_parser is on but no face parser was loaded; choose 79999_iter.pth in the loader."
        )
    options = SwapOptions(
        parse_segments(segments, names),
        use_face_parser,
        use_source_segmentation,
        hard_edges,
        blend_scale_value(blend_scale, use_face_parser),
    )
    src = images.to_bchw(source_image, "source_image")[:1]
    drv = images.to_bchw(driving_frames, "driving_frames")
    size = model.image_size
    if fit == "stretch":
        drv_box = None
        src_in, drv_in = images.resize(src, (size, size)), images.resize(drv, (size, size))
    else:
        drv_box = _boxes(drv[:1], fit)
        src_in = images.crop_resize(src, _boxes(src, fit), size)
        drv_in = images.crop_resize(drv, drv_box, size)
    with Progress(drv.shape[0], "part swap") as progress:
        frames, src_labels, drv_labels = swap_tensors(model, src_in, drv_in, options, batch_size, progress)
    num = len(label_names(model, use_face_parser))
    src_viz = overlay(src_in, src_labels, num, viz_alpha)
    drv_viz = overlay(drv_in, drv_labels, num, viz_alpha)
    if paste_back and drv_box is not None:
        frames = images.paste_back(frames, drv, drv_box)
    return images.to_bhwc(frames), images.to_bhwc(src_viz), images.to_bhwc(drv_viz)
