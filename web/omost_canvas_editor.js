// ComfyUI extension: an offline editor for the canvas of "Canvas from Text (Omost)".
// The node gets an "Edit canvas" button and a context-menu entry; the editor (./omost/editor.js) writes
// the edited canvas JSON back into the node's text. When the text holds canvas code or an LLM reply,
// the editor opens the canvas the node parsed on its last run (the node sends it to the UI).

import { app } from "../../scripts/app.js";
import { openCanvasEditor } from "./omost/editor.js";

const NODE = "MotionSuite_Omost_CanvasFromText";

function widget(node, name) {
  return node.widgets?.find((w) => w.name === name);
}

export function editNodeCanvas(node) {
  const text = widget(node, "text");
  const format = widget(node, "format");
  const isJson = text.value.trim() === "" || text.value.trim().startsWith("[");
  const source = isJson ? text.value : node.omostCanvasJson ?? text.value;
  return openCanvasEditor(source, (json) => {
    text.value = json;
    if (format && format.value === "code") format.value = "auto";
    text.callback?.(json);
    node.setDirtyCanvas?.(true, true);
  });
}

app.registerExtension({
  name: "MotionSuite.OmostCanvasEditor",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      const button = this.addWidget("button", "Edit canvas", null, () => editNodeCanvas(this), { serialize: false });
      if (button) button.serialize = false;
      return result;
    };
    const getExtraMenuOptions = nodeType.prototype.getExtraMenuOptions;
    nodeType.prototype.getExtraMenuOptions = function (canvas, options) {
      const result = getExtraMenuOptions?.apply(this, arguments);
      options.push({ content: "Edit Omost canvas", callback: () => editNodeCanvas(this) });
      return result;
    };
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      if (message?.omost_canvas?.length) this.omostCanvasJson = message.omost_canvas[0];
    };
  },
});
