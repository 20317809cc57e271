"""Example workflow for part swap (motion-cosegmentation)."""

from __future__ import annotations

from tools.build_workflows import example, video_in, video_out
from tools.workflow import Graph


@example
def partswap(g: Graph) -> None:
    """The eyes and mouth of a source portrait put into a talking-head video (10 learned parts)."""
    model = g.add("MotionSuite_PartSwap_Loader", checkpoint="vox-10segments.pth.tar", face_parser="none")
    source = g.add("LoadImage", image="source.png", title="Source face (parts come from it)")
    frames, fps = video_in(g)
    parts = g.add("MotionSuite_PartSwap_Parts10", eyes=True, mouth=True)
    swapped = g.add(
        "MotionSuite_PartSwap_Swap",
        model=model.out(0),
        source_image=source.out(0),
        driving_frames=frames,
        segments=parts.out(0),
        paste_back=True,
    )
    video_out(g, swapped.out("images"), fps, "MotionSuite/partswap")
    g.add("PreviewImage", images=swapped.out("source_segmentation"), title="Source parts")
    g.add("PreviewImage", images=swapped.out("driving_segmentation"), title="Target parts per frame")
