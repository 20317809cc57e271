"""Collects the node classes of every pipeline module in this folder.

Each ``nodes/<pipeline>.py`` defines its own ``NODE_CLASS_MAPPINGS`` and
``NODE_DISPLAY_NAME_MAPPINGS``. A pipeline whose optional dependency is missing must not take the
whole pack (or the ComfyUI server) down, so a module that fails to import is logged and skipped.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

log = logging.getLogger("MotionSuite")

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
FAILED_MODULES: dict[str, str] = {}

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name.startswith("_"):
        continue
    try:
        _mod = importlib.import_module(f".{_info.name}", __name__)
    except Exception as exc:  # noqa: BLE001 - one broken pipeline must not hide the others
        FAILED_MODULES[_info.name] = f"{type(exc).__name__}: {exc}"
        log.warning("MotionSuite: nodes/%s.py not loaded: %s", _info.name, exc)
        continue
    for _key, _cls in getattr(_mod, "NODE_CLASS_MAPPINGS", {}).items():
        if _key in NODE_CLASS_MAPPINGS:
            raise RuntimeError(f"MotionSuite: node id {_key!r} is defined twice")
        NODE_CLASS_MAPPINGS[_key] = _cls
    NODE_DISPLAY_NAME_MAPPINGS.update(getattr(_mod, "NODE_DISPLAY_NAME_MAPPINGS", {}))
