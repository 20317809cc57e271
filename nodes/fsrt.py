"""ComfyUI nodes for FSRT (Facial Scene Representation Transformer): a loader and an animate node."""

from __future__ import annotations

from ..pipelines.core import weights
from ..pipelines.core.device import DTYPE_CHOICES, get_torch_device, resolve_dtype
from ..pipelines.core.errors import InputError
from ..pipelines.fsrt import FITS, WEIGHTS, FSRTModel, animate, load_model
from ..pipelines.fsrt.model import FOLDER

CATEGORY = "MotionSuite/FSRT"
MODELS = ("vox256.pt", "vox256_2Source.pt")
KP_FILE = "kp_detector.pt"
EXTS = (".pt", ".pth", ".pth.tar", ".safetensors")


def _model_choices() -> list[str]:
    found = [f for f in weights.list_files(FOLDER, EXTS) if f not in MODELS and f != KP_FILE]
    return [*MODELS, *found]


def _kp_choices() -> list[str]:
    found = [f for f in weights.list_files(FOLDER, EXTS) if f != KP_FILE and f not in MODELS]
    return [KP_FILE, *found]


class MotionSuite_FSRT_Loader:
    """Loads an FSRT checkpoint (encoder, decoder, expression encoder) and the shared keypoint detector."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "checkpoint": (_model_choices(), {
                    "default": MODELS[0],
                    "tooltip": f"FSRT model in models/{FOLDER}: vox256.pt (trained with 1 source image) or "
                               "vox256_2Source.pt (trained with 2; give it two source images).",
                }),
                "kp_detector": (_kp_choices(), {
                    "default": KP_FILE,
                    "tooltip": f"Keypoint detector weights in models/{FOLDER}; the release ships one "
                               "kp_detector.pt for all FSRT models.",
                }),
                "precision": (list(DTYPE_CHOICES), {
                    "default": "auto",
                    "tooltip": "Encoder/decoder precision (auto = fp16 on GPU, fp32 on CPU); the keypoint "
                               "detector and expression encoder always run in fp32.",
                }),
                "image_size": ("INT", {
                    "default": 256, "min": 64, "max": 512, "step": 64,
                    "tooltip": "Square size the model runs at (the decoder renders this many pixels per "
                               "frame); the released models were trained at 256 and need a multiple of 128.",
                }),
            }
        }

    RETURN_TYPES = ("MS_FSRT_MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Load the FSRT networks (vox256 / vox256_2Source) and the keypoint detector."

    def load(self, checkpoint: str, kp_detector: str = KP_FILE, precision: str = "auto",
             image_size: int = 256) -> tuple:
        if not isinstance(image_size, int) or image_size < 64:
            raise InputError(f"image_size must be an integer of at least 64; got {image_size!r}.")
        if checkpoint == KP_FILE:
            raise InputError("checkpoint must be an FSRT model (vox256.pt or vox256_2Source.pt); "
                             "kp_detector.pt goes into the kp_detector input.")
        path = weights.resolve(WEIGHTS.get(checkpoint, WEIGHTS[MODELS[0]]), name=checkpoint)
        kp_path = weights.resolve(WEIGHTS[KP_FILE], name=kp_detector)
        if precision not in DTYPE_CHOICES:
            raise InputError(f"precision must be one of {', '.join(DTYPE_CHOICES)}; got {precision!r}.")
        dtype = resolve_dtype(precision, get_torch_device())
        return (load_model(path, kp_path, image_size=image_size, dtype=dtype),)


class MotionSuite_FSRT_Animate:
    """Renders the source face(s) with the keypoints and expression of every driving frame."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "model": ("MS_FSRT_MODEL", {"tooltip": "Output of 'Load FSRT (FSRT)'."}),
                "source_images": ("IMAGE", {
                    "tooltip": "One or more views of the face to animate; all of them are encoded together "
                               "(use 2 with vox256_2Source). Paste-back uses the first.",
                }),
                "driving_frames": ("IMAGE", {"tooltip": "Driving video frames; one output frame per frame."}),
                "relative": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Move the first source's keypoints by the driving motion since the reference "
                               "frame (keeps the source face shape; upstream recommends it with "
                               "adapt_scale). Off: use the driving keypoints as they are (absolute).",
                }),
                "adapt_scale": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Relative mode: scale the motion by the ratio of the keypoint hull sizes of "
                               "source and reference frame.",
                }),
                "fit": (list(FITS), {
                    "default": "crop",
                    "tooltip": "How inputs become square: centre crop, crop around the face (needs "
                               "face-alignment), pad the whole frame, or stretch (as the seed pack).",
                }),
                "paste_back": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "Paste the animated square back into the full first source image.",
                }),
                "reference_frame": ("INT", {
                    "default": 0, "min": 0, "max": 100000,
                    "tooltip": "Relative mode: driving frame whose pose is taken as the source's pose.",
                }),
                "find_best_frame": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Relative mode: use the driving frame whose face pose is closest to the first "
                               "source as reference (needs face-alignment; overrides reference_frame).",
                }),
                "max_num_pixels": ("INT", {
                    "default": 65536, "min": 256, "max": 1048576, "step": 256,
                    "tooltip": "Query rays (pixels, across frames) decoded at once. Lower it if you run out "
                               "of memory; raise it for speed on a large GPU. 65536 = one 256x256 frame.",
                }),
                "batch_size": ("INT", {
                    "default": 8, "min": 1, "max": 256,
                    "tooltip": "Driving frames per keypoint-detector pass.",
                }),
                "keep_model_loaded": ("BOOLEAN", {
                    "default": False,
                    "tooltip": "Leave the networks on the GPU after the run (faster next run, holds memory).",
                }),
            }
        }

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    FUNCTION = "animate"
    CATEGORY = CATEGORY
    DESCRIPTION = "FSRT: render the source face(s) with each driving frame's pose and expression."

    def animate(self, model, source_images, driving_frames, relative: bool = False, adapt_scale: bool = False,
                fit: str = "crop", paste_back: bool = True, reference_frame: int = 0,
                find_best_frame: bool = False, max_num_pixels: int = 65536, batch_size: int = 8,
                keep_model_loaded: bool = False) -> tuple:
        if not isinstance(model, FSRTModel):
            raise InputError("model must come from the 'Load FSRT' node (MotionSuite_FSRT_Loader).")
        frames = animate(model, source_images, driving_frames, relative=relative, adapt_scale=adapt_scale,
                         fit=fit, paste_back=paste_back, max_num_pixels=max_num_pixels, batch_size=batch_size,
                         reference_frame=reference_frame, find_best_frame=find_best_frame,
                         keep_loaded=bool(keep_model_loaded))
        return (frames,)


NODE_CLASS_MAPPINGS = {
    "MotionSuite_FSRT_Loader": MotionSuite_FSRT_Loader,
    "MotionSuite_FSRT_Animate": MotionSuite_FSRT_Animate,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "MotionSuite_FSRT_Loader": "Load FSRT (FSRT)",
    "MotionSuite_FSRT_Animate": "Animate (FSRT)",
}
