"""Inputs for workflows/omost_llm: an LLM server stand-in, tiny SD1.x weights and core-sampling stand-ins.

- The graph's LLM Server node points at 127.0.0.1:11434 (Ollama's default). ``prepare`` serves the
  OpenAI chat protocol there from a thread (streamed or not) and answers with a recorded Omost reply
  (tests/fixtures/omost/canvas_parity.json), so Chat, the canvas parser and every backend run for real.
- In real ComfyUI (``COMFYUI_DIR`` set: tests/test_comfyui_integration.py) ``prepare`` writes
  ``models/checkpoints/v1-5-pruned-emaonly.safetensors``: an SD1.x-layout checkpoint that ComfyUI
  detects as SD15, built with ComfyUI's own classes in ``COMFYUI_PYTHON`` (a one-level 320-channel UNet
  with context 768, full-size CLIP-L and VAE, random fp16 weights, ~470 MB).
- Without ComfyUI the test runner has no core sampling nodes, so ``prepare`` adds small stand-ins for
  CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage, KSampler and VAEDecode to the runner: the
  KSampler stand-in calls the MODEL's attn2 replacements and model wrapper the way ComfyUI does and
  blends masked conditioning per pixel, so every Omost backend is exercised end to end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import torch
import torch.nn.functional as F

PORT = 11434
CKPT = "v1-5-pruned-emaonly.safetensors"
_server: ThreadingHTTPServer | None = None


def _serve_llm() -> None:
    """One OpenAI-protocol stand-in per test process, on the port the workflow names."""
    global _server
    if _server is not None:
        return
    from test_omost_llm import _Handler

    class Handler(_Handler):
        replies: list[str] = []
        requests: list[dict] = []

    try:
        _server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    except OSError as exc:
        raise RuntimeError(f"port {PORT} is taken (a real Ollama?); stop it to run the omost_llm "
                           f"workflow test: {exc}") from None
    threading.Thread(target=_server.serve_forever, daemon=True).start()


BUILD = r"""
import sys
sys.path.insert(0, ".")
out = sys.argv[1]
sys.argv = ["x", "--cpu"]
import comfy.cli_args
comfy.cli_args.args.cpu = True
import torch, comfy.ops, comfy.sd1_clip
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
from comfy.ldm.models.autoencoder import AutoencoderKL
from safetensors.torch import save_file
unet = UNetModel(image_size=32, in_channels=4, model_channels=320, out_channels=4, num_res_blocks=[1],
                 channel_mult=(1,), num_heads=8, transformer_depth=[1], transformer_depth_middle=1,
                 transformer_depth_output=[1, 1], use_spatial_transformer=True, context_dim=768,
                 operations=comfy.ops.disable_weight_init)
vae = AutoencoderKL(ddconfig={"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3,
                              "out_ch": 3, "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2,
                              "attn_resolutions": [], "dropout": 0.0}, embed_dim=4)
parts = (("model.diffusion_model.", unet), ("cond_stage_model.", comfy.sd1_clip.SDClipModel(device="cpu")),
         ("first_stage_model.", vae))
sd, gen = {}, torch.Generator().manual_seed(0)
for prefix, module in parts:
    for key, value in module.state_dict().items():
        if not value.is_floating_point() or key.endswith("position_ids"):
            sd[prefix + key] = value.contiguous()
        elif "norm" in key and key.endswith("weight"):
            sd[prefix + key] = torch.ones(value.shape, dtype=torch.float16)
        else:
            sd[prefix + key] = (torch.randn(value.shape, generator=gen) * 0.02).half()
