"""ComfyUI nodes for MRFA (motion refinement face animation): a loader and an animate node."""

from __future__ import annotations

from ..pipelines.core import weights
from ..pipelines.core.errors import InputError
from ..pipelines.fomm.batching import default_batch_size
from ..pipelines.mrfa import FITS, MODES, WEIGHTS, animate, load_model
from ..pipelines.mrfa.model import FOLDER

CATEGORY = "MotionSuite/MRFA"
DEFAULT_FILE = "vox.pth"


def _checkpoint_choices() -> list[str]:
    found = weights.list_files(FOLDER, (".pth", ".pth.tar", ".pt"))
    released = [name for name in WEIGHTS if name not in found]
    return found + released


class MotionSuite_MRFA_Loader:
    """Loads an MRFA checkpoint (keypoint transformer, prior dense motion, refinement decoder and,
    for celebvhq, the background motion predictor)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "checkpoint": (
                    _checkpoint_choices(),
                    {
                        "default": DEFAULT_FILE,
                        "tooltip": f"MRFA checkpoint in models/{FOLDER}: vox.pth (VoxCeleb faces) or "
                        "celebvhq.pth (CelebV-HQ faces, with background motion).",
                    },
                ),
            }
        }

    RETURN_TYPES = ("MS_MRFA_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Load the MRFA networks from a released .pth file (no network access, no VGG)."

    def load(self, checkpoint: str) -> tuple:
        if not isinstance(checkpoint, str) or not checkpoint:
            raise InputError("checkpoint must be a file name in models/mrfa, e.g. vox.pth.")
        spec = WEIGHTS.get(checkpoint, WEIGHTS[DEFAULT_FILE])
        path = weights.resolve(spec, name=checkpoint)
        return (load_model(path),)


class MotionSuite_MRFA_Animate:
    """Animates a source face with the motion of a driving video (IMAGE batch)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MS_MRFA_MODEL", {"tooltip": "Output of the MRFA loader."}),
                "source_image": ("IMAGE", {"tooltip": "The face to animate (the first image is used)."}),
                "driving_frames": ("IMAGE", {"tooltip": "Driving video frames whose motion is transferred."}),
                "mode": (
                    list(MODES),
                    {
                        "default": "relative",
                        "tooltip": "relative: motion since the reference frame added to the source pose "
                        "(keeps the source's face shape); absolute: the driving keypoints as they are.",
                    },
                ),
                "adapt_movement_scale": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Relative mode: scale the motion by the ratio of source and reference "
                        "face sizes (keypoint hull areas). Upstream's README suggests it on.",
                    },
                ),
                "background_motion": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "celebvhq only: also transfer camera/background motion with its "
                        "background predictor (relative: since the reference frame).",
                    },
                ),
                "fit": (
                    list(FITS),
                    {
                        "default": "crop",
                        "tooltip": "How inputs become square: centre crop, crop around the face "
                        "(needs face-alignment), pad the whole frame, or stretch.",
                    },
                ),
                "paste_back": (
                    "BOOLEAN",
                    {
                        "default": True,
                        "tooltip": "Paste the animated square back into the full source frame.",
                    },
                ),
                "reference_frame": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 100000,
                        "tooltip": "Relative mode: driving frame whose pose matches the source.",
                    },
                ),
                "find_best_frame": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Relative mode: use the driving frame whose face pose is closest to the "
                        "source as reference (needs face-alignment; overrides reference_frame).",
                    },
                ),
                "batch_size": (
                    "INT",
                    {
                        "default": default_batch_size("mrfa", 4),
                        "min": 1,
                        "max": 256,
                        "tooltip": "Frames per forward pass (memory vs speed; about 0.3 GB per frame "
                        "at 256 px for the correlation volume).",
                    },
                ),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "animate"
    CATEGORY = CATEGORY
    DESCRIPTION = "Face animation with learned motion refinement (MRFA, NeurIPS 2023)."

    def animate(
        self,
        model,
        source_image,
        driving_frames,
        mode: str = "relative",
        adapt_movement_scale: bool = False,
        background_motion: bool = False,
        fit: str = "crop",
        paste_back: bool = True,
        reference_frame: int = 0,
        find_best_frame: bool = False,
        batch_size: int = 4,
    ) -> tuple:
        if not hasattr(model, "decoder") or not hasattr(model, "encoder"):
            raise InputError("model must come from the 'Load MRFA' node (MotionSuite_MRFA_Loader).")
        frames = animate(
            model,
            source_image,
            driving_frames,
            mode=mode,
            adapt_movement_scale=adapt_movement_scale,
            background_motion=background_motion,
            fit=fit,
            paste_back=paste_back,
            batch_size=batch_size,
            reference_frame=reference_frame,
            find_best_frame=find_best_frame,
        )
        return (frames,)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_MRFA_Loader": MotionSuite_MRFA_Loader,
    "MotionSuite_MRFA_Animate": MotionSuite_MRFA_Animate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_MRFA_Loader": "Load MRFA (MRFA)",
    "MotionSuite_MRFA_Animate": "Animate (MRFA)",
}
