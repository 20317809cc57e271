"""Example workflow for DisPose: ``python tools/build_workflows.py dispose``."""

from __future__ import annotations

from tools.build_workflows import example, video_in, video_out
from tools.workflow import Graph


@example
def dispose(g: Graph) -> None:
    """A reference person dancing to a driving video: DWPose on both, then DisPose.

    The size (64x128) and the step count (6) are kept tiny so the workflow test runs fast on
    CPU; for real use set 576x1024 (the training size) in the motion encoder and 25 steps.
    """
    model = g.add("MotionSuite_DisPose_Loader", precision="auto", dift_folder="stable-diffusion-v1-5")
    reference = g.add("LoadImage", image="reference.png", title="Reference person")
    frames, fps = video_in(g)
    ref_pose = g.add("MotionSuite_DisPose_DWPose", images=reference.out(0), title="DWPose (reference)")
    drv_pose = g.add("MotionSuite_DisPose_DWPose", images=frames, title="DWPose (driving video)")
    condition = g.add(
        "MotionSuite_DisPose_MotionEncoder",
        title="Motion Encoder (DisPose): set 576x1024 for real use",
        model=model.out(0),
        reference=reference.out(0),
        reference_pose=ref_pose.out("pose_keypoint"),
        driving_pose=drv_pose.out("pose_keypoint"),
        width=64,
        height=128,
        fit="crop",
        retarget="global",
    )
    g.add("PreviewImage", images=condition.out("pose_preview"), title="Pose images fed to PoseNet")
    latent = g.add(
        "MotionSuite_DisPose_Sampler",
        model=model.out(0),
        condition=condition.out("condition"),
        title="Sampler (DisPose): 25 steps for real use",
        steps=6,
        min_guidance=2.0,
        max_guidance=2.0,
        tile_size=16,
        tile_overlap=6,
    )
    images = g.add("MotionSuite_DisPose_Decoder", model=model.out(0), latent=latent.out(0), chunk_size=8)
    video_out(g, images.out(0), fps, "MotionSuite/dispose")
