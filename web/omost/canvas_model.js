// Omost canvas model for the editor: pure functions on the canvas JSON list, no DOM, no ComfyUI.
//
// A canvas is [global, ...regions]: each entry {rect: [top, bottom, left, right] on the 90x90 grid,
// prefixes: [..], suffixes: [..], color: [r, g, b]}. The global entry covers the whole grid and comes
// first; regions follow from far to near (list order = depth). Every function returns a new list and
// leaves its input unchanged, so the editor can keep the last good canvas.

export const GRID = 90;
export const MIN_SIZE = 2;

export function emptyCanvas() {
  return [{ rect: [0, GRID, 0, GRID], prefixes: ["An image."], suffixes: [], color: [128, 128, 128] }];
}

function isIntList(value, n, lo, hi) {
  return Array.isArray(value) && value.length === n && value.every((v) => Number.isInteger(v) && v >= lo && v <= hi);
}

function isStringList(value) {
  return Array.isArray(value) && value.every((s) => typeof s === "string");
}

// Same rules as the Python loader (pipelines/omost/canvas.py validate_canvas), same wording.
export function validateCanvas(data) {
  if (!Array.isArray(data) || data.length === 0) {
    throw new Error("A canvas must be a non-empty JSON list: the global entry, then one entry per region.");
  }
  return data.map((entry, i) => {
    const where = i === 0 ? "entry 0 (global)" : `entry ${i}`;
    if (entry === null || typeof entry !== "object" || Array.isArray(entry)) {
      throw new Error(`Canvas ${where} must be an object with rect, prefixes, suffixes, color.`);
    }
    const missing = ["rect", "prefixes", "suffixes", "color"].filter((k) => !(k in entry));
    if (missing.length) throw new Error(`Canvas ${where} lacks ${missing.join(", ")}.`);
    const r = entry.rect;
    if (!isIntList(r, 4, 0, GRID) || !(r[0] < r[1] && r[2] < r[3])) {
      throw new Error(`Canvas ${where}: rect must be [top, bottom, left, right] integers in 0..${GRID} ` +
        `with top < bottom and left < right, got ${JSON.stringify(r)}.`);
    }
    for (const key of ["prefixes", "suffixes"]) {
      if (!isStringList(entry[key])) throw new Error(`Canvas ${where}: ${key} must be a list of strings.`);
    }
    if (entry.prefixes.length === 0) throw new Error(`Canvas ${where}: prefixes must hold at least one description.`);
    if (!isIntList(entry.color, 3, 0, 255)) {
      throw new Error(`Canvas ${where}: color must be [r, g, b] integers in 0..255, got ${JSON.stringify(entry.color)}.`);
    }
    return { rect: [...r], prefixes: [...entry.prefixes], suffixes: [...entry.suffixes], color: [...entry.color] };
  });
}

// Empty text gives a fresh canvas; anything else must be canvas JSON.
export function parseCanvas(text) {
  if (typeof text !== "string" || !text.trim()) return emptyCanvas();
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`The canvas text is not valid JSON (${err.message}).`);
  }
  return validateCanvas(data);
}

