"""Build example workflows: UI-format JSON, API-format JSON and a PNG with both embedded.

ComfyUI loads a workflow from a dragged PNG through its ``workflow`` text chunk (UI format) and
queues the ``prompt`` chunk (API format). Writing those by hand is error-prone, so a workflow is
described in a few lines of Python and this module lays it out, checks every node type and every
link type against the node definitions (the pack's own ``INPUT_TYPES`` plus a saved
``object_info`` of ComfyUI core nodes), and writes the three files.

    g = Graph(node_definitions())
    img = g.add("LoadImage", image="source.png")
    ...
    g.save(Path("workflows/fomm"))
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PACK_DIR = Path(__file__).resolve().parents[1]
CORE_DEFS = PACK_DIR / "tests" / "fixtures" / "comfy_core_nodes.json"
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def _pack_definitions() -> dict[str, dict]:
    import sys

    sys.path.insert(0, str(PACK_DIR))
    import _pack

    nodes = _pack.import_pack_module("nodes")
    defs = {}
    for key, cls in nodes.NODE_CLASS_MAPPINGS.items():
        defs[key] = {
            "input": cls.INPUT_TYPES(),
            "output": list(cls.RETURN_TYPES),
            "output_name": list(getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES)),
            "display_name": nodes.NODE_DISPLAY_NAME_MAPPINGS.get(key, key),
        }
    return defs


def node_definitions() -> dict[str, dict]:
    """ComfyUI core node definitions (saved object_info) plus the pack's nodes."""
    defs = json.loads(CORE_DEFS.read_text()) if CORE_DEFS.exists() else {}
    defs.update(_pack_definitions())
    return defs


def input_type(spec: Any) -> str:
    """The type name of an INPUT_TYPES entry: a list of choices is a COMBO."""
    kind = spec[0]
    if isinstance(kind, list):
        return "COMBO"
    return str(kind)


def is_widget(spec: Any) -> bool:
    """Inputs typed INT/FLOAT/STRING/BOOLEAN or a choice list are widgets unless forceInput."""
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return input_type(spec) in WIDGET_TYPES and not opts.get("forceInput", False)


def types_match(out_type: str, in_type: str) -> bool:
    """LiteGraph link rule: equal types, '*' on either side, or one of a comma-separated list."""
    if "*" in (out_type, in_type):
        return True
    return out_type == in_type or out_type in in_type.split(",")


@dataclass
class Out:
    node: Node
    slot: int
    type: str


@dataclass
class Node:
    id: int
    type: str
    definition: dict
    values: dict[str, Any]
    title: str | None = None
    pos: tuple[int, int] = (0, 0)
    links_in: dict[str, tuple[Out, int]] = field(default_factory=dict)

    def out(self, which: int | str = 0) -> Out:
        names = self.definition.get("output_name") or self.definition["output"]
        slot = names.index(which) if isinstance(which, str) else which
        return Out(self, slot, self.definition["output"][slot])

    def ordered_inputs(self) -> list[tuple[str, Any, bool]]:
        """(name, spec, optional) in declaration order."""
        spec = self.definition["input"]
        items = [(k, v, False) for k, v in spec.get("required", {}).items()]
        items += [(k, v, True) for k, v in spec.get("optional", {}).items()]
        return items


