"""ComfyUI nodes for part swap (motion-cosegmentation): loader, part swap, part choosers."""

from __future__ import annotations

from ..models.partswap.face_parser import CLASSES
from ..pipelines.core import weights
from ..pipelines.core.errors import InputError
from ..pipelines.fomm.batching import default_batch_size
from ..pipelines.partswap import (
    BLEND_SCALES,
    FITS,
    FOLDER,
    PARSER,
    WEIGHTS,
    PartSwapModel,
    load_face_parser,
    load_partswap_checkpoint,
    part_swap,
)
from ..pipelines.partswap.model import SEGMENT_NAMES

CATEGORY = "MotionSuite/PartSwap"
DEFAULT_FILE = "vox-10segments.pth.tar"
NO_PARSER = "none"


def _checkpoint_choices() -> list[str]:
    released = list(WEIGHTS)
    found = [f for f in weights.list_files(FOLDER, (".pth.tar", ".tar")) if f not in released]
    return released + found


def _parser_choices() -> list[str]:
    found = [f for f in weights.list_files(FOLDER, (".pth",)) if f != PARSER.filename]
    return [NO_PARSER, PARSER.filename, *found]


class MotionSuite_PartSwap_Loader:
    """Loads a part-swap checkpoint and, optionally, the BiSeNet face parser."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "checkpoint": (
                    _checkpoint_choices(),
                    {
                        "default": DEFAULT_FILE,
                        "tooltip": f"Checkpoint in models/{FOLDER}: vox-5/10/15segments (learned parts) or "
                        "vox-first-order / a FOMM vox-cpk file (FOMM alignment; needs the face parser).",
                    },
                ),
                "face_parser": (
                    _parser_choices(),
                    {
                        "default": NO_PARSER,
                        "tooltip": f"BiSeNet face parser (79999_iter.pth in models/{FOLDER}) to pick parts "
                        "by face class (hair, lips, ...) instead of the learned parts; 'none' to skip it.",
                    },
                ),
                "image_size": (
                    "INT",
                    {
                        "default": 256,
                        "min": 64,
                        "max": 1024,
                        "step": 32,
                        "tooltip": "Square size the networks run at; the vox models were trained at 256.",
                    },
                ),
            }
        }

    RETURN_TYPES = ("MS_PARTSWAP_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Load the segmentation and reconstruction networks of a part-swap checkpoint."

    def load(self, checkpoint: str, face_parser: str = NO_PARSER, image_size: int = 256) -> tuple:
        if not isinstance(image_size, int) or image_size < 64 or image_size % 32:
            raise InputError(f"image_size must be a multiple of 32 and at least 64; got {image_size}.")
        if not isinstance(checkpoint, str) or not checkpoint:
            raise InputError(f"checkpoint must name a file in models/{FOLDER}, e.g. {DEFAULT_FILE}.")
        spec = WEIGHTS.get(checkpoint, WEIGHTS[DEFAULT_FILE])
        model = load_partswap_checkpoint(weights.resolve(spec, name=checkpoint), image_size=image_size)
        if face_parser and face_parser != NO_PARSER:
            model.face_parser = load_face_parser(weights.resolve(PARSER, name=face_parser))
        return (model,)


class MotionSuite_PartSwap_Swap:
    """Swaps the chosen parts of the source face into every driving frame."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MS_PARTSWAP_MODEL", {"tooltip": "Output of 'Load Part Swap'."}),
                "source_image": ("IMAGE", {"tooltip": "The face whose parts are taken (first image used)."}),
                "driving_frames": (
                    "IMAGE",
                    {"tooltip": "Target video frames that receive the source's parts (their motion stays)."},
                ),
                "segments": (
                    "STRING",
                    {
                        "default": "eyes",
                        "tooltip": "Parts to swap, by name or index, comma separated (e.g. 'eyes, mouth' or "
                        "'2,7'). Names follow the mask source: learned parts of the checkpoint (see the "
                        "Parts (N) chooser nodes) or the face parser's classes. Connect a chooser node here.",
                    },
                ),
                "use_face_parser": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Take the mask from the face parser's classes instead of the learned "
                        "parts (upstream --supervised; needed by FOMM checkpoints).",
                    },
                ),
                "use_source_segmentation": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Mask from the source's segmentation (moved with the source) instead of "
                        "each target frame's: the swapped region keeps the source's part shape.",
                    },
                ),
                "hard_edges": (
                    "BOOLEAN",
                    {"default": False, "tooltip": "Threshold the mask at 0.5 (hard labels) before blending."},
                ),
                "blend_scale": (
                    list(BLEND_SCALES),
                    {
                        "default": "auto",
                        "tooltip": "Anti-aliased downscaling of the mask to the feature size (upstream "
                        "blend_scale): 1 keeps the edges, smaller values soften them. auto: 1 with learned "
                        "parts, 0.125 with the face parser (its 512 px mask to 64 px features).",
                    },
                ),
                "fit": (
                    list(FITS),
                    {
                        "default": "crop",
                        "tooltip": "How inputs become square: centre crop, pad the whole frame, or stretch.",
                    },
                ),
                "paste_back": (
                    "BOOLEAN",
                    {"default": True, "tooltip": "Paste the swapped square back into the full-size frames."},
                ),
                "viz_alpha": (
                    "FLOAT",
                    {
                        "default": 0.6,
                        "min": 0.0,
                        "max": 1.0,
                        "step": 0.05,
                        "tooltip": "Opacity of the part colours in the segmentation pictures.",
                    },
                ),
                "batch_size": (
                    "INT",
                    {"default": default_batch_size("partswap", 8), "min": 1, "max": 256,
                     "tooltip": "Frames per pass (memory vs speed)."},
                ),
            }
        }

    RETURN_TYPES = ("IMAGE", "IMAGE", "IMAGE")
    RETURN_NAMES = ("images", "source_segmentation", "driving_segmentation")
    FUNCTION = "swap"
    CATEGORY = CATEGORY
    DESCRIPTION = "Motion-supervised co-part segmentation part swap, with segmentation pictures."

    def swap(
        self,
        model,
        source_image,
        driving_frames,
        segments: str = "eyes",
        use_face_parser: bool = False,
        use_source_segmentation: bool = False,
        hard_edges: bool = False,
        blend_scale: str = "auto",
        fit: str = "crop",
        paste_back: bool = True,
        viz_alpha: float = 0.6,
        batch_size: int = 8,
    ) -> tuple:
        if not isinstance(model, PartSwapModel):
            raise InputError("model must come from the 'Load Part Swap' node (MotionSuite_PartSwap_Loader).")
        if not isinstance(segments, str):
            raise InputError("segments must be text: part names or indices separated by commas.")
        return part_swap(
            model,
            source_image,
            driving_frames,
            segments,
            use_face_parser=use_face_parser,
            use_source_segmentation=use_source_segmentation,
            hard_edges=hard_edges,
            blend_scale=blend_scale,
            fit=fit,
            paste_back=paste_back,
            viz_alpha=viz_alpha,
            batch_size=batch_size,
        )


