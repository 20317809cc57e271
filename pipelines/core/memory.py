"""Moving models to the compute device for a block of work, and surviving out-of-memory.

Models live on the offload device between queue runs; a pipeline wraps each block of work in
``on_device`` so the models are on the GPU only while they compute, and ComfyUI gets a chance to
evict its own models first.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch

from .comfy import model_management
from .device import get_offload_device, get_torch_device, soft_empty_cache
from .errors import OutOfMemory

log = logging.getLogger("MotionSuite")
T = TypeVar("T")


def module_bytes(*modules: torch.nn.Module) -> int:
    """Bytes held by the parameters and buffers of ``modules``."""
    total = 0
    for m in modules:
        for t in list(m.parameters()) + list(m.buffers()):
            total += t.numel() * t.element_size()
    return total


@contextlib.contextmanager
def on_device(
    *modules: torch.nn.Module,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
    keep_loaded: bool = False,
    memory_required: int = 0,
) -> Iterator[torch.device]:
    """Move ``modules`` onto the compute device for the ``with`` block, then offload them.

    Offloading also happens when the block raises, so an error never leaves a model half-loaded on
    the GPU. ``memory_required`` (bytes, beyond the weights) is passed to ComfyUI so it can unload
    its own models first.
    """
    device = device or get_torch_device()
    mm = model_management()
    if mm is not None and device.type != "cpu":
        mm.free_memory(module_bytes(*modules) + memory_required, device)
    try:
        for m in modules:
            m.to(device=device, dtype=dtype) if dtype is not None else m.to(device)
        yield device
    finally:
        if not keep_loaded and device != get_offload_device():
            for m in modules:
                m.to(get_offload_device())
            soft_empty_cache()


def is_oom(exc: BaseException) -> bool:
    """True for CUDA/MPS/CPU out-of-memory errors in their different spellings."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def retry_on_oom(fn: Callable[[], T], fallback: Callable[[], T], what: str, hint: str) -> T:
    """Run ``fn``; on out-of-memory free caches and run ``fallback`` (a lower-memory strategy) once.

    A second out-of-memory raises ``OutOfMemory`` with ``what`` failed and ``hint`` on what to lower.
    """
    try:
        return fn()
    except Exception as exc:
        if not is_oom(exc):
            raise
        log.warning("MotionSuite: out of memory while %s; freeing memory and retrying", what)
    soft_empty_cache()
    try:
        return fallback()
    except Exception as exc:
        if not is_oom(exc):
            raise
        soft_empty_cache()
        raise OutOfMemory(
            f"Out of memory while {what}, also after retrying with less memory. {hint}"
        ) from exc


def run_batched(
    fn: Callable[[int, int], T],
    n: int,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
    what: str = "processing frames",
) -> list[T]:
    """Call ``fn(start, stop)`` over ``range(n)`` in slices of ``batch_size``.

    On out-of-memory the batch size is halved (down to 1) and the failed slice is retried; one
    more out-of-memory at the smaller size raises ``OutOfMemory`` telling the user to lower the
    batch size or the resolution. ``on_batch(count)`` is called after each slice (progress).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    results: list[T] = []
    start, retried = 0, False
    while start < n:
        stop = min(n, start + batch_size)
        try:
            results.append(fn(start, stop))
        except Exception as exc:
            if not is_oom(exc):
                raise
            soft_empty_cache()
            if retried or batch_size == 1:
                raise OutOfMemory(
                    f"Out of memory while {what} with batch size {batch_size}. Lower the batch size "
                    "or the resolution, or run on a device with more memory."
                ) from exc
            batch_size, retried = max(1, batch_size // 2), True
            log.warning("MotionSuite: out of memory while %s; retrying with batch size %d", what, batch_size)
            continue
        if on_batch is not None:
            on_batch(stop - start)
        start = stop
    return results


def split_batches(items: Sequence[T], batch_size: int) -> list[Sequence[T]]:
    """``items`` in consecutive slices of at most ``batch_size``."""
    return [items[i : i + batch_size] for i in range(0, len(items), max(1, batch_size))]