class Graph:
    """A workflow under construction; ``add`` checks inputs, ``save`` writes JSON + PNG."""

    def __init__(self, definitions: dict[str, dict]) -> None:
        self.defs = definitions
        self.nodes: list[Node] = []
        self._links: list[list[Any]] = []

    def add(self, type_: str, *, title: str | None = None, column: int | None = None, **inputs: Any) -> Node:
        if type_ not in self.defs:
            raise KeyError(f"unknown node type {type_!r}")
        node = Node(len(self.nodes) + 1, type_, self.defs[type_], {}, title)
        for name, spec, optional in node.ordered_inputs():
            if name in inputs:
                value = inputs.pop(name)
                if isinstance(value, Out):
                    if not types_match(value.type, input_type(spec)):
                        raise TypeError(f"{type_}.{name} takes {input_type(spec)}, got {value.type}")
                    link_id = len(self._links) + 1
                    self._links.append([link_id, value.node.id, value.slot, node.id, None, value.type])
                    node.links_in[name] = (value, link_id)
                else:
                    if not is_widget(spec):
                        raise TypeError(
                            f"{type_}.{name} is a {input_type(spec)} socket; connect a node to it"
                        )
                    node.values[name] = value
            elif is_widget(spec):
                opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if "default" in opts:
                    node.values[name] = opts["default"]
                elif isinstance(spec[0], list) and spec[0]:
                    node.values[name] = spec[0][0]
                elif opts.get("options"):
                    node.values[name] = opts["options"][0]
                elif not optional:
                    raise ValueError(f"{type_}.{name} needs a value")
            elif not optional:
                raise ValueError(f"{type_}.{name} must be connected")
        if inputs:
            raise KeyError(f"{type_} has no inputs {sorted(inputs)}")
        node.pos = (0, 0) if column is None else (column, 0)
        self.nodes.append(node)
        return node

    # --- layout -------------------------------------------------------------------------------
    def _layout(self) -> None:
        depth: dict[int, int] = {}
        for node in self.nodes:  # nodes are added in dependency order
            d = [depth[o.node.id] + 1 for o, _ in node.links_in.values()]
            depth[node.id] = max(d, default=0) if node.pos == (0, 0) else node.pos[0]
        rows: dict[int, int] = {}
        for node in self.nodes:
            col = depth[node.id]
            row = rows.get(col, 0)
            node.pos = (40 + col * 380, 40 + row)
            rows[col] = row + 90 + 26 * (len(node.ordered_inputs()) + 1)

    @staticmethod
    def _size(node: Node) -> list[int]:
        return [340, 60 + 26 * (len(node.ordered_inputs()) + len(node.definition["output"]))]

    # --- formats ------------------------------------------------------------------------------
    def ui_json(self) -> dict:
        self._layout()
        links_out: dict[tuple[int, int], list[int]] = {}
        nodes = []
        for order, node in enumerate(self.nodes):
            inputs, widgets = [], []
            for name, spec, _ in node.ordered_inputs():
                if name in node.links_in:
                    out, link_id = node.links_in[name]
                    slot = len(inputs)
                    for link in self._links:
                        if link[0] == link_id:
                            link[4] = slot
                    entry_in = {"name": name, "type": input_type(spec), "link": link_id}
                    if is_widget(spec):  # a widget converted to an input keeps its widget slot
                        entry_in["widget"] = {"name": name}
                        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                        widgets.append(opts.get("default"))
                    inputs.append(entry_in)
                    links_out.setdefault((out.node.id, out.slot), []).append(link_id)
                elif is_widget(spec) and name in node.values:
                    widgets.append(node.values[name])
                    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                    if opts.get("control_after_generate"):
                        widgets.append("fixed")
                    if opts.get("image_upload") or opts.get("video_upload"):
                        widgets.append("image")
            entry = {
                "id": node.id,
                "type": node.type,
                "pos": list(node.pos),
                "size": self._size(node),
                "flags": {},
                "order": order,
                "mode": 0,
                "inputs": inputs,
                "outputs": [],
                "properties": {"Node name for S&R": node.type},
                "widgets_values": widgets,
            }
            if node.title:
                entry["title"] = node.title
            nodes.append(entry)
        for entry, node in zip(nodes, self.nodes):
            names = node.definition.get("output_name") or node.definition["output"]
            for slot, (typ, name) in enumerate(zip(node.definition["output"], names)):
                entry["outputs"].append(
                    {
                        "name": name,
                        "type": typ,
                        "links": links_out.get((node.id, slot), []),
                        "slot_index": slot,
                    }
                )
        return {
            "last_node_id": len(self.nodes),
            "last_link_id": len(self._links),
            "nodes": nodes,
            "links": [list(link) for link in self._links],
            "groups": [],
            "config": {},
            "extra": {},
            "version": 0.4,
        }

    def api_json(self) -> dict:
        api = {}
        for node in self.nodes:
            inputs: dict[str, Any] = dict(node.values)
            for name, (out, _) in node.links_in.items():
                inputs[name] = [str(out.node.id), out.slot]
            api[str(node.id)] = {
                "class_type": node.type,
                "inputs": inputs,
                "_meta": {"title": node.title or node.definition.get("display_name", node.type)},
            }
        return api

    def save(self, base: Path) -> tuple[Path, Path, Path]:
        """Write ``base.json`` (UI), ``base_api.json`` (API) and ``base.png`` (picture + both)."""
        ui, api = self.ui_json(), self.api_json()
        ui_path, api_path, png_path = (
            base.with_suffix(".json"),
            Path(f"{base}_api.json"),
            base.with_suffix(".png"),
        )
        ui_path.write_text(json.dumps(ui, indent=2) + "\n")
        api_path.write_text(json.dumps(api, indent=2) + "\n")
        render_png(ui, png_path, json.dumps(ui), json.dumps(api))
        return ui_path, api_path, png_path


