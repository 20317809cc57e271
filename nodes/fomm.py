"""ComfyUI nodes for the First Order Motion Model (thin adapters over pipelines/fomm)."""

from __future__ import annotations

import torch

from ..pipelines.core import images, weights
from ..pipelines.core.errors import InputError
from ..pipelines.core.progress import Progress
from ..pipelines.fomm.animate import CROP_MODES, AnimateOptions, animate
from ..pipelines.fomm.batching import default_batch_size
from ..pipelines.fomm.model import FOLDER, SPECS, FommModel, load_fomm_checkpoint
from ..pipelines.fomm.motion import MotionOptions

CATEGORY = "MotionSuite/FOMM"


def _choices() -> list[str]:
    """Released files first (chosen ones download or explain where to get them), then any others found."""
    released = [spec.filename for spec in reversed(list(SPECS.values()))]
    found = [f for f in weights.list_files(FOLDER) if f not in released]
    return released + found


class MotionSuite_FOMM_Loader:
    """Loads vox-cpk / vox-adv-cpk (models/fomm) into an MS_FOMM_MODEL."""

    @classmethod
    def INPUT_TYPES(cls):
        choices = _choices()
        return {"required": {
            "model_name": (choices, {"default": choices[0],
                                     "tooltip": "FOMM checkpoint in models/fomm. vox-adv (adversarially "
                                                "fine-tuned) is usually sharper than vox."}),
        }}

    RETURN_TYPES = ("MS_FOMM_MODEL",)
    RETURN_NAMES = ("fomm_model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, model_name: str):
        if not isinstance(model_name, str) or not model_name:
            raise InputError("model_name must name a checkpoint in models/fomm, e.g. vox-adv-cpk.pth.tar.")
        variant = "vox-adv" if "adv" in model_name else "vox"
        path = weights.resolve(SPECS[variant], name=model_name)
        return (load_fomm_checkpoint(path, name=variant),)


class MotionSuite_FOMM_Animate:
    """Animates a source image with the motion of driving frames."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "fomm_model": ("MS_FOMM_MODEL", {"tooltip": "From 'Load Model (FOMM)'."}),
            "source": ("IMAGE", {"tooltip": "The image to animate (first image of the batch is used)."}),
            "driving": ("IMAGE", {"tooltip": "Driving video frames; the output has one frame per frame."}),
            "relative_movement": ("BOOLEAN", {"default": True, "tooltip":
                                  "Move the source keypoints by the driving motion (keeps the source face "
                                  "shape). Off: copy the driving keypoints (absolute)."}),
            "relative_jacobian": ("BOOLEAN", {"default": True, "tooltip":
                                  "Also transfer the local rotations/scales relatively (needs "
                                  "relative_movement)."}),
            "adapt_movement_scale": ("BOOLEAN", {"default": True, "tooltip":
                                     "Scale the motion by the source/driving face size ratio."}),
            "find_best_frame": ("BOOLEAN", {"default": False, "tooltip":
                                "Use the driving frame whose pose is closest to the source as reference "
                                "(needs the face-alignment package)."}),
            "crop": (list(CROP_MODES), {"default": "center", "tooltip":
                     "How inputs become the model's 256x256 square: centre crop, crop around the face "
                     "(face-alignment), or pad the whole frame."}),
            "paste_back": ("BOOLEAN", {"default": False, "tooltip":
                           "Paste the animated square back into the full-size source image."}),
            "batch_size": ("INT", {"default": default_batch_size("fomm", 8), "min": 1, "max": 256, "step": 1,
                                   "tooltip":
                           "Driving frames per batch; halved automatically once on out-of-memory."}),
            "keep_model_loaded": ("BOOLEAN", {"default": False, "tooltip":
                                  "Keep the FOMM networks on the GPU after this run (faster re-runs, "
                                  "less free VRAM for other models)."}),
        }}

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "animate"
    CATEGORY = CATEGORY

    def animate(self, fomm_model, source, driving, relative_movement=True, relative_jacobian=True,
                adapt_movement_scale=True, find_best_frame=False, crop="center", paste_back=False,
                batch_size=8, keep_model_loaded=False):
        if not isinstance(fomm_model, FommModel):
            raise InputError("fomm_model must come from the 'Load Model (FOMM)' node.")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a whole number >= 1; got {batch_size!r}.")
        src = images.to_bchw(source, "source")[:1]
        drv = images.to_bchw(driving, "driving")
        options = AnimateOptions(
            motion=MotionOptions(relative_movement=bool(relative_movement),
                                 relative_jacobian=bool(relative_jacobian),
                                 adapt_movement_scale=bool(adapt_movement_scale)),
            crop=crop, paste_back=bool(paste_back), find_best_frame=bool(find_best_frame),
            keep_loaded=bool(keep_model_loaded))
        with Progress(drv.shape[0], desc="FOMM") as bar:
            out = animate(fomm_model, src, drv, options, batch_size=batch_size, progress=bar.update)
        return (images.to_bhwc(out.to(torch.float32)),)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_FOMM_Loader": MotionSuite_FOMM_Loader,
    "MotionSuite_FOMM_Animate": MotionSuite_FOMM_Animate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_FOMM_Loader": "Load Model (FOMM)",
    "MotionSuite_FOMM_Animate": "Animate (FOMM)",
}