save_file(sd, out)
"""


def _write_sd1_checkpoint(models: Path) -> None:
    folder = models / "checkpoints"
    folder.mkdir(exist_ok=True)
    proc = subprocess.run([os.environ.get("COMFYUI_PYTHON", sys.executable), "-c", BUILD, str(folder / CKPT)],
                          cwd=os.environ["COMFYUI_DIR"], capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError("building the tiny SD1.x checkpoint failed:\n" + proc.stderr[-3000:])


# ---- stand-ins for ComfyUI core nodes (test runner only) -------------------------------------------


class _Patcher:
    """The ModelPatcher parts Omost uses, around a UNet-shaped module with named cross-attentions."""

    def __init__(self, options: dict | None = None) -> None:
        from test_omost_nodes import _TinyUNet

        self.model = type("BaseModel", (), {})()
        self.model.diffusion_model = _TinyUNet()
        self.model_options = options or {"transformer_options": {}}

    def clone(self):
        import copy

        return _Patcher(copy.deepcopy(self.model_options))

    def set_model_attn2_replace(self, patch, block_name, number, transformer_index=None):
        replace = self.model_options["transformer_options"].setdefault("patches_replace", {})
        attn2 = replace.setdefault("attn2", {})
        attn2[(block_name, number, transformer_index)] = patch

    def set_model_unet_function_wrapper(self, fn):
        self.model_options["model_function_wrapper"] = fn


def _apply_model(x, t, c_crossattn, transformer_options=None, **_):
    """A 'UNet': one cross-attention of the latent's first two channels on the context (patched or not)."""
    b, _, h, w = x.shape
    q = x[:, :2].flatten(2).transpose(1, 2)
    k = v = c_crossattn
    patches = (transformer_options or {}).get("patches_replace", {}).get("attn2", {})
    if patches:
        extra = {"n_heads": 1, "original_shape": list(x.shape),
                 "cond_or_uncond": transformer_options["cond_or_uncond"]}
        out = next(iter(patches.values()))(q, k, v, extra)
    else:
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
    out = out.transpose(1, 2).reshape(b, 2, h, w) * 1e-3
    return torch.cat([out, out], dim=1) + 0.1 * x + t[:, None, None, None] * 0


def _predict(model: _Patcher, x, t, cond: list, kind: int) -> torch.Tensor:
    """ComfyUI's per-pixel blend of the entries of one CONDITIONING (mask x strength weights)."""
    total, weight = torch.zeros_like(x), torch.full_like(x[:, :1], 1e-37)
    for context, extra in cond:
        options = {**model.model_options.get("transformer_options", {}), "cond_or_uncond": [kind]}
        c = {"c_crossattn": context.expand(x.shape[0], -1, -1), "transformer_options": options}
        wrapper = model.model_options.get("model_function_wrapper")
        args = {"input": x, "timestep": t, "c": c, "cond_or_uncond": [kind]}
        eps = wrapper(_apply_model, args) if wrapper else _apply_model(x, t, **c)
        mask = extra.get("mask")
        m = torch.ones_like(x[:, :1]) if mask is None else F.interpolate(mask[:, None].float(), x.shape[-2:])
        m = m * extra.get("mask_strength", 1.0)
        total, weight = total + eps * m, weight + m
    return total / weight


def _install_core_stand_ins() -> None:
    from test_omost_nodes import FakeClip
    from workflow_runner import StandIns

    def checkpoint(self, ckpt_name: str):
        return _Patcher(), FakeClip(keys=("l",)), "vae"

    def clip_encode(self, text: str, clip):
        cond, pooled = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
        return ([[cond, {"pooled_output": pooled}]],)

    def empty_latent(self, width: int, height: int, batch_size: int = 1):
        return ({"samples": torch.zeros(batch_size, 4, height // 8, width // 8)},)

    def ksampler(self, model, seed, steps, cfg, sampler_name, scheduler, positive, negative, latent_image,
                 denoise=1.0):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(latent_image["samples"].shape, generator=gen)
        for step in range(steps):
            t = torch.full((x.shape[0],), 1.0 - step / steps)
            uncond = _predict(model, x, t, negative, 1)
            eps = uncond + cfg * (_predict(model, x, t, positive, 0) - uncond)
            x = x - eps / steps
        return ({"samples": x},)

    def vae_decode(self, samples: dict, vae):
        return (torch.sigmoid(F.interpolate(samples["samples"][:, :3], scale_factor=8)).permute(0, 2, 3, 1),)

    for name, fn in (("CheckpointLoaderSimple", checkpoint), ("CLIPTextEncode", clip_encode),
                     ("EmptyLatentImage", empty_latent), ("KSampler", ksampler), ("VAEDecode", vae_decode)):
        if not hasattr(StandIns, name):
            setattr(StandIns, name, fn)


def prepare(models: Path, inputs: Path) -> None:
    """LLM stand-in on 127.0.0.1:11434; the tiny SD1.x checkpoint in ComfyUI, else core stand-ins."""
    _serve_llm()
    if os.environ.get("COMFYUI_DIR"):
        _write_sd1_checkpoint(models)
    _install_core_stand_ins()


def check_output(frames: torch.Tensor) -> None:
    """The 128x128 layout preview and three 128x128 samples (mask, DenseDiffusion, multi-diffusion)."""
    assert tuple(frames.shape) == (1, 128, 128, 3), tuple(frames.shape)
    assert json.dumps(float(frames.std())) != "0.0"
