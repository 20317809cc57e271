"""fp8 weight storage (``pipelines.core.fp8``) on the DisPose UNet and ControlNet.

The weights must really be stored in float8_e4m3fn (half the bytes of fp16), the forward must be
exactly the model with dequantised weights (nothing else changes), and the output must stay close
to the full-precision one.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from dispose_tiny import POINT_EMBED, UNET
from motionsuite.models.dispose.controlnet import DisPoseControlNet
from motionsuite.models.dispose.unet import MimicMotionUNet
from motionsuite.pipelines.core import fp8
from parity_utils import random_state_dict


@pytest.fixture(scope="module")
def nets():
    unet = MimicMotionUNet.from_config(UNET).eval()
    unet.load_state_dict(random_state_dict(unet, 11, gain=0.5))
    cn = DisPoseControlNet.from_unet_config(UNET, POINT_EMBED).eval()
    cn.load_state_dict(random_state_dict(cn, 21, gain=0.5))
    return unet, cn


def _inputs(batch: int = 2, frames: int = 3, h: int = 64, w: int = 64):
    g = torch.Generator().manual_seed(5)

    cand = torch.rand(frames, 18, 2, generator=g).double().numpy()
    ids, score = np.arange(18.0)[None], np.ones((1, 18))
    points = [{"candidate": cand[i], "subset": ids, "score": score} for i in range(frames)]
    return {
        "sample": torch.randn(batch, frames, 8, h // 8, w // 8, generator=g),
        "t": torch.tensor(0.7),
        "ctx": torch.randn(batch, 1, 32, generator=g),
        "ids": torch.tensor([[6.0, 127.0, 0.02]] * batch),
        "flow": torch.randn(batch, frames - 1, 2, h, w, generator=g) * 3,
        "traj": torch.randn(batch, frames - 1, 2, h, w, generator=g) * 0.1,
        "points": points,
        "emb": torch.randn(1, 18, POINT_EMBED, generator=g),
        "pose": torch.randn(batch * frames, 32, h // 8, w // 8, generator=g) * 0.1,
    }


@torch.no_grad()
def _run(unet, cn, x):
    down, mid = cn(x["sample"], x["t"], x["ctx"], x["ids"], x["flow"], x["traj"], x["points"], x["emb"])
    return unet(
        x["sample"],
        x["t"],
        x["ctx"],
        x["ids"],
        pose_latents=x["pose"],
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
        return_dict=False,
    )[0]


def _dequantised(module: torch.nn.Module) -> torch.nn.Module:
    """A plain copy whose Linear/Conv weights are the fp8 model's stored values times their scales."""
    plain = copy.deepcopy(module)
    for name, layer in module.named_modules():
        if fp8.is_fp8_layer(layer):
            target = plain.get_submodule(name)
            target.__class__ = type(layer).__mro__[1]
            target.weight = torch.nn.Parameter(layer.weight.float() * layer.weight_scale)
            del target._buffers["weight_scale"]
    del plain.fp8_compute_dtype
    return plain


def _naive_fp8(module: torch.nn.Module) -> torch.nn.Module:
    """A copy whose Linear/Conv weights went through a plain (unscaled) fp8 cast and back."""
    plain = copy.deepcopy(module)
    with torch.no_grad():
        for layer in plain.modules():
            if type(layer) in (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d):
                layer.weight.copy_(layer.weight.to(torch.float8_e4m3fn).float())
    return plain


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@torch.no_grad()
def test_fp8_storage_bytes_and_output(nets):
    unet, cn = nets
    x = _inputs()
    q_unet = fp8.store_weights_in_fp8(copy.deepcopy(unet), torch.float32)
    q_cn = fp8.store_weights_in_fp8(copy.deepcopy(cn), torch.float32)
    # every Linear/Conv weight is stored in fp8; the model still reports fp32 as its compute dtype
    layers = [m for m in q_unet.modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]
    assert layers and all(m.weight.dtype == torch.float8_e4m3fn for m in layers)
    assert fp8.compute_dtype(q_unet) == torch.float32 and fp8.compute_dtype(unet) == torch.float32
    for full, quant in ((unet, q_unet), (cn, q_cn)):
        half_bytes = fp8.weight_bytes(copy.deepcopy(full).half())
        assert fp8.weight_bytes(quant) < 0.56 * half_bytes  # norms, biases and scales stay wider
    # the forward is exactly the model with dequantised weights (nothing else changes)
    out = _run(q_unet, q_cn, x)
    assert (out - _run(_dequantised(q_unet), _dequantised(q_cn), x)).abs().max() <= 1e-5
    # close to full precision (fp32 here; bf16 weights alone give ~0.5 %), and closer than a plain,
    # unscaled fp8 cast of the same weights
    ref = _run(unet, cn, x)
    err = _rel(out, ref)
    assert 0 < err < 0.1, err
    assert err < _rel(_run(_naive_fp8(unet), _naive_fp8(cn), x), ref)


def test_deepcopy_keeps_residual_hooks(nets):
    """A copy of a UNet that already ran must add the residuals itself (its hooks follow the copy)."""
    unet, cn = nets
    x = _inputs()
    out = _run(unet, cn, x)
    twin = copy.deepcopy(unet)
    assert (_run(twin, cn, x) - out).abs().max() == 0
    with torch.no_grad():
        plain = twin(x["sample"], x["t"], x["ctx"], x["ids"], pose_latents=x["pose"], return_dict=False)[0]
    assert (plain - out).abs().max() > 1e-3


def test_fp8_layers_keep_keys_and_move(nets):
    unet, _ = nets
    q = fp8.store_weights_in_fp8(copy.deepcopy(unet))
    assert list(q.state_dict()) == list(unet.state_dict())  # scales are not saved
    q.to("cpu")  # device moves keep the fp8 storage
    assert q.conv_in.weight.dtype == torch.float8_e4m3fn
    again = fp8.store_weights_in_fp8(q)  # converting twice is a no-op for converted layers
    assert again.conv_in.weight.dtype == torch.float8_e4m3fn
