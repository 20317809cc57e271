"""ComfyUI nodes for the Thin-Plate Spline Motion Model: a loader and an animate node."""

from __future__ import annotations

from ..pipelines.core import weights
from ..pipelines.core.errors import InputError
from ..pipelines.fomm.batching import default_batch_size
from ..pipelines.tpsmm import MODES, WEIGHTS, animate, load_model
from ..pipelines.tpsmm.animate import FITS
from ..pipelines.tpsmm.model import FOLDER

CATEGORY = "MotionSuite/TPSMM"
DEFAULT_FILE = "vox.pth.tar"


def _checkpoint_choices() -> list[str]:
    found = weights.list_files(FOLDER, (".pth.tar", ".pth", ".pt", ".tar"))
    return found if DEFAULT_FILE in found else [DEFAULT_FILE, *found]


class MotionSuite_TPSMM_Loader:
    """Loads a TPSMM checkpoint (keypoint detector, dense motion, inpainting and AVD networks)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "checkpoint": (
                    _checkpoint_choices(),
                    {
                        "default": DEFAULT_FILE,
                        "tooltip": f"TPSMM checkpoint in models/{FOLDER} (released: vox.pth.tar, faces).",
                    },
                ),
                "image_size": (
                    "INT",
                    {
                        "default": 256,
                        "min": 64,
                        "max": 1024,
                        "step": 32,
                        "tooltip": "Square size the model runs at; the vox model was trained at 256.",
                    },
                ),
            }
        }

    RETURN_TYPES = ("MS_TPSMM_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Load the Thin-Plate Spline Motion Model networks from one .pth.tar file."

    def load(self, checkpoint: str, image_size: int = 256) -> tuple:
        if image_size < 64 or image_size % 32:
            raise InputError(f"image_size must be a multiple of 32 and at least 64; got {image_size}.")
        spec = WEIGHTS.get(checkpoint, WEIGHTS[DEFAULT_FILE])
        path = weights.resolve(spec, name=checkpoint)
        return (load_model(path, image_size=image_size),)


class MotionSuite_TPSMM_Animate:
    """Animates a source image with the motion of a driving video (IMAGE batch)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MS_TPSMM_MODEL", {"tooltip": "Output of the TPSMM loader."}),
                "source_image": ("IMAGE", {"tooltip": "The face/body to animate (the first image is used)."}),
                "driving_frames": ("IMAGE", {"tooltip": "Driving video frames whose motion is transferred."}),
                "mode": (
                    list(MODES),
                    {
                        "default": "relative",
                        "tooltip": "relative: motion since the reference frame added to the source pose; "
                        "standard: absolute driving keypoints; avd: pose disentangled from identity.",
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
                        "tooltip": "Relative mode: driving frame whose pose matches the source (best frame).",
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
                        "default": default_batch_size("tpsmm", 8),
                        "min": 1,
                        "max": 256,
                        "tooltip": "Frames per forward pass (memory vs speed).",
                    },
                ),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "animate"
    CATEGORY = CATEGORY
    DESCRIPTION = "Thin-plate-spline motion transfer from driving frames to a source image."

    def animate(
        self,
        model,
        source_image,
        driving_frames,
        mode: str = "relative",
        fit: str = "crop",
        paste_back: bool = True,
        reference_frame: int = 0,
        find_best_frame: bool = False,
        batch_size: int = 8,
    ) -> tuple:
        if not hasattr(model, "kp_detector"):
            raise InputError("model must come from the 'Load TPSMM' node (MotionSuite_TPSMM_Loader).")
        frames = animate(
            model,
            source_image,
            driving_frames,
            mode=mode,
            fit=fit,
            paste_back=paste_back,
            batch_size=batch_size,
            reference_frame=reference_frame,
            find_best_frame=find_best_frame,
        )
        return (frames,)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_TPSMM_Loader": MotionSuite_TPSMM_Loader,
    "MotionSuite_TPSMM_Animate": MotionSuite_TPSMM_Animate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_TPSMM_Loader": "Load TPSMM (TPSMM)",
    "MotionSuite_TPSMM_Animate": "Animate (TPSMM)",
}
