"""Every example workflow: node types exist, links carry the right types, PNGs embed the graph."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT

from tools.workflow import input_type, is_widget, node_definitions, types_match

WORKFLOWS = sorted(p for p in (ROOT / "workflows").glob("*.json") if not p.name.endswith("_api.json"))


@pytest.fixture(scope="module")
def defs():
    return node_definitions()


def _inputs(definition: dict) -> dict:
    spec = definition["input"]
    return {**spec.get("required", {}), **spec.get("optional", {})}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_ui_workflow_types_and_links(path: Path, defs):
    ui = json.loads(path.read_text())
    nodes = {n["id"]: n for n in ui["nodes"]}
    for n in ui["nodes"]:
        assert n["type"] in defs, f"{path.name}: unknown node type {n['type']}"
    for link_id, src, sslot, dst, dslot, typ in ui["links"]:
        out_type = defs[nodes[src]["type"]]["output"][sslot]
        inp = nodes[dst]["inputs"][dslot]
        in_spec = _inputs(defs[nodes[dst]["type"]])[inp["name"]]
        assert inp["link"] == link_id
        assert types_match(out_type, input_type(in_spec)), f"{path.name}: link {link_id} {out_type}→{inp}"
        assert typ == out_type


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_api_copy_and_png_match(path: Path, defs):
    api = json.loads(path.with_name(path.stem + "_api.json").read_text())
    for node_id, node in api.items():
        definition = defs[node["class_type"]]
        for name, spec in definition["input"].get("required", {}).items():
            assert name in node["inputs"], f"{path.name}: node {node_id} misses required input {name}"
            if not is_widget(spec):
                src, slot = node["inputs"][name]
                assert types_match(defs[api[src]["class_type"]]["output"][slot], input_type(spec))
    from PIL import Image

    with Image.open(path.with_suffix(".png")) as png:
        assert json.loads(png.text["workflow"]) == json.loads(path.read_text())
        assert json.loads(png.text["prompt"]) == api


def test_builder_rejects_wrong_link_types(defs):
    from tools.workflow import Graph

    g = Graph(defs)
    load = g.add("LoadVideo", file="clip.mp4")
    with pytest.raises(TypeError, match="takes IMAGE, got VIDEO"):
        g.add("PreviewImage", images=load.out(0))


def _prepared(stem: str):
    """The ``tests/wf_<stem>.py`` module that writes tiny weights and inputs, if there is one."""
    import importlib

    if not (ROOT / "tests" / f"wf_{stem}.py").exists():
        return None
    return importlib.import_module(f"wf_{stem}")


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.stem)
def test_api_workflow_runs_with_tiny_weights(path: Path, tmp_path):
    """The pack's part of each example graph runs as ComfyUI would wire it, on tiny weights."""
    from motionsuite.pipelines.core import weights
    from workflow_runner import StandIns, run_api_workflow

    prep = _prepared(path.stem)
    if prep is None:
        pytest.fail(f"workflow {path.name} has no tests/wf_{path.stem}.py to prepare tiny weights and inputs")
    models, inputs = tmp_path / "models", tmp_path / "input"
    models.mkdir()
    inputs.mkdir()
    prep.prepare(models, inputs)
    for folder in models.iterdir():
        weights.add_search_dir(folder.name, folder)
    api = json.loads(path.with_name(path.stem + "_api.json").read_text())
    stand_ins = StandIns(inputs)
    run_api_workflow(api, stand_ins)
    assert stand_ins.saved, "the workflow saved or previewed nothing"
    for item in stand_ins.saved:
        frames = item["frames"] if isinstance(item, dict) else item
        assert frames.ndim == 4 and frames.shape[-1] == 3 and frames.isfinite().all()
        prep.check_output(frames)
