"""Example workflow for FSRT (built by ``python tools/build_workflows.py fsrt``)."""

from __future__ import annotations

from tools.build_workflows import example, video_in, video_out
from tools.workflow import Graph


@example
def fsrt(g: Graph) -> None:
    """A portrait rendered with the pose and expression of a talking-head video (vox256, relative)."""
    model = g.add("MotionSuite_FSRT_Loader", checkpoint="vox256.pt", kp_detector="kp_detector.pt")
    source = g.add("LoadImage", image="source.png", title="Source portrait")
    frames, fps = video_in(g)
    animated = g.add(
        "MotionSuite_FSRT_Animate",
        model=model.out(0),
        source_images=source.out(0),
        driving_frames=frames,
        relative=True,
        adapt_scale=True,
        paste_back=True,
    )
    video_out(g, animated.out(0), fps, "MotionSuite/fsrt")
