"""Writes the example workflows in workflows/ (UI JSON, API JSON, PNG).

    python tools/build_workflows.py            # all
    python tools/build_workflows.py fomm       # one

Each example is a short function decorated with ``@example``, here or in a per-pipeline module
``tools/examples_<pipeline>.py`` (imported automatically); the builder checks node and link types
while it runs.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.workflow import Graph, node_definitions  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "workflows"
EXAMPLES: dict[str, Callable[[Graph], None]] = {}


def example(fn: Callable[[Graph], None]) -> Callable[[Graph], None]:
    EXAMPLES[fn.__name__] = fn
    return fn


def video_in(g: Graph, file: str = "driving.mp4"):
    """Core Load Video → Get Video Components: (frames, fps) outputs."""
    components = g.add("GetVideoComponents", video=g.add("LoadVideo", file=file).out(0))
    return components.out("images"), components.out("fps")


def video_out(g: Graph, frames, fps, prefix: str) -> None:
    """Core Create Video → Save Video."""
    g.add("SaveVideo", video=g.add("CreateVideo", images=frames, fps=fps).out(0), filename_prefix=prefix)


@example
def fomm(g: Graph) -> None:
    """A portrait animated by a talking-head video (VoxCeleb model)."""
    model = g.add("MotionSuite_FOMM_Loader", model_name="vox-adv-cpk.pth.tar")
    source = g.add("LoadImage", image="source.png", title="Source portrait")
    frames, fps = video_in(g)
    animated = g.add(
        "MotionSuite_FOMM_Animate",
        fomm_model=model.out(0),
        source=source.out(0),
        driving=frames,
        paste_back=True,
    )
    video_out(g, animated.out(0), fps, "MotionSuite/fomm")


@example
def disco(g: Graph) -> None:
    """A reference person dancing to a pose video (DisCo image model, 256², DDIM)."""
    model = g.add("MotionSuite_DisCo_Loader", checkpoint="moretiktok_cfg/mp_rank_00_model_states.pt")
    reference = g.add("LoadImage", image="reference.png", title="Reference person")
    condition = g.add("MotionSuite_DisCo_Encoder", model=model.out(0), reference=reference.out(0))
    poses, fps = video_in(g, "poses.mp4")
    latent = g.add(
        "MotionSuite_DisCo_Sampler", model=model.out(0), condition=condition.out(0), poses=poses, steps=20
    )
    frames = g.add("MotionSuite_DisCo_Decoder", model=model.out(0), latent=latent.out(0))
    video_out(g, frames.out(0), fps, "MotionSuite/disco")


def load_pipeline_examples() -> None:
    """Import ``tools/examples_*.py`` so pipelines keep their examples in their own file."""
    # Run as a script this module is __main__; alias it so the examples register in this EXAMPLES.
    sys.modules.setdefault("tools.build_workflows", sys.modules[__name__])
    for path in sorted(Path(__file__).parent.glob("examples_*.py")):
        importlib.import_module(f"tools.{path.stem}")


def main(names: list[str]) -> None:
    load_pipeline_examples()
    defs = node_definitions()
    for name in names or list(EXAMPLES):
        g = Graph(defs)
        EXAMPLES[name](g)
        for path in g.save(OUT / name):
            print("wrote", path.relative_to(OUT.parent))


if __name__ == "__main__":
    main(sys.argv[1:])
