// Omost canvas editor dialog: plain DOM + a 2D <canvas>, no framework, nothing fetched from the internet.
//
// openCanvasEditor(text, onSave) shows the canvas held in `text` (canvas JSON; empty = new canvas).
// Drag inside a region to move it, drag its edges/corners to resize, drag on free space to draw a new
// region (Shift-drag draws over existing regions too). The side panel selects regions and edits colour, prefixes and suffixes (one per line), depth
// (farther/nearer) and deletion. Save calls onSave(json) with the edited canvas JSON.

import * as cm from "./canvas_model.js";

const SCALE = 6; // pixels per grid unit: 540x540 like Omost's own editor
const CSS = `
.ms-omost-overlay{position:fixed;inset:0;background:rgba(0,0,0,.6);z-index:10000;display:flex;
  align-items:center;justify-content:center;font:13px sans-serif;color:#ddd}
.ms-omost-dialog{background:#222;border:1px solid #555;border-radius:6px;padding:10px;display:flex;gap:10px;
  max-height:95vh}
.ms-omost-dialog canvas{cursor:crosshair;border:1px solid #555;touch-action:none}
.ms-omost-side{width:320px;display:flex;flex-direction:column;gap:6px;overflow:auto}
.ms-omost-side ol{margin:0;padding-left:22px;max-height:180px;overflow:auto}
.ms-omost-side li{cursor:pointer;padding:2px}
.ms-omost-side li.sel{background:#446}
.ms-omost-side textarea{width:100%;box-sizing:border-box;min-height:60px;background:#111;color:#ddd}
.ms-omost-side .row{display:flex;gap:4px;flex-wrap:wrap}
.ms-omost-error{color:#f88;white-space:pre-wrap}
.ms-omost-swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border:1px solid #000}`;

function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  for (const c of children) node.append(c);
  return node;
}

function installStyle() {
  if (!document.getElementById("ms-omost-style")) {
    document.head.append(el("style", { id: "ms-omost-style", textContent: CSS }));
  }
}

