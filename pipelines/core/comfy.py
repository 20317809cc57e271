"""The one adapter to ComfyUI. Everything else in the pack asks this module, never ComfyUI itself.

When the pack runs as a library (command line, tests) ComfyUI is absent and every function here
falls back to plain torch behaviour.
"""

from __future__ import annotations

import types
from typing import Any

try:  # pragma: no cover - exercised only inside ComfyUI
    import comfy.model_management as _mm
    import comfy.utils as _cu
    import folder_paths as _fp

    HAVE_COMFY = True
except ImportError:
    _mm = _cu = _fp = None
    HAVE_COMFY = False

_interrupt_flag = False


def model_management() -> types.ModuleType | None:
    """``comfy.model_management`` inside ComfyUI, else None."""
    return _mm


def folder_paths() -> types.ModuleType | None:
    """ComfyUI's ``folder_paths`` module inside ComfyUI, else None."""
    return _fp


def progress_bar_class() -> Any:
    """``comfy.utils.ProgressBar`` inside ComfyUI, else None."""
    return getattr(_cu, "ProgressBar", None) if _cu is not None else None


def request_interrupt(value: bool = True) -> None:
    """Outside ComfyUI: ask long loops to stop at their next check (used by the CLI and tests)."""
    global _interrupt_flag
    _interrupt_flag = value


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception (or KeyboardInterrupt outside ComfyUI) when asked to stop."""
    global _interrupt_flag
    if _mm is not None:
        _mm.throw_exception_if_processing_interrupted()
    if _interrupt_flag:
        _interrupt_flag = False
        raise KeyboardInterrupt("MotionSuite: processing interrupted")
