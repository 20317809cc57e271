"""Attention kernel choice for STDiT3: SDPA here, flash-attn/xformers only on CUDA fp16/bf16 when present.

The accelerators are not installed on the test machine, so fakes with the libraries' call signatures
(``flash_attn_func``/``flash_attn_varlen_func`` with cumulative sequence lengths, xformers
``memory_efficient_attention`` with ``BlockDiagonalMask.from_seqlens``) are injected; they compute
plain softmax attention per sequence, which checks our packing of masked keys and the layouts.
"""

from __future__ import annotations

import types

import pytest
import torch
from motionsuite.models.opensora import STDiT3, STDiT3Config
from motionsuite.models.opensora import attention as attn
from opensora_tiny import DIT
from parity_utils import random_state_dict


def _reference(q, k, v):  # (L, H, D) each → (Lq, H, D)
    w = torch.einsum("qhd,khd->hqk", q, k) / q.shape[-1] ** 0.5
    return torch.einsum("hqk,khd->qhd", w.softmax(-1), v)


def _fake_flash():
    def flash_attn_func(q, k, v):  # (B, L, H, D)
        return torch.stack([_reference(a, b, c) for a, b, c in zip(q, k, v)])

    def flash_attn_varlen_func(q, k, v, cu_q, cu_k, max_q, max_k):
        assert cu_q.dtype == cu_k.dtype == torch.int32 and max_k == int((cu_k[1:] - cu_k[:-1]).max())
        parts = [
            _reference(q[cu_q[i] : cu_q[i + 1]], k[cu_k[i] : cu_k[i + 1]], v[cu_k[i] : cu_k[i + 1]])
            for i in range(len(cu_q) - 1)
        ]
        return torch.cat(parts)

    return types.SimpleNamespace(
        flash_attn_func=flash_attn_func, flash_attn_varlen_func=flash_attn_varlen_func
    )


def _fake_xformers():
    class BlockDiagonalMask:
        @classmethod
        def from_seqlens(cls, q_seqlen, kv_seqlen):
            mask = cls()
            mask.q, mask.kv = list(q_seqlen), list(kv_seqlen)
            return mask

    def memory_efficient_attention(q, k, v, attn_bias=None):  # (B, L, H, D)
        if attn_bias is None:
            return torch.stack([_reference(a, b, c) for a, b, c in zip(q, k, v)])
        qs, ks, vs = q[0].split(attn_bias.q), k[0].split(attn_bias.kv), v[0].split(attn_bias.kv)
        return torch.cat([_reference(a, b, c) for a, b, c in zip(qs, ks, vs)])[None]

    return types.SimpleNamespace(
        memory_efficient_attention=memory_efficient_attention,
        fmha=types.SimpleNamespace(BlockDiagonalMask=BlockDiagonalMask),
    )


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.delenv("MOTIONSUITE_ATTENTION", raising=False)
    monkeypatch.setattr(attn, "modules", {"flash_attn": _fake_flash(), "xformers": _fake_xformers()})


def test_sdpa_is_chosen_here(monkeypatch):
    monkeypatch.delenv("MOTIONSUITE_ATTENTION", raising=False)
    q = torch.randn(1, 2, 4, 8)
    assert attn.choose_backend(q.device.type, q.dtype, 8) == "sdpa"  # CPU fp32
    assert attn.choose_backend("cpu", torch.bfloat16, 72) == "sdpa"
    monkeypatch.setattr(attn, "modules", {})  # real import attempts
    installed = [name for name in ("flash_attn", "xformers") if attn.accelerator(name) is not None]
    assert attn.choose_backend("cuda", torch.float16, 72) == (installed or ["sdpa"])[0]


def test_accelerators_are_picked_only_for_cuda_half(fakes, monkeypatch):
    assert attn.choose_backend("cuda", torch.float16, 72) == "flash_attn"
    assert attn.choose_backend("cuda", torch.bfloat16, 72) == "flash_attn"
    assert attn.choose_backend("cuda", torch.float32, 72) == "sdpa"
    assert attn.choose_backend("cpu", torch.float16, 72) == "sdpa"
    assert attn.choose_backend("cuda", torch.float16, 512) == "xformers"  # flash-attn: head dim ≤ 256
    monkeypatch.setitem(attn.modules, "flash_attn", None)
    assert attn.choose_backend("cuda", torch.float16, 72) == "xformers"
    monkeypatch.setenv("MOTIONSUITE_ATTENTION", "sdpa")
    assert attn.choose_backend("cuda", torch.float16, 72) == "sdpa"
    monkeypatch.setenv("MOTIONSUITE_ATTENTION", "nope")
    with pytest.raises(ValueError, match="MOTIONSUITE_ATTENTION"):
        attn.choose_backend("cuda", torch.float16, 72)


@pytest.mark.parametrize("backend", ["flash_attn", "xformers"])
def test_accelerator_layouts_and_masked_packing_match_sdpa(fakes, backend):
    q, k, v = torch.randn(3, 2, 5, 8), torch.randn(3, 2, 7, 8), torch.randn(3, 2, 7, 8)
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[0, :7], mask[1, :2], mask[2, :4] = True, True, True
    for kv_mask in (None, mask):
        ref = attn.attention(q, k, v, kv_mask, backend="sdpa")
        torch.testing.assert_close(attn.attention(q, k, v, kv_mask, backend=backend), ref)


def test_stdit3_runs_through_the_chosen_kernel(fakes, monkeypatch):
    model = STDiT3(STDiT3Config.from_dict(DIT))
    model.load_state_dict(random_state_dict(model, 3, gain=0.5))
    x, t, y = torch.randn(2, 4, 3, 4, 4), torch.tensor([500.0, 200.0]), torch.randn(2, 300, 32)
    mask = torch.zeros(2, 300, dtype=torch.long)
    mask[0, :5], mask[1, :9] = 1, 1
    with torch.no_grad():
        ref = model(x, t, y, mask)
        calls = []
        real = attn.attention

        def forced(q, k, v, kv_mask=None, backend=None):
            calls.append(kv_mask is not None)
            return real(q, k, v, kv_mask, backend="flash_attn")

        monkeypatch.setattr("motionsuite.models.opensora.stdit3.attention", forced)
        out = model(x, t, y, mask)
    assert calls.count(True) == calls.count(False) == 2 * DIT["depth"]  # self + cross, per block
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
