"""Example workflow for MRFA: a portrait animated by a talking-head video."""

from __future__ import annotations

from tools.build_workflows import example, video_in, video_out
from tools.workflow import Graph


@example
def mrfa(g: Graph) -> None:
    """A portrait animated by a talking-head video (MRFA VoxCeleb model, relative motion)."""
    model = g.add("MotionSuite_MRFA_Loader", checkpoint="vox.pth")
    source = g.add("LoadImage", image="source.png", title="Source portrait")
    frames, fps = video_in(g)
    animated = g.add(
        "MotionSuite_MRFA_Animate",
        model=model.out(0),
        source_image=source.out(0),
        driving_frames=frames,
        mode="relative",
        paste_back=True,
    )
    video_out(g, animated.out(0), fps, "MotionSuite/mrfa")
