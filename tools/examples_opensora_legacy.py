"""Open-Sora 1.1 text → video with the legacy nodes and the SD VAE (PixArt: same graph, another version)."""

from __future__ import annotations

from tools.build_workflows import example, video_out
from tools.workflow import Graph


def _text(g: Graph, prompt: str):
    """The shared Open-Sora T5 encoder; the v1.2 score suffixes are off (older models lack them)."""
    return g.add(
        "MotionSuite_OpenSora_TextEncoder", t5="t5-v1_1-xxl", prompt=prompt, aesthetic_score=0.0,
        motion_score=0.0, camera_motion="none",
    )  # fmt: skip


@example
def opensora_v11_t2v(g: Graph) -> None:
    """Text → video with Open-Sora 1.1 (STDiT2 + SD VAE, IDDPM, CFG 7). A quick 144p, 16-frame, 30-step
    preview: set resolution to 'trained size' (240×426, where v1.1 looks best) and steps to 0 (upstream's
    100) for real output. Checkpoint hpcai-tech/OpenSora-STDiT-v2-stage3 in models/opensora, sd-vae-ft-ema
    beside it. For PixArt-α/Σ images pick that version on the loader and save the IMAGE instead."""
    loader = g.add(
        "MotionSuite_OpenSora_LegacyLoader", version="v1.1 (STDiT2, video)", resolution="144p",
        aspect_ratio="16:9 landscape", frames=16,
    )  # fmt: skip
    cond = _text(g, "a red fox walks through fresh snow in a quiet pine forest, soft morning light")
    latent = g.add(
        "MotionSuite_OpenSora_LegacySampler", model=loader.out(0), positive=cond.out("positive"),
        negative=cond.out("negative"), steps=30, guidance=7.0,
    )  # fmt: skip
    frames = g.add("MotionSuite_OpenSora_LegacyDecoder", model=loader.out(0), latent=latent.out(0))
    video_out(g, frames.out(0), loader.out("fps"), "MotionSuite/opensora_v11_t2v")
