"""The Omost canvas: read an LLM reply into regions without ever executing it.

Omost's LLMs answer with a fenced Python block that calls a tiny ``Canvas`` API::

    canvas = Canvas()
    canvas.set_global_description(description=..., detailed_descriptions=[...], tags=...,
                                  HTML_web_color_name=...)
    canvas.add_local_description(location=..., offset=..., area=..., distance_to_viewer=...,
                                 description=..., detailed_descriptions=[...], tags=..., atmosphere=...,
                                 style=..., quality_meta=..., HTML_web_color_name=...)

Upstream runs that block with ``exec``; here it is parsed with :mod:`ast` and only those three statement
forms with literal arguments are interpreted, so no text is ever run. The semantics follow upstream:
type checks, ``distance_to_viewer > 0``, fuzzy correction of vocabulary names (``difflib`` cutoff 0.5,
reported as warnings), the 9x9x9 rectangle grid on a 90x90 canvas, ``safe_str`` normalisation and
far-to-near ordering.

The canvas value is the JSON list used by the ComfyUI Omost pack: the global entry first
(``rect`` = whole canvas), then one entry per region from far to near, each with ``rect``
``[top, bottom, left, right]``, ``prefixes``, ``suffixes`` and ``color`` ``[r, g, b]``.
"""

from __future__ import annotations

import ast
import difflib
import inspect
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError

CANVAS_SIZE = 90

_VOCAB = json.loads((Path(__file__).with_name("vocab.json")).read_text(encoding="utf-8"))
COLORS: dict[str, tuple[int, int, int]] = {k: tuple(v) for k, v in _VOCAB["colors"].items()}
LOCATIONS: dict[str, tuple[int, int]] = {k: tuple(v) for k, v in _VOCAB["locations"].items()}  # centre x, y
OFFSETS: dict[str, tuple[int, int]] = {k: tuple(v) for k, v in _VOCAB["offsets"].items()}  # dx, dy
AREAS: dict[str, tuple[int, int]] = {k: tuple(v) for k, v in _VOCAB["areas"].items()}  # width, height

_FENCE = re.compile(r"```python\n(.*?)\n```", re.DOTALL)
_ALLOWED = (
    "allowed statements are `canvas = Canvas()`, `canvas.set_global_description(...)` and "
    "`canvas.add_local_description(...)` with literal arguments (strings, numbers, lists of strings)"
)


class CanvasParseError(InputError):
    """The text is not a valid Omost canvas; the message names the line and what is allowed."""


def _signature(*names: str) -> inspect.Signature:
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(n, kind) for n in names])


_GLOBAL_SIG = _signature("description", "detailed_descriptions", "tags", "HTML_web_color_name")
_LOCAL_SIG = _signature(
    "location", "offset", "area", "distance_to_viewer", "description", "detailed_descriptions", "tags",
    "atmosphere", "style", "quality_meta", "HTML_web_color_name",
)


def safe_str(text: str) -> str:
    """Normalise a sub-prompt as Omost does: trim commas, dots and spaces at both ends, end with one dot."""
    return text.strip(",. ") + "."


def closest_name(name: Any, options: dict, what: str, warnings: list[str]) -> str:
    """Map ``name`` to the nearest vocabulary entry (difflib, cutoff 0.5); a correction becomes a warning."""
    if not isinstance(name, str):
        raise CanvasParseError(f"{what} must be a string, got {type(name).__name__} {name!r}.")
    lowered = name.lower()
    match = difflib.get_close_matches(lowered, list(options), n=1, cutoff=0.5)
    if not match:
        raise CanvasParseError(
            f"{what} {name!r} is not valid and matches no known name; use one of: {', '.join(options)}."
        )
    if match[0] != lowered:
        warnings.append(f"Automatically corrected {what} [{lowered}] -> [{match[0]}].")
    return match[0]


