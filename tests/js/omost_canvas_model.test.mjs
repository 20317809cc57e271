// Pure canvas logic of the Omost editor (web/omost/canvas_model.js), run with `node --test`.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import * as cm from "../../web/omost/canvas_model.js";

const fixture = JSON.parse(readFileSync(new URL("../fixtures/omost/canvas_parity.json", import.meta.url), "utf8"));
const entries = fixture.cases[0].entries;

test("parse and serialise round-trip the upstream canvas JSON", () => {
  const text = cm.serializeCanvas(entries);
  assert.deepEqual(JSON.parse(text), entries);
  assert.deepEqual(cm.parseCanvas(text), entries);
  assert.equal(text.split("\n").length, entries.length + 2); // one entry per line
  assert.deepEqual(cm.parseCanvas("  "), cm.emptyCanvas());
});

test("validation messages name the entry and what is wrong", () => {
  assert.throws(() => cm.parseCanvas("[1,"), /not valid JSON/);
  assert.throws(() => cm.parseCanvas("[]"), /non-empty JSON list/);
  const bad = (change) => JSON.stringify([entries[0], { ...entries[1], ...change }]);
  assert.throws(() => cm.parseCanvas(bad({ rect: [10, 5, 0, 90] })), /entry 1: rect must be/);
  assert.throws(() => cm.parseCanvas(bad({ rect: [0, 91, 0, 90] })), /entry 1: rect must be/);
  assert.throws(() => cm.parseCanvas(bad({ prefixes: [] })), /entry 1: prefixes must hold/);
  assert.throws(() => cm.parseCanvas(bad({ suffixes: [3] })), /entry 1: suffixes must be a list of strings/);
  assert.throws(() => cm.parseCanvas(bad({ color: [0, 0, 256] })), /entry 1: color must be/);
  assert.throws(() => cm.parseCanvas(JSON.stringify([{ rect: [0, 90, 0, 90] }])), /lacks prefixes, suffixes, color/);
});

test("hit test picks the nearest region, drag modes, moves and resizes stay on the grid", () => {
  const canvas = [cm.emptyCanvas()[0], { ...entries[1], rect: [10, 50, 10, 50] }, { ...entries[1], rect: [30, 70, 30, 70] }];
  assert.equal(cm.hitTest(canvas, 40, 40), 2);
  assert.equal(cm.hitTest(canvas, 15, 15), 1);
  assert.equal(cm.hitTest(canvas, 80, 5), -1);
  assert.equal(cm.dragMode([10, 50, 10, 50], 30, 30), "move");
  assert.equal(cm.dragMode([10, 50, 10, 50], 50, 50), "se");
  assert.equal(cm.dragMode([10, 50, 10, 50], 30, 10.5), "n");
  assert.equal(cm.dragMode([10, 50, 10, 50], 80, 80), null);
  assert.deepEqual(cm.dragRect([10, 50, 10, 50], "move", 5.2, -3.9), [6, 46, 15, 55]);
  assert.deepEqual(cm.dragRect([10, 50, 10, 50], "move", 100, -100), [0, 40, 50, 90]);
  assert.deepEqual(cm.dragRect([10, 50, 10, 50], "se", 60, 60), [10, 90, 10, 90]);
  assert.deepEqual(cm.dragRect([10, 50, 10, 50], "nw", 60, 60), [48, 50, 48, 50]);
  assert.deepEqual(cm.rectFromPoints(40.2, 60, 10, 20.4), [20, 60, 10, 40]);
  assert.equal(cm.rectFromPoints(10, 10, 11, 30), null);
});

test("add, delete and reorder regions; global prefixes propagate", () => {
  let canvas = cm.addRegion(entries, [0, 30, 0, 30], "A cat.");
  assert.equal(canvas.length, entries.length + 1);
  assert.deepEqual(canvas.at(-1).prefixes, [...entries[0].prefixes, "A cat."]);
  assert.equal(entries.length, fixture.cases[0].entries.length); // input untouched
  const [moved, index] = cm.moveRegion(canvas, canvas.length - 1, -10);
  assert.equal(index, 1);
  assert.deepEqual(moved[1].rect, [0, 30, 0, 30]);
  assert.deepEqual(cm.moveRegion(moved, 1, -1), [moved, 1]); // the global entry stays first
  canvas = cm.deleteRegion(moved, 1);
  assert.deepEqual(canvas, entries);
  assert.throws(() => cm.deleteRegion(canvas, 0), /Only regions/);
  const renamed = cm.setGlobalPrefixes(canvas, ["A new scene."]);
  assert.deepEqual(renamed[0].prefixes, ["A new scene."]);
  for (let i = 1; i < renamed.length; i++) assert.equal(renamed[i].prefixes[0], "A new scene.");
  assert.deepEqual(cm.linesToList(" a \n\n b\n"), ["a", "b"]);
  assert.equal(cm.rgbToHex([255, 0, 16]), "#ff0010");
  assert.deepEqual(cm.hexToRgb("#FF0010"), [255, 0, 16]);
  assert.throws(() => cm.hexToRgb("red"), /#rrggbb/);
});
