"""The pack loads as ComfyUI loads it: a package under an arbitrary folder name."""

from __future__ import annotations

import importlib.util
import shutil
import sys

from conftest import ROOT


def _load_as(name: str, folder):
    spec = importlib.util.spec_from_file_location(
        name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_pack_loads_under_any_folder_name(tmp_path):
    folder = tmp_path / "Some-Other Name_123"
    shutil.copytree(
        ROOT, folder, ignore=shutil.ignore_patterns(".git", "__pycache__", "pretrained_weights", "tests")
    )
    mod = _load_as("some_other_name_123", folder)
    failed = sys.modules["some_other_name_123.nodes"].FAILED_MODULES
    assert failed == {}, failed
    assert isinstance(mod.NODE_CLASS_MAPPINGS, dict)
    assert set(mod.NODE_DISPLAY_NAME_MAPPINGS) <= set(mod.NODE_CLASS_MAPPINGS)
    for key, cls in mod.NODE_CLASS_MAPPINGS.items():
        assert key.startswith("MotionSuite"), key
        assert hasattr(cls, "INPUT_TYPES") and hasattr(cls, "FUNCTION") and hasattr(cls, "RETURN_TYPES")
        assert callable(getattr(cls, cls.FUNCTION))
        assert getattr(cls, "CATEGORY", "").startswith("MotionSuite")