export function openCanvasEditor(text, onSave) {
  installStyle();
  let entries;
  let loadError = "";
  try {
    entries = cm.parseCanvas(text);
  } catch (err) {
    entries = cm.emptyCanvas();
    loadError = `${err.message}\nStarting from an empty canvas; Cancel keeps the node's text.`;
  }
  let selected = entries.length > 1 ? 1 : 0;
  let drag = null; // {mode, x0, y0, rect0} or {mode: "draw", x0, y0, x1, y1}

  const canvas = el("canvas", { width: cm.GRID * SCALE, height: cm.GRID * SCALE });
  const list = el("ol", { start: 0 });
  const color = el("input", { type: "color", title: "Region colour (the layout image)" });
  const prefixes = el("textarea", { title: "Prefixes, one per line: global description, then this region's" });
  const suffixes = el("textarea", { title: "Detailed sub-prompts, one per line" });
  const error = el("div", { className: "ms-omost-error", textContent: loadError });
  const button = (label, action, title = "") => el("button", { textContent: label, title, onclick: action });
  const side = el("div", { className: "ms-omost-side" }, [
    el("div", { textContent: "Regions (far → near; 0 = global)" }), list,
    el("div", { className: "row" }, [
      button("Add region", () => addAt([30, 60, 30, 60]), "Or drag on free space in the picture (Shift-drag anywhere)"),
      button("Farther", () => reorder(-1)), button("Nearer", () => reorder(1)), button("Delete", remove),
    ]),
    el("label", { textContent: "Colour " }, [color]),
    el("label", { textContent: "Prefixes" }), prefixes,
    el("label", { textContent: "Suffixes" }), suffixes, error,
    el("div", { className: "row" }, [button("Save", save), button("Cancel", close)]),
  ]);
  const overlay = el("div", { className: "ms-omost-overlay" }, [
    el("div", { className: "ms-omost-dialog" }, [canvas, side]),
  ]);
  document.body.append(overlay);

  function set(next, index = selected) {
    entries = next;
    selected = Math.min(index, entries.length - 1);
    error.textContent = "";
    refresh();
  }

  function addAt(rect) {
    set(cm.addRegion(entries, rect), entries.length);
  }

  function reorder(delta) {
    const [next, index] = cm.moveRegion(entries, selected, delta);
    set(next, index);
  }

  function remove() {
    if (selected >= 1) set(cm.deleteRegion(entries, selected), selected - 1);
  }

  function refresh() {
    list.replaceChildren(...entries.map((e, i) => {
      const swatch = el("span", { className: "ms-omost-swatch" });
      swatch.style.background = cm.rgbToHex(e.color);
      const item = el("li", { className: i === selected ? "sel" : "", onclick: () => set(entries, i) },
        [swatch, e.prefixes[e.prefixes.length - 1]]);
      return item;
    }));
    const entry = entries[selected];
    color.value = cm.rgbToHex(entry.color);
    prefixes.value = entry.prefixes.join("\n");
    suffixes.value = entry.suffixes.join("\n");
    draw();
  }

  function shownRect(i) {
    if (!drag || i !== selected || drag.mode === "draw") return entries[i].rect;
    return cm.dragRect(drag.rect0, drag.mode, drag.x1 - drag.x0, drag.y1 - drag.y0);
  }

  function draw() {
    const g = canvas.getContext("2d");
    g.fillStyle = cm.rgbToHex(entries[0].color);
    g.fillRect(0, 0, canvas.width, canvas.height);
    entries.forEach((e, i) => {
      if (i === 0) return;
      const [top, bottom, left, right] = shownRect(i);
      g.globalAlpha = 0.7; // Omost's layout blend: 0.7 region + 0.3 what lies below
      g.fillStyle = cm.rgbToHex(e.color);
      g.fillRect(left * SCALE, top * SCALE, (right - left) * SCALE, (bottom - top) * SCALE);
      g.globalAlpha = 1;
      g.strokeStyle = i === selected ? "#fff" : "#000";
      g.lineWidth = i === selected ? 3 : 1;
      g.strokeRect(left * SCALE, top * SCALE, (right - left) * SCALE, (bottom - top) * SCALE);
      g.fillStyle = "#fff";
      g.shadowColor = "#000";
      g.shadowBlur = 3;
      g.fillText(`${i}: ${e.prefixes[e.prefixes.length - 1]}`.slice(0, 40), left * SCALE + 4, top * SCALE + 14);
      g.shadowBlur = 0;
    });
    if (drag && drag.mode === "draw") {
      g.setLineDash([6, 4]);
      g.strokeStyle = "#fff";
      g.strokeRect(drag.x0 * SCALE, drag.y0 * SCALE, (drag.x1 - drag.x0) * SCALE, (drag.y1 - drag.y0) * SCALE);
      g.setLineDash([]);
    }
  }

  function gridPoint(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * cm.GRID / box.width, (event.clientY - box.top) * cm.GRID / box.height];
  }

  canvas.addEventListener("pointerdown", (event) => {
    const [x, y] = gridPoint(event);
    canvas.setPointerCapture?.(event.pointerId);
    if (event.shiftKey) { // Shift-drag always draws a new region, also over existing ones
      drag = { mode: "draw", x0: x, y0: y, x1: x, y1: y };
      return;
    }
    const mode = selected >= 1 ? cm.dragMode(entries[selected].rect, x, y) : null;
    if (mode) {
      drag = { mode, x0: x, y0: y, x1: x, y1: y, rect0: entries[selected].rect };
      return;
    }
    const hit = cm.hitTest(entries, x, y);
    if (hit >= 1) {
      set(entries, hit);
      drag = { mode: "move", x0: x, y0: y, x1: x, y1: y, rect0: entries[hit].rect };
    } else {
      drag = { mode: "draw", x0: x, y0: y, x1: x, y1: y };
    }
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    [drag.x1, drag.y1] = gridPoint(event);
    draw();
  });
  canvas.addEventListener("pointerup", () => {
    if (!drag) return;
    const d = drag;
    drag = null;
    if (d.mode === "draw") {
      const rect = cm.rectFromPoints(d.x0, d.y0, d.x1, d.y1);
      if (rect) addAt(rect); else draw();
    } else {
      set(cm.updateEntry(entries, selected, { rect: cm.dragRect(d.rect0, d.mode, d.x1 - d.x0, d.y1 - d.y0) }));
    }
  });

  color.addEventListener("input", () => set(cm.updateEntry(entries, selected, { color: cm.hexToRgb(color.value) })));
  prefixes.addEventListener("change", () => {
    const value = cm.linesToList(prefixes.value);
    if (!value.length) {
      error.textContent = "Prefixes must hold at least one description.";
      return;
    }
    set(selected === 0 ? cm.setGlobalPrefixes(entries, value) : cm.updateEntry(entries, selected, { prefixes: value }));
  });
  suffixes.addEventListener("change", () => {
    set(cm.updateEntry(entries, selected, { suffixes: cm.linesToList(suffixes.value) }));
  });

  function save() {
    try {
      onSave(cm.serializeCanvas(entries));
      close();
    } catch (err) {
      error.textContent = err.message;
    }
  }

  function close() {
    overlay.remove();
  }

  refresh();
  return { overlay, canvas, getEntries: () => entries, save, close };
}