def region_rect(location: str, offset: str, area: str) -> list[int]:
    """Rectangle ``[top, bottom, left, right]`` of a region on the 90x90 canvas, clamped to the canvas."""
    xb, yb = LOCATIONS[location]
    xo, yo = OFFSETS[offset]
    w, h = AREAS[area]
    rect = (yb + yo - h // 2, yb + yo + h // 2, xb + xo - w // 2, xb + xo + w // 2)
    return [max(0, min(CANVAS_SIZE, v)) for v in rect]


@dataclass
class _State:
    """What the statements built so far (mirrors the upstream Canvas object's fields)."""

    color: tuple[int, int, int] | None = None
    prefixes: list[str] = field(default_factory=list)
    suffixes: list[str] = field(default_factory=list)
    components: list[dict] = field(default_factory=list)


@dataclass
class ParsedCanvas:
    """A parsed canvas: the JSON-ready entries plus warnings about automatic corrections."""

    entries: list[dict]
    warnings: list[str]


def _check_str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise CanvasParseError(f"{what} must be a string, got {type(value).__name__}.")
    return value


def _check_str_list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CanvasParseError(f"{what} must be a list of strings.")
    return value


def _set_global(state: _State, args: dict, warnings: list[str]) -> None:
    description = _check_str(args["description"], "Global description")
    details = _check_str_list(args["detailed_descriptions"], "Global detailed_descriptions")
    tags = _check_str(args["tags"], "Global tags")
    color = closest_name(args["HTML_web_color_name"], COLORS, "colour", warnings)
    state.color = COLORS[color]
    state.prefixes = [safe_str(description)]
    state.suffixes = [safe_str(x) for x in details + [tags]]


def _add_local(state: _State, args: dict, warnings: list[str]) -> None:
    description = _check_str(args["description"], "Local description")
    distance = args["distance_to_viewer"]
    if not isinstance(distance, (int, float)) or not distance > 0:
        raise CanvasParseError(
            f"distance_to_viewer for [{description}] must be a positive number, got {distance!r}."
        )
    details = _check_str_list(args["detailed_descriptions"], f"detailed_descriptions for [{description}]")
    keys = ("tags", "atmosphere", "style", "quality_meta")
    extras = [_check_str(args[k], f"{k} for [{description}]") for k in keys]
    location = closest_name(args["location"], LOCATIONS, "location", warnings)
    offset = closest_name(args["offset"], OFFSETS, "offset", warnings)
    area = closest_name(args["area"], AREAS, "area", warnings)
    color = closest_name(args["HTML_web_color_name"], COLORS, "colour", warnings)
    state.components.append(
        {
            "rect": region_rect(location, offset, area),
            "distance_to_viewer": distance,
            "color": list(COLORS[color]),
            "prefixes": [safe_str(x) for x in state.prefixes + [description]],
            "suffixes": [safe_str(x) for x in details + extras],
        }
    )


def _literal(node: ast.expr, line: int) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        raise CanvasParseError(
            f"line {line}: argument `{_source(node)}` is not a literal; {_ALLOWED}."
        ) from None


def _source(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # noqa: BLE001 - only used to quote the offending code in a message
        text = type(node).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _is_canvas_ctor(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and stmt.targets[0].id == "canvas"
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Name)
        and stmt.value.func.id == "Canvas"
        and not stmt.value.args
        and not stmt.value.keywords
    )


def _method_call(stmt: ast.stmt) -> tuple[str, ast.Call] | None:
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return None
    func = stmt.value.func
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "canvas"
        and func.attr in ("set_global_description", "add_local_description")
    ):
        return func.attr, stmt.value
    return None


def _bind(sig: inspect.Signature, call: ast.Call, method: str, line: int) -> dict:
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise CanvasParseError(f"line {line}: `*args`/`**kwargs` are not allowed; {_ALLOWED}.")
    args = [_literal(a, line) for a in call.args]
    kwargs = {k.arg: _literal(k.value, line) for k in call.keywords}
    try:
        bound = sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise CanvasParseError(
            f"line {line}: wrong arguments for canvas.{method}: {exc}; expected {method}{sig}."
        ) from None
    return dict(bound.arguments)