// One entry per line: short enough to read in the node's text box, and valid for every Omost loader.
export function serializeCanvas(entries) {
  return "[\n" + validateCanvas(entries).map((e) => JSON.stringify(e)).join(",\n") + "\n]";
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

// Topmost (nearest) region containing grid point (x, y); -1 when only the global entry is there.
export function hitTest(entries, x, y) {
  for (let i = entries.length - 1; i >= 1; i--) {
    const [top, bottom, left, right] = entries[i].rect;
    if (y >= top && y < bottom && x >= left && x < right) return i;
  }
  return -1;
}

// What dragging at (x, y) does to rect: "move", an edge/corner to resize ("n", "se", ...), or null.
export function dragMode(rect, x, y, tolerance = 1.5) {
  const [top, bottom, left, right] = rect;
  if (x < left - tolerance || x > right + tolerance || y < top - tolerance || y > bottom + tolerance) return null;
  const v = Math.abs(y - top) <= tolerance ? "n" : Math.abs(y - bottom) <= tolerance ? "s" : "";
  const h = Math.abs(x - left) <= tolerance ? "w" : Math.abs(x - right) <= tolerance ? "e" : "";
  return v + h || "move";
}

// rect after dragging by (dx, dy) grid units in `mode`; stays inside the grid, at least MIN_SIZE wide.
export function dragRect(rect, mode, dx, dy) {
  let [top, bottom, left, right] = rect;
  dx = Math.round(dx);
  dy = Math.round(dy);
  if (mode === "move") {
    dy = clamp(dy, -top, GRID - bottom);
    dx = clamp(dx, -left, GRID - right);
    return [top + dy, bottom + dy, left + dx, right + dx];
  }
  if (mode.includes("n")) top = clamp(top + dy, 0, bottom - MIN_SIZE);
  if (mode.includes("s")) bottom = clamp(bottom + dy, top + MIN_SIZE, GRID);
  if (mode.includes("w")) left = clamp(left + dx, 0, right - MIN_SIZE);
  if (mode.includes("e")) right = clamp(right + dx, left + MIN_SIZE, GRID);
  return [top, bottom, left, right];
}

// The rect spanned by two grid points (drawing a new region), or null when it is too small.
export function rectFromPoints(x0, y0, x1, y1) {
  const [left, right] = [Math.round(Math.min(x0, x1)), Math.round(Math.max(x0, x1))].map((v) => clamp(v, 0, GRID));
  const [top, bottom] = [Math.round(Math.min(y0, y1)), Math.round(Math.max(y0, y1))].map((v) => clamp(v, 0, GRID));
  return bottom - top >= MIN_SIZE && right - left >= MIN_SIZE ? [top, bottom, left, right] : null;
}

const PALETTE = [[220, 20, 60], [30, 144, 255], [50, 205, 50], [255, 165, 0], [138, 43, 226], [0, 206, 209]];

// A new nearest region: it repeats the global prefixes, as Omost's regions do.
export function addRegion(entries, rect, description = "New region.") {
  const color = PALETTE[(entries.length - 1) % PALETTE.length];
  const region = { rect: [...rect], prefixes: [...entries[0].prefixes, description], suffixes: [], color: [...color] };
  return [...entries, region];
}

export function deleteRegion(entries, index) {
  if (index < 1 || index >= entries.length) throw new Error("Only regions (not the global entry) can be deleted.");
  return entries.filter((_, i) => i !== index);
}

// Move region `index` by `delta` places in depth order (negative = farther); returns [entries, newIndex].
export function moveRegion(entries, index, delta) {
  const target = clamp(index + delta, 1, entries.length - 1);
  if (index < 1 || target === index) return [entries, index];
  const out = [...entries];
  const [item] = out.splice(index, 1);
  out.splice(target, 0, item);
  return [out, target];
}

export function updateEntry(entries, index, changes) {
  return entries.map((e, i) => (i === index ? { ...e, ...changes } : e));
}

// New global prefixes are copied into every region that started with the old ones.
export function setGlobalPrefixes(entries, prefixes) {
  const old = entries[0].prefixes;
  return entries.map((e, i) => {
    if (i === 0) return { ...e, prefixes: [...prefixes] };
    const inherits = old.every((p, j) => e.prefixes[j] === p);
    return inherits ? { ...e, prefixes: [...prefixes, ...e.prefixes.slice(old.length)] } : e;
  });
}

export const linesToList = (text) => text.split("\n").map((s) => s.trim()).filter(Boolean);

export const rgbToHex = (rgb) => "#" + rgb.map((c) => c.toString(16).padStart(2, "0")).join("");

export function hexToRgb(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex.trim());
  if (!m) throw new Error(`Colour must look like #rrggbb, got ${JSON.stringify(hex)}.`);
  return [1, 2, 3].map((i) => parseInt(m[i], 16));
}
