"""Canvas interpreter and renderer against upstream Omost.

Fixtures (tests/fixtures/omost/canvas_parity.json, initial_latents.npz) were made by running
lllyasviel/Omost @ 731e749 ``lib_omost/canvas.py``: ``Canvas.from_bot_response(reply).process()`` on the
README's canvas replies and on hand-written LLM-style replies (positional arguments, misspelt names,
equal distances, a global description set late, clamped corners, invalid replies). Expected entries are
upstream's global prefixes/suffixes/colour followed by its sorted components; the printed
"Automatically corrected" lines are the expected warnings; ``initial_latent`` is the 90x90 layout.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from motionsuite.pipelines.omost import canvas as cv
from motionsuite.pipelines.omost.render import render_layout, render_layout_image, render_masks

FIX = Path(__file__).parent / "fixtures" / "omost"
CASES = json.loads((FIX / "canvas_parity.json").read_text(encoding="utf-8"))["cases"]
LATENTS = np.load(FIX / "initial_latents.npz")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_parity_with_upstream(case):
    if "error" in case:
        with pytest.raises(cv.CanvasParseError):
            cv.parse_reply(case["reply"])
        return
    parsed = cv.parse_reply(case["reply"])
    assert parsed.entries == case["entries"]
    pairs = lambda lines: [re.search(r"\[(.*)\] -> \[(.*)\]", w).groups() for w in lines]  # noqa: E731
    assert pairs(parsed.warnings) == pairs(case["warnings"])
    layout = render_layout(parsed.entries).numpy()
    assert np.array_equal(layout, LATENTS[case["name"]])
    masks = render_masks(parsed.entries)
    assert masks.shape == (len(parsed.entries), 90, 90) and bool((masks[0] == 1).all())
    assert json.loads(cv.canvas_to_json(parsed.entries)) == case["entries"]
    assert cv.load_canvas_json(json.dumps(case["entries"])) == case["entries"]


def test_rect_worked_example():
    # top-left, slightly to the lower-right, small horizontal -> (5, 45, 0, 55) (Omost README "Window").
    rect = cv.region_rect("on the top-left", "slightly to the lower-right", "a small horizontal area")
    assert rect == [5, 45, 0, 55]
    assert len(cv.COLORS) == 149 and len(cv.LOCATIONS) == len(cv.OFFSETS) == len(cv.AREAS) == 9


@pytest.mark.parametrize(
    "code, needle",
    [
        ("import os\ncanvas = Canvas()", "line 1"),
        ("canvas = Canvas()\nprint(1)", "line 2"),
        ("canvas = Canvas()\ncanvas.set_global_description(description=open('x').read(), "
         "detailed_descriptions=[], tags='', HTML_web_color_name='red')", "not a literal"),
        ("canvas.set_global_description('a', [], '', 'red')", "must come before"),
        ("canvas = Canvas()\ncanvas.set_global_description('a', [], '')", "wrong arguments"),
        ("canvas = Canvas()\ncanvas.set_global_description(*x)", "not allowed"),
        ("canvas = Canvas()", "no global description"),
        ("canvas = Canvas(\n", "not valid Python"),
        ("x = 1", "line 1"),
        ("canvas = Canvas()\ncanvas.set_global_description('a', [], '', 5)", "colour must be a string"),
    ],
)
def test_rejects_with_line_and_reason(code, needle):
    with pytest.raises(cv.CanvasParseError, match=re.escape(needle)):
        cv.parse_code(code)


def test_reply_without_code_shows_start():
    with pytest.raises(cv.CanvasParseError, match="Reply starts with: 'Sorry"):
        cv.parse_reply("Sorry, I cannot draw that.")


@pytest.mark.parametrize(
    "text, needle",
    [
        ("", "empty"),
        ("[", "not valid JSON"),
        ("{}", "non-empty JSON list"),
        ('[{"rect": [0, 90, 0], "prefixes": ["a"], "suffixes": [], "color": [0, 0, 0]}]', "rect must be"),
        ('[{"rect": [0, 90, 50, 40], "prefixes": ["a"], "suffixes": [], "color": [0, 0, 0]}]',
         "top < bottom"),
        ('[{"rect": [0, 90, 0, 90], "prefixes": ["a"], "suffixes": [1], "color": [0, 0, 0]}]', "suffixes"),
        ('[{"rect": [0, 90, 0, 90], "prefixes": ["a"], "suffixes": [], "color": [0, 0, 300]}]', "color"),
        ('[{"rect": [0, 90, 0, 90], "prefixes": ["a"]}]', "lacks suffixes, color"),
    ],
)
def test_json_validation_messages(text, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        cv.load_canvas_json(text)


def test_render_any_size():
    entries = cv.parse_reply(CASES[0]["reply"]).entries
    img = render_layout_image(entries, 64, 48)
    assert img.shape == (1, 64, 48, 3) and 0 <= float(img.min()) <= float(img.max()) <= 1
    masks = render_masks(entries, 180, 90)
    ref = render_masks(entries)
    assert torch.equal(masks[:, ::2], ref)
    blurred = render_layout_image(entries, 32, 32, blur=True)
    assert blurred.shape == (1, 32, 32, 3) and float(blurred.std()) < float(img.std())


_sentinel: list[int] = []


def _probe() -> None:  # would be reached only if text were executed
    _sentinel.append(1)


_fragments = st.sampled_from([
    "canvas = Canvas()\n", "canvas.set_global_description(", "canvas.add_local_description(", ")", "(", "[",
    "]", "'a'", "1.5", "-2", ",", "description=", "HTML_web_color_name='red'", "_probe()", "__import__('os')",
    "\n", "```python\n", "\n```", "lambda: 0", "**{}", "*[]", "'''", "#", "\x00", "1e999", "[" * 200,
])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.lists(_fragments, max_size=40).map("".join)))
def test_fuzz_only_parse_errors_and_nothing_executed(text):
    for fn in (cv.parse_text, cv.parse_code, cv.parse_reply):
        with contextlib.suppress(cv.CanvasParseError):
            fn(text)
    assert not _sentinel
