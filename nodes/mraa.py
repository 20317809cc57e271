"""ComfyUI nodes for MRAA (Motion Representations for Articulated Animation): a loader and an animate node."""

from __future__ import annotations

from ..pipelines.core import weights
from ..pipelines.core.errors import InputError
from ..pipelines.fomm.batching import default_batch_size
from ..pipelines.mraa import FITS, MODES, WEIGHTS, animate, load_model
from ..pipelines.mraa.model import DEFAULT_FILE, FOLDER

CATEGORY = "MotionSuite/MRAA"


def _checkpoint_choices() -> list[str]:
    found = weights.list_files(FOLDER, (".pth", ".pth.tar", ".pt", ".tar"))
    return found if DEFAULT_FILE in found else [DEFAULT_FILE, *found]


class MotionSuite_MRAA_Loader:
    """Loads an MRAA checkpoint (region predictor, generator, AVD and background networks)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "checkpoint": (
                    _checkpoint_choices(),
                    {
                        "default": DEFAULT_FILE,
                        "tooltip": f"MRAA checkpoint in models/{FOLDER} (released: vox256.pth faces, "
                        "taichi256.pth bodies, ted384.pth / ted-youtube384.pth upper bodies, mgif256.pth).",
                    },
                ),
                "image_size": (
                    "INT",
                    {
                        "default": 0,
                        "min": 0,
                        "max": 1024,
                        "step": 32,
                        "tooltip": "Square size the model runs at; 0 = the checkpoint's training size "
                        "(384 for the ted models, else 256).",
                    },
                ),
            }
        }

    RETURN_TYPES = ("MS_MRAA_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Load the MRAA networks from one released .pth file."

    def load(self, checkpoint: str, image_size: int = 0) -> tuple:
        if image_size and (image_size < 64 or image_size % 32):
            raise InputError(f"image_size must be 0 (auto) or a multiple of 32 from 64; got {image_size}.")
        spec = WEIGHTS.get(checkpoint, WEIGHTS[DEFAULT_FILE])
        path = weights.resolve(spec, name=checkpoint)
        return (load_model(path, image_size=image_size),)


class MotionSuite_MRAA_Animate:
    """Animates a source image with the motion of a driving video (IMAGE batch)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MS_MRAA_MODEL", {"tooltip": "Output of the MRAA loader."}),
                "source_image": ("IMAGE", {"tooltip": "The object to animate (the first image is used)."}),
                "driving_frames": ("IMAGE", {"tooltip": "Driving video frames whose motion is transferred."}),
                "mode": (
                    list(MODES),
                    {
                        "default": "avd",
                        "tooltip": "avd: the AVD network puts the driving pose on the source's shape "
                        "(upstream default); relative: motion since the reference frame applied to the "
                        "source regions; standard: the driving regions as they are.",
                    },
                ),
                "fit": (
                    list(FITS),
                    {
                        "default": "crop",
                        "tooltip": "How inputs become square: centre crop, crop around the face "
                        "(vox model; needs face-alignment), pad the whole frame, or stretch.",
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
                "background_motion": (
                    "BOOLEAN",
                    {
                        "default": False,
                        "tooltip": "Also move the background by the background-motion network (camera "
                        "motion; upstream uses it only in training).",
                    },
                ),
                "batch_size": (
                    "INT",
                    {
                        "default": default_batch_size("mraa", 8),
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
    DESCRIPTION = "Articulated motion transfer (MRAA regions) from driving frames to a source image."

    def animate(
        self,
        model,
        source_image,
        driving_frames,
        mode: str = "avd",
        fit: str = "crop",
        paste_back: bool = True,
        reference_frame: int = 0,
        background_motion: bool = False,
        batch_size: int = 8,
    ) -> tuple:
        if not hasattr(model, "region_predictor"):
            raise InputError("model must come from the 'Load MRAA' node (MotionSuite_MRAA_Loader).")
        frames = animate(
            model,
            source_image,
            driving_frames,
            mode=mode,
            fit=fit,
            paste_back=paste_back,
            batch_size=batch_size,
            reference_frame=reference_frame,
            background_motion=background_motion,
        )
        return (frames,)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_MRAA_Loader": MotionSuite_MRAA_Loader,
    "MotionSuite_MRAA_Animate": MotionSuite_MRAA_Animate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_MRAA_Loader": "Load MRAA (MRAA)",
    "MotionSuite_MRAA_Animate": "Animate (MRAA)",
}
