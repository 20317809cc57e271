"""Open-Sora example workflows: text → video, first frame → video, first + last frame → video."""

from __future__ import annotations

from tools.build_workflows import example, video_out
from tools.workflow import Graph

PROMPT = (
    "a small red fishing boat sails across a calm blue sea at sunset, gentle waves, the camera follows "
    "the boat slowly"
)


def _common(g: Graph, resolution: str, frames: int, prompt: str, camera: str = "none"):
    loader = g.add(
        "MotionSuite_OpenSora_Loader",
        dit="OpenSora-STDiT-v3",
        vae="OpenSora-VAE-v1.2",
        resolution=resolution,
        aspect_ratio="16:9 landscape",
        frames=frames,
    )
    cond = g.add(
        "MotionSuite_OpenSora_TextEncoder", t5="t5-v1_1-xxl", prompt=prompt, motion_score=5.0,
        camera_motion=camera,
    )  # fmt: skip
    return loader, cond


def _finish(g: Graph, loader, latent, prefix: str) -> None:
    frames = g.add("MotionSuite_OpenSora_Decoder", model=loader.out(0), latent=latent.out(0))
    video_out(g, frames.out(0), loader.out("fps"), prefix)


@example
def opensora_t2v(g: Graph) -> None:
    """Text → video (Open-Sora 1.2, 30 rectified-flow steps, CFG 7). A quick 144p, 17-frame preview:
    raise resolution (240p…720p) and frames (51 = 2 s, 102 = 4 s) on the loader for real output."""
    loader, cond = _common(g, "144p", 17, PROMPT)
    latent = g.add(
        "MotionSuite_OpenSora_Sampler", model=loader.out(0), positive=cond.out("positive"),
        negative=cond.out("negative"), steps=30, guidance=7.0,
    )  # fmt: skip
    _finish(g, loader, latent, "MotionSuite/opensora_t2v")


@example
def opensora_i2v(g: Graph) -> None:
    """An image animated from its first frame (image → video; 144p, 17 frames: raise them for real output)."""
    loader, cond = _common(
        g, "144p", 17, "a lighthouse on a cliff, waves crash below, clouds drift", "zoom out"
    )
    image = g.add("LoadImage", image="first_frame.png", title="First frame")
    ref = g.add("MotionSuite_OpenSora_Encoder", model=loader.out(0), images=image.out(0))
    latent = g.add(
        "MotionSuite_OpenSora_Sampler", model=loader.out(0), positive=cond.out("positive"),
        negative=cond.out("negative"), mode="first frame", reference=ref.out(0),
    )  # fmt: skip
    _finish(g, loader, latent, "MotionSuite/opensora_i2v")


@example
def opensora_first_last(g: Graph) -> None:
    """A video that starts on one image and ends on another (144p, 17 frames: raise them for real output)."""
    loader, cond = _common(g, "144p", 17, "a flower bud slowly opens into a blossom, soft light")
    first = g.add("LoadImage", image="first_frame.png", title="First frame")
    last = g.add("LoadImage", image="last_frame.png", title="Last frame")
    ref = g.add(
        "MotionSuite_OpenSora_Encoder", model=loader.out(0), images=first.out(0), more_images=last.out(0)
    )
    latent = g.add(
        "MotionSuite_OpenSora_Sampler", model=loader.out(0), positive=cond.out("positive"),
        negative=cond.out("negative"), mode="first + last frame", reference=ref.out(0),
    )  # fmt: skip
    _finish(g, loader, latent, "MotionSuite/opensora_first_last")