def parse_code(code: str) -> ParsedCanvas:
    """Interpret canvas code (the contents of the fenced block) without executing it."""
    try:
        tree = ast.parse(code, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        line = getattr(exc, "lineno", None)
        where = f"line {line}: " if line else ""
        raise CanvasParseError(f"{where}the canvas code is not valid Python ({type(exc).__name__}: "
                               f"{getattr(exc, 'msg', exc)}); {_ALLOWED}.") from None
    warnings: list[str] = []
    state: _State | None = None
    for stmt in tree.body:
        line = stmt.lineno
        if _is_canvas_ctor(stmt):
            state = _State()
            continue
        method = _method_call(stmt)
        if method is None:
            raise CanvasParseError(f"line {line}: `{_source(stmt)}` is not allowed; {_ALLOWED}.")
        if state is None:
            raise CanvasParseError(f"line {line}: `canvas = Canvas()` must come before canvas.{method[0]}.")
        name, call = method
        if name == "set_global_description":
            _set_global(state, _bind(_GLOBAL_SIG, call, name, line), warnings)
        else:
            _add_local(state, _bind(_LOCAL_SIG, call, name, line), warnings)
    if state is None:
        raise CanvasParseError("The code block must create the canvas with `canvas = Canvas()`.")
    if state.color is None:
        raise CanvasParseError(
            "The canvas has no global description; call canvas.set_global_description(...)."
        )
    return ParsedCanvas(entries=_process(state), warnings=warnings)


def _process(state: _State) -> list[dict]:
    """Global entry first, then regions sorted far to near (stable for equal distances)."""
    regions = sorted(state.components, key=lambda c: c["distance_to_viewer"], reverse=True)
    out = [{"rect": [0, CANVAS_SIZE, 0, CANVAS_SIZE], "prefixes": list(state.prefixes),
            "suffixes": list(state.suffixes), "color": list(state.color)}]
    out += [{"color": c["color"], "rect": c["rect"], "prefixes": c["prefixes"], "suffixes": c["suffixes"]}
            for c in regions]
    return out


def parse_reply(text: str) -> ParsedCanvas:
    """Find the first fenced ```python block in an LLM reply and interpret it (see :func:`parse_code`)."""
    if not isinstance(text, str):
        raise CanvasParseError(f"The LLM reply must be text, got {type(text).__name__}.")
    matched = _FENCE.search(text)
    if matched is None:
        start = text.strip()[:200]
        raise CanvasParseError(
            "The reply holds no ```python fenced code block with a canvas. Reply starts with: "
            f"{start!r}. Ask the LLM again (a lower temperature helps) or use an Omost-finetuned model."
        )
    return parse_code(matched.group(1))


def parse_text(text: str) -> ParsedCanvas:
    """Accept either a whole reply with a fenced block or the bare canvas code."""
    if isinstance(text, str) and "```python\n" in text:
        return parse_reply(text)
    return parse_code(text)


# ----------------------------------------------------------------------------------------------
# JSON canvases (saved by the ComfyUI Omost pack or by this pack)


def _check_int_list(value: Any, n: int, lo: int, hi: int) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == n
        and all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in value)
    )


def validate_canvas(data: Any) -> list[dict]:
    """Check a canvas value entry by entry; returns a normalised copy (lists, ints)."""
    if not isinstance(data, list) or not data:
        raise InputError(
            "A canvas must be a non-empty JSON list: the global entry, then one entry per region."
        )
    out = []
    for i, entry in enumerate(data):
        where = "entry 0 (global)" if i == 0 else f"entry {i}"
        if not isinstance(entry, dict):
            raise InputError(f"Canvas {where} must be an object with rect, prefixes, suffixes, color.")
        missing = [k for k in ("rect", "prefixes", "suffixes", "color") if k not in entry]
        if missing:
            raise InputError(f"Canvas {where} lacks {', '.join(missing)}.")
        rect = entry["rect"]
        if not _check_int_list(rect, 4, 0, CANVAS_SIZE) or not (rect[0] < rect[1] and rect[2] < rect[3]):
            raise InputError(
                f"Canvas {where}: rect must be [top, bottom, left, right] integers in 0..{CANVAS_SIZE} "
                f"with top < bottom and left < right, got {rect!r}."
            )
        for key in ("prefixes", "suffixes"):
            if not isinstance(entry[key], list) or not all(isinstance(s, str) for s in entry[key]):
                raise InputError(f"Canvas {where}: {key} must be a list of strings.")
        if not entry["prefixes"]:
            raise InputError(f"Canvas {where}: prefixes must hold at least one description.")
        if not _check_int_list(entry["color"], 3, 0, 255):
            raise InputError(
                f"Canvas {where}: color must be [r, g, b] integers in 0..255, got {entry['color']!r}."
            )
        out.append({"rect": list(rect), "prefixes": list(entry["prefixes"]),
                    "suffixes": list(entry["suffixes"]), "color": list(entry["color"])})
    return out


def load_canvas_json(text: str) -> list[dict]:
    """Parse and validate a JSON canvas string, with messages that say what to fix."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("The canvas JSON text is empty; paste a canvas (a JSON list) or connect a canvas.")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"The canvas text is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}).") from None
    return validate_canvas(data)


def canvas_to_json(entries: list[dict]) -> str:
    """Serialise a canvas so that the ComfyUI Omost pack and its editor can read it."""
    return json.dumps(validate_canvas(entries), indent=1)
