"""Error types the pack raises. Each message says what was wrong and how to fix it."""

from __future__ import annotations


class InputError(ValueError):
    """A node or CLI input is malformed (shape, size, frame count, value range, text)."""


class MissingWeightsError(FileNotFoundError):
    """A weight file is neither on disk nor downloadable."""


class WeightsMismatchError(ValueError):
    """A weight file does not fit the network (missing/unexpected keys, wrong shapes)."""


class OutOfMemory(RuntimeError):
    """Device memory ran out even after freeing caches and retrying with a lower-memory strategy."""
