"""Region attention inside a real ComfyUI UNet (skipped unless COMFYUI_DIR points at a ComfyUI checkout).

Builds a tiny SD1-layout ``UNetModel`` from ComfyUI itself and installs the Omost patch through
``transformer_options["patches_replace"]["attn2"]`` exactly as ModelPatcher does. Checks: the block keys
found by ``cross_attention_blocks`` are the ones ComfyUI looks up; a global-only canvas gives the same
output as unpatched attention; with regions the negative (uncond) half is unchanged and the cond half moves.

    COMFYUI_DIR=/path/to/ComfyUI [COMFYUI_PYTHON=/path/to/python] python -m pytest tests/test_omost_comfyui.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT
from test_comfyui_integration import server  # noqa: F401 - real ComfyUI server with the pack

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
pytestmark = pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to run")

SCRIPT = r"""
import json, sys
sys.argv = ["x", "--cpu"]
sys.path[:0] = [COMFY, ROOT, ROOT + "/tests"]
import comfy.cli_args
comfy.cli_args.args.cpu = True
import torch
import conftest  # noqa: F401 - makes the pack importable as motionsuite
import comfy.ops
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
from motionsuite.pipelines.omost.patch import RegionAttentionPatch, cross_attention_blocks
from motionsuite.pipelines.omost.render import render_masks

torch.manual_seed(0)
unet = UNetModel(image_size=32, in_channels=4, model_channels=32, out_channels=4, num_res_blocks=[1, 1],
                 channel_mult=(1, 2), num_head_channels=8, transformer_depth=[1, 1],
                 transformer_depth_middle=1,
                 transformer_depth_output=[1, 1, 1, 1], use_spatial_transformer=True, context_dim=16,
                 use_linear_in_transformer=True, operations=comfy.ops.disable_weight_init)
for p in unet.parameters():
    torch.nn.init.normal_(p, std=0.05)
blocks = cross_attention_blocks(unet)
assert len(blocks) == 7 and ("middle", 0, 0) in blocks, blocks
entries = json.load(open(ROOT + "/tests/fixtures/omost/canvas_parity.json"))["cases"][0]["entries"]
x, t = torch.randn(2, 4, 24, 32), torch.tensor([500.0, 500.0])
calls = []

def run(patch, ctx):
    to = {"cond_or_uncond": [1, 0]}
    if patch is not None:
        def counted(q, k, v, extra):
            calls.append(extra["block"])
            return patch(q, k, v, extra)
        to["patches_replace"] = {"attn2": {b: counted for b in blocks}}
    return unet(x, t, context=ctx, transformer_options=to)

ctx = torch.randn(2, 77, 16)
for method in ("dense_diffusion", "attention_couple"):
    same = RegionAttentionPatch(render_masks(entries[:1]), [77], method)
    assert (run(same, ctx) - run(None, ctx)).abs().max().item() < 1e-5
    ctx5 = torch.randn(2, 77 * 5, 16)
    y, y0 = run(RegionAttentionPatch(render_masks(entries), [77] * 5, method), ctx5), run(None, ctx5)
    assert y.isfinite().all() and (y[0] - y0[0]).abs().max().item() < 1e-5
    assert (y[1] - y0[1]).abs().max().item() > 1e-5
assert len(calls) == 4 * 7, len(calls)
print("ok")
"""


def test_region_attention_in_comfyui_unet():
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    code = f"COMFY = {COMFYUI_DIR!r}\nROOT = {str(ROOT)!r}\n" + SCRIPT
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300, cwd=COMFYUI_DIR)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]


def test_canvas_editor_served_by_comfyui(server):  # noqa: F811 - the ComfyUI server fixture
    """ComfyUI lists the editor among the front-end extensions and serves it and its modules."""
    import urllib.request

    url, _, _ = server
    with urllib.request.urlopen(url + "/extensions", timeout=30) as r:
        listed = json.loads(r.read())
    entry = "/extensions/ComfyUI-MotionSuite/omost_canvas_editor.js"
    assert entry in listed, listed
    for path in (entry, "/extensions/ComfyUI-MotionSuite/omost/editor.js",
                 "/extensions/ComfyUI-MotionSuite/omost/canvas_model.js"):
        with urllib.request.urlopen(url + path, timeout=30) as r:
            body = r.read().decode()
        local = (ROOT / "web" / path.split("/ComfyUI-MotionSuite/", 1)[1]).read_text()
        assert body == local and "javascript" in r.headers["Content-Type"], path
    assert "http" not in (ROOT / "web/omost/editor.js").read_text()  # nothing fetched from outside
