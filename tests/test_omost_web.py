"""The offline Omost canvas editor (web/): its pure logic under node, the extension in headless Chromium.

The browser test serves the pack's web/ folder at ``/extensions/motionsuite/`` (as ComfyUI does) with a
stand-in ``/scripts/app.js`` whose ``registerExtension`` records the extension, builds a stand-in
"Canvas from Text (Omost)" node with ComfyUI's widget API, opens the editor from the node's context
menu, drags a region, draws a new one and saves; the node's text must then hold a canvas that the
Python loader accepts with the expected rectangles. Needs Playwright and a Chromium binary (Debian's
``chromium-headless-shell`` or ``chromium``; set OMOST_CHROMIUM to another path); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT
from motionsuite.pipelines.omost.canvas import load_canvas_json

CASE = json.loads((ROOT / "tests/fixtures/omost/canvas_parity.json").read_text())["cases"][0]


def test_canvas_model_under_node():
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    proc = subprocess.run([node, "--test", str(ROOT / "tests/js/omost_canvas_model.test.mjs")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout


def _chromium() -> str | None:
    for path in (os.environ.get("OMOST_CHROMIUM"), shutil.which("chromium-headless-shell"),
                 shutil.which("chromium")):
        if path and Path(path).exists():
            return path
    return None


APP_STANDIN = "export const app = { registerExtension(ext) { window.__extensions.push(ext); } };"
PAGE = """<!doctype html><html><head></head><body><script>window.__extensions = [];</script>
<script type="module">
import "/extensions/motionsuite/omost_canvas_editor.js";
const ext = window.__extensions.find((e) => e.name === "MotionSuite.OmostCanvasEditor");
function NodeType() {
  this.widgets = [{ name: "text", value: window.__text }, { name: "format", value: "code" }];
}
NodeType.prototype.addWidget = function (type, name, value, callback, options) {
  const w = { type, name, value, callback, options };
  this.widgets.push(w);
  return w;
};
await ext.beforeRegisterNodeDef(NodeType, { name: "MotionSuite_Omost_CanvasFromText" }, {});
const node = new NodeType();
node.onNodeCreated();
window.__node = node;
window.__ready = true;
</script></body></html>"""


@pytest.fixture()
def page():
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium binary (apt install chromium-headless-shell)")
    sync_api = pytest.importorskip("playwright.sync_api")
    web = ROOT / "web"

    def serve(route):
        path = route.request.url.split("://", 1)[1].split("/", 1)[1]
        if path == "scripts/app.js":
            return route.fulfill(body=APP_STANDIN, content_type="text/javascript")
        if path.startswith("extensions/motionsuite/"):
            file = (web / path.removeprefix("extensions/motionsuite/")).resolve()
            if file.is_file() and web in file.parents:
                return route.fulfill(body=file.read_text(), content_type="text/javascript")
        if path == "index.html":
            return route.fulfill(body=PAGE, content_type="text/html")
        return route.fulfill(status=404, body="not found")

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1200, "height": 800})
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.route("http://comfy.test/**", serve)
        pg.add_init_script(f"window.__text = {json.dumps(json.dumps(CASE['entries']))};")
        pg.goto("http://comfy.test/index.html")
        pg.wait_for_function("window.__ready === true", timeout=10000)
        yield pg
        assert not errors, errors
        browser.close()


def test_editor_in_chromium_edits_and_writes_back(page):
    entries = CASE["entries"]
    node_menu = page.evaluate("""() => {
        const options = [];
        window.__node.getExtraMenuOptions({}, options);
        const item = options.find((o) => o.content === "Edit Omost canvas");
        item.callback();
        return options.map((o) => o.content);
    }""")
    assert node_menu == ["Edit Omost canvas"]
    assert page.evaluate("window.__node.widgets.map((w) => w.name)") == ["text", "format", "Edit canvas"]
    canvas = page.locator(".ms-omost-dialog canvas")
    box = canvas.bounding_box()
    unit = box["width"] / 90
    # region 1 is selected on open and keeps the drag even under nearer regions: move it 10 right, 5 down
    top, bottom, left, right = entries[1]["rect"]
    start = (box["x"] + ((left + right) / 2 + 0.3) * unit, box["y"] + ((top + bottom) / 2 + 0.3) * unit)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 10 * unit, start[1] + 5 * unit, steps=4)
    page.mouse.up()
    # then Shift-drag a new region in the bottom-right corner (over existing regions)
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + 70.2 * unit, box["y"] + 72.2 * unit)
    page.mouse.down()
    page.mouse.move(box["x"] + 88.2 * unit, box["y"] + 86.2 * unit, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.locator(".ms-omost-side textarea").nth(1).fill("A red kite.\nFlying high.")
    page.locator(".ms-omost-side textarea").nth(1).dispatch_event("change")
    page.get_by_role("button", name="Save").click()
    assert page.locator(".ms-omost-overlay").count() == 0
    text = page.evaluate("window.__node.widgets[0].value")
    fmt = page.evaluate("window.__node.widgets[1].value")
    saved = load_canvas_json(text)  # the Python loader accepts what the editor wrote
    assert fmt == "auto"
    assert len(saved) == len(entries) + 1
    moved = saved[1]
    r = entries[1]["rect"]
    dy, dx = min(5, 90 - r[1]), min(10, 90 - r[3])
    assert moved["rect"] == [r[0] + dy, r[1] + dy, r[2] + dx, r[3] + dx]
    assert saved[-1]["rect"] == [72, 86, 70, 88]
    assert saved[-1]["suffixes"] == ["A red kite.", "Flying high."]
    assert saved[-1]["prefixes"] == entries[0]["prefixes"] + ["New region."]
    assert saved[2:-1] == entries[2:] and saved[0] == entries[0]