def render_png(ui: dict, path: Path, workflow_text: str, prompt_text: str) -> None:
    """Draw the graph (boxes, titles, sockets, links) and embed the workflow in tEXt chunks."""
    from PIL import Image, ImageDraw
    from PIL.PngImagePlugin import PngInfo

    width = max(n["pos"][0] + n["size"][0] for n in ui["nodes"]) + 40
    height = max(n["pos"][1] + n["size"][1] for n in ui["nodes"]) + 40
    img = Image.new("RGB", (width, height), (32, 32, 36))
    draw = ImageDraw.Draw(img)
    by_id = {n["id"]: n for n in ui["nodes"]}
    for link in ui["links"]:
        _, src, sslot, dst, dslot, _ = link
        a, b = by_id[src], by_id[dst]
        p0 = (a["pos"][0] + a["size"][0], a["pos"][1] + 40 + 22 * sslot)
        p1 = (b["pos"][0], b["pos"][1] + 40 + 22 * dslot)
        draw.line(
            [p0, ((p0[0] + p1[0]) // 2, p0[1]), ((p0[0] + p1[0]) // 2, p1[1]), p1],
            fill=(140, 180, 90),
            width=3,
        )
    for n in ui["nodes"]:
        x, y = n["pos"]
        w, h = n["size"]
        pack = n["type"].startswith("MotionSuite")
        draw.rounded_rectangle([x, y, x + w, y + h], 8, fill=(53, 53, 58), outline=(90, 90, 96))
        draw.rounded_rectangle([x, y, x + w, y + 28], 8, fill=(70, 95, 140) if pack else (60, 60, 66))
        draw.text((x + 10, y + 8), n.get("title", n["type"]), fill=(235, 235, 235))
        for i, inp in enumerate(n["inputs"]):
            draw.ellipse([x - 5, y + 35 + 22 * i, x + 5, y + 45 + 22 * i], fill=(140, 180, 90))
            draw.text((x + 10, y + 34 + 22 * i), inp["name"], fill=(200, 200, 200))
        for i, out in enumerate(n["outputs"]):
            draw.ellipse([x + w - 5, y + 35 + 22 * i, x + w + 5, y + 45 + 22 * i], fill=(140, 180, 90))
            draw.text((x + w - 12 - 7 * len(out["name"]), y + 34 + 22 * i), out["name"], fill=(200, 200, 200))
        shown = [str(v) for v in n["widgets_values"] if v not in ("fixed", "image")]
        top = y + 40 + 22 * max(len(n["inputs"]), len(n["outputs"]))
        for i, v in enumerate(shown[: max(0, (y + h - top) // 18)]):
            draw.text((x + 12, top + 18 * i), v[:44], fill=(160, 160, 170))
    info = PngInfo()
    info.add_text("workflow", workflow_text)
    info.add_text("prompt", prompt_text)
    img.save(path, pnginfo=info)
