"""Makes the pack importable as a package without ComfyUI (command line, tests, benches).

The pack uses relative imports, so its folder must be imported as a package. This registers the
folder under the name ``motionsuite`` without running ``__init__.py`` (which would import every
node module).
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

PACK_DIR = Path(__file__).resolve().parent
PACKAGE = "motionsuite"


def ensure_package(name: str = PACKAGE) -> str:
    """Register the pack folder as package ``name`` (idempotent) and return the name."""
    if name not in sys.modules:
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(PACK_DIR)]
        pkg.__file__ = str(PACK_DIR / "__init__.py")
        pkg.__package__ = name
        sys.modules[name] = pkg
    return name


def import_pack_module(relative: str) -> types.ModuleType:
    """Import ``motionsuite.<relative>``, e.g. ``import_pack_module("pipelines.fomm")``."""
    return importlib.import_module(f"{ensure_package()}.{relative}")
