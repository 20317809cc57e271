"""Default number of driving frames per network pass for the FOMM family, per device.

On a GPU a batch of frames fills the device, so the nodes default to a batch of several frames. On
the CPU batching does not pay: the convolutions already keep every core busy for one 256x256 frame,
and a batch only makes the activations outgrow the caches (``bench/fomm_family.py`` measured FOMM,
TPSMM, MRAA and Part Swap slower at batch 4-8 than one frame at a time). The nodes read their
``batch_size`` default from here when ComfyUI lists them, so a CPU-only install starts at the fast
setting; the user's value is always used as given.
"""

from __future__ import annotations

from ..core.device import get_torch_device

#: frames per pass on the CPU (the fastest setting measured at 256x256, fp32, on an idle 2-core CPU;
#: MRFA too: 2.45 s/frame at batch 1 against 3.21 s/frame at batch 2, its 256x256 activations
#: already outgrow the caches for one frame)
CPU_BATCH: dict[str, int] = {"fomm": 1, "tpsmm": 1, "mraa": 1, "mrfa": 1, "fsrt": 1, "partswap": 1}


def cpu_batch_size(family: str) -> int:
    """The batch size that is fastest on the CPU for ``family``."""
    return CPU_BATCH.get(family, 1)


def default_batch_size(family: str, accelerator_default: int) -> int:
    """Node default: :func:`cpu_batch_size` on a CPU-only runtime, else ``accelerator_default``."""
    try:
        cpu = get_torch_device().type == "cpu"
    except Exception:  # device probing must never break listing the nodes
        cpu = False
    return cpu_batch_size(family) if cpu else accelerator_default