def _chooser(title: str, names: tuple[str, ...], defaults: set[str], source: str) -> type:
    """A node with one switch per part that outputs the ticked names for the Part Swap node."""

    def input_types(cls) -> dict:
        return {
            "required": {
                name: (
                    "BOOLEAN",
                    {"default": name in defaults, "tooltip": f"Swap '{name}' (index {i} of {source})."},
                )
                for i, name in enumerate(names)
            }
        }

    def choose(self, **flags: bool) -> tuple:
        unknown = sorted(set(flags) - set(names))
        if unknown:
            raise InputError(f"unknown parts {unknown}; this chooser has {', '.join(names)}.")
        chosen = [name for name in names if flags.get(name)]
        if not chosen:
            raise InputError(f"{title}: tick at least one part to swap.")
        return (", ".join(chosen),)

    return type(
        title.replace(" ", ""),
        (),
        {
            "INPUT_TYPES": classmethod(input_types),
            "RETURN_TYPES": ("STRING",),
            "RETURN_NAMES": ("segments",),
            "FUNCTION": "choose",
            "CATEGORY": CATEGORY,
            "DESCRIPTION": f"Pick parts of {source} by name; connect to Part Swap's 'segments'.",
            "__doc__": f"Part chooser for {source}.",
            "choose": choose,
        },
    )


CHOOSERS = {
    "MotionSuite_PartSwap_Parts5": _chooser("Parts 5", SEGMENT_NAMES[5], {"hair"}, "vox-5segments"),
    "MotionSuite_PartSwap_Parts10": _chooser("Parts 10", SEGMENT_NAMES[10], {"eyes"}, "vox-10segments"),
    "MotionSuite_PartSwap_Parts15": _chooser("Parts 15", SEGMENT_NAMES[15], {"eyes"}, "vox-15segments"),
    "MotionSuite_PartSwap_FaceParts": _chooser("Face Parts", CLASSES, {"hair"}, "the BiSeNet face parser"),
}

NODE_CLASS_MAPPINGS = {
    "MotionSuite_PartSwap_Loader": MotionSuite_PartSwap_Loader,
    "MotionSuite_PartSwap_Swap": MotionSuite_PartSwap_Swap,
    **CHOOSERS,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_PartSwap_Loader": "Load Part Swap (PartSwap)",
    "MotionSuite_PartSwap_Swap": "Part Swap (PartSwap)",
    "MotionSuite_PartSwap_Parts5": "Parts: 5 segments (PartSwap)",
    "MotionSuite_PartSwap_Parts10": "Parts: 10 segments (PartSwap)",
    "MotionSuite_PartSwap_Parts15": "Parts: 15 segments (PartSwap)",
    "MotionSuite_PartSwap_FaceParts": "Parts: face parser (PartSwap)",
}
