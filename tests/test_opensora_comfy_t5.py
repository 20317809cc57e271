"""ComfyUI's own T5-XXL CLIP objects through our Open-Sora text path (skipped unless COMFYUI_DIR is set).

Builds ComfyUI's real text-encoder classes (``comfy.sd.CLIP`` around ``pixart_t5``, ``sd3_clip`` with
T5 only, ``genmo``/mochi and ``lt``/ltxv: the CLIPLoader types a t5xxl file can be loaded as) with a
tiny T5 config via ``model_options["t5xxl_model_config"]``, loads the state dict of a tiny
transformers ``T5EncoderModel`` into them, and checks ``text.encode_with_clip`` against
``text.encode`` on that transformers model with ComfyUI's bundled T5 tokenizer: same mask, same
features for the real tokens (max |Δ| < 1e-4), for a prompt with ``(weights)`` syntax and one longer
than 300 tokens.

    COMFYUI_DIR=/path/to/ComfyUI [COMFYUI_PYTHON=/path/to/python] \
        python -m pytest tests/test_opensora_comfy_t5.py
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
pytestmark = pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to run")

SCRIPT = r"""
import os, shutil, sys, tempfile
sys.argv = ["x", "--cpu"]
sys.path[:0] = [COMFY, ROOT, ROOT + "/tests"]
import comfy.cli_args
comfy.cli_args.args.cpu = True
import torch
import conftest  # noqa: F401 - makes the pack importable as motionsuite
import comfy.sd
from comfy.text_encoders import genmo, lt, pixart_t5, sd3_clip
from transformers import T5Config, T5EncoderModel
from motionsuite.pipelines.opensora import text

tiny = dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4)
folder = tempfile.mkdtemp()
torch.manual_seed(0)
hf = T5EncoderModel(T5Config(vocab_size=32128, feed_forward_proj="gated-gelu", **tiny)).eval()
hf.save_pretrained(folder)
tok_dir = os.path.join(COMFY, "comfy", "text_encoders", "t5_tokenizer")
for name in os.listdir(tok_dir):
    shutil.copy(os.path.join(tok_dir, name), folder)
ours = text.load_t5(folder, dtype=torch.float32)


class Target:
    params = {}


def build(te, tokenizer):
    target = Target()
    target.clip, target.tokenizer = te, tokenizer
    clip = comfy.sd.CLIP(target, model_options={"t5xxl_model_config": tiny, "dtype": torch.float32})
    missing, _ = clip.load_sd(hf.state_dict())
    assert not missing, missing
    return clip


f32 = dict(dtype_t5=torch.float32)
clips = {
    "pixart": build(pixart_t5.pixart_te(**f32), pixart_t5.PixArtTokenizer),
    "sd3": build(sd3_clip.sd3_clip(clip_l=False, clip_g=False, t5=True, **f32), sd3_clip.SD3Tokenizer),
    "mochi": build(genmo.mochi_te(**f32), genmo.MochiT5Tokenizer),
    "ltxv": build(lt.ltxv_te(**f32), lt.LTXVT5Tokenizer),
}
prompts = [
    "A (red:1.3) boat on a calm sea at sunset, 4k. aesthetic score: 6.5.",
    " ".join(["a small grey cat"] * 90),
]
ref_y, ref_mask = text.encode(ours, prompts)
assert int(ref_mask[1].sum()) == 300
for name, clip in clips.items():
    for i, prompt in enumerate(prompts):
        y, mask = text.encode_with_clip(clip, prompt)
        assert torch.equal(mask, ref_mask[i : i + 1]), (name, i, int(mask.sum()), int(ref_mask[i].sum()))
        n = int(mask.sum())
        err = (y[0, :n] - ref_y[i, :n]).abs().max().item()
        assert err < 1e-4, (name, i, err)
        print(name, i, n, err)
print("ok")
"""


def test_comfyui_t5_clip_matches_transformers_t5():
    python = os.environ.get("COMFYUI_PYTHON", sys.executable)
    code = f"COMFY = {COMFYUI_DIR!r}\nROOT = {str(ROOT)!r}\n" + SCRIPT
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300, cwd=COMFYUI_DIR)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-4000:]
