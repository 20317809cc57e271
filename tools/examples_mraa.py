"""Example workflow for MRAA (articulated animation): ``python tools/build_workflows.py mraa``."""

from __future__ import annotations

from tools.build_workflows import example, video_in, video_out
from tools.workflow import Graph


@example
def mraa(g: Graph) -> None:
    """A portrait animated by a talking-head video (VoxCeleb MRAA model, AVD mode)."""
    model = g.add("MotionSuite_MRAA_Loader", checkpoint="vox256.pth")
    source = g.add("LoadImage", image="source.png", title="Source portrait")
    frames, fps = video_in(g)
    animated = g.add(
        "MotionSuite_MRAA_Animate",
        model=model.out(0),
        source_image=source.out(0),
        driving_frames=frames,
        mode="avd",
        paste_back=True,
    )
    video_out(g, animated.out(0), fps, "MotionSuite/mraa")
