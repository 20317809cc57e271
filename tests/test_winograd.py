"""Winograd F(4x4, 3x3) (``models/common/winograd.py``) and ``FastConv2d``: the same convolution as
``F.conv2d`` within float32 rounding, used by the residual blocks and MRFA's heads on the CPU only
where it applies, and the cached transforms never follow a model off the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from motionsuite.models.common import winograd
from motionsuite.models.fomm import fast_kernels as fast
from motionsuite.models.fomm.primitives import ResBlock2d
from parity_utils import randomize_for_eval
from torch import nn


def test_matrices_compute_a_correlation_exactly():
    bt, g, at = winograd.matrices()
    gen = torch.Generator().manual_seed(0)
    d = torch.randn(100, 6, dtype=torch.float64, generator=gen)
    k = torch.randn(100, 3, dtype=torch.float64, generator=gen)
    y = ((k @ g.T) * (d @ bt.T)) @ at.T  # A^T [(G g) . (B^T d)] for 100 pairs
    ref = torch.stack([(d[:, i : i + 3] * k).sum(1) for i in range(4)], 1)
    assert (y - ref).abs().max().item() < 1e-12


@pytest.mark.parametrize(
    "shape",
    [(1, 128, 128, 16, 16), (2, 130, 129, 18, 23), (3, 256, 128, 21, 16), (40, 128, 128, 4, 4),
     (1, 96, 100, 64, 48), (2, 96, 96, 70, 37), (1, 128, 96, 33, 128)],  # strips: exact and padded edges
)
@pytest.mark.parametrize("bias", [True, False])
def test_conv3x3_matches_direct_convolution(shape, bias):
    n, c, o, h, w = shape
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, c, h, w, generator=gen)
    weight = torch.randn(o, c, 3, 3, generator=gen) / (3 * c**0.5)  # unit-scale outputs
    b = torch.randn(o, generator=gen) if bias else None
    out = winograd.conv3x3(x, winograd.transform_weight(weight), b)
    ref = F.conv2d(x.double(), weight.double(), None if b is None else b.double(), padding=1)
    assert out.shape == ref.shape and out.is_contiguous() and out.dtype == torch.float32
    assert (out - ref).abs().max().item() < 1e-4
    assert (out - ref).abs().mean().item() < 1e-5


def test_applies_only_where_it_pays():
    assert winograd.applies(torch.empty(1, 256, 64, 64))
    assert winograd.applies(torch.empty(32, 256, 32, 32))  # batches run a few maps at a time
    assert winograd.applies(torch.empty(1, 256, 256, 256))  # large maps run in strips
    assert not winograd.applies(torch.empty(1, 256, 8, 8))  # measured break-even below 1024 channels
    assert winograd.applies(torch.empty(1, 1024, 8, 8), channels=1024)
    assert winograd.applies(torch.empty(16, 256, 4, 4))  # a single tile per map
    assert not winograd.applies(torch.empty(1, 256, 64, 64, dtype=torch.float64))
    assert winograd.eligible_weight(torch.empty(128, 256, 3, 3))
    assert winograd.eligible_weight(torch.empty(96, 128, 3, 3))
    assert not winograd.eligible_weight(torch.empty(64, 256, 3, 3))
    assert not winograd.eligible_weight(torch.empty(256, 256, 1, 1))


def _resblock(norm: type[nn.Module]) -> ResBlock2d:
    return randomize_for_eval(ResBlock2d(128, norm=norm), 2, spread=0.2)


@pytest.mark.parametrize("norm", [nn.BatchNorm2d, nn.InstanceNorm2d])
def test_resblock_takes_winograd_and_matches_plain_layers(norm, monkeypatch):
    m = _resblock(norm)
    x = torch.rand(1, 128, 32, 32)
    calls = []
    real = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *a: calls.append(1) or real(*a))
    with torch.no_grad():
        fast_out = m(x)
        with fast.reference_kernels():
            plain = m(x)
    assert len(calls) == 2  # both convs of the block
    assert (fast_out - plain).abs().max().item() < 1e-4


def test_transforms_do_not_follow_the_model_off_the_cpu():
    m = _resblock(nn.BatchNorm2d)
    with torch.no_grad():
        m(torch.rand(1, 128, 16, 16))
    assert m._folded is not None and m._folded[1][2] is not None
    m.to(torch.float64)  # stays on the CPU: the cache follows
    assert m._folded is not None and m._folded[1][2].dtype == torch.float64
    m.to("meta")  # any non-CPU device: the 4x-sized transforms are dropped, rebuilt on next use
    assert m._folded is None



def test_face_parser_blocks_fold_and_match_plain_layers():
    from motionsuite.models.partswap.face_parser import BasicBlock, ConvBNReLU, max_pool_3x3_s2

    gen = torch.Generator().manual_seed(4)
    x = torch.rand(1, 128, 24, 20, generator=gen)
    blocks = (BasicBlock(128, 128), BasicBlock(128, 256, stride=2), ConvBNReLU(128, 128))
    for seed, block in enumerate(blocks):
        randomize_for_eval(block, 10 + seed, spread=0.2)
        with torch.no_grad():
            out = block(x)
            with fast.reference_kernels():
                plain = block(x)
        assert (out - plain).abs().max().item() < 1e-4
    y = torch.rand(2, 3, 17, 22, generator=gen)
    assert torch.equal(max_pool_3x3_s2(y), F.max_pool2d(y, 3, 2, 1))


@pytest.mark.parametrize(
    "cin,cout,k,size",
    [(128, 96, 3, 64), (96, 160, 3, 40), (64, 192, 1, 128), (40, 24, 1, 130), (128, 2, 3, 40),
     (64, 3, 7, 33), (2, 128, 7, 40), (64, 64, 3, 32)],
)
def test_fast_conv_matches_conv2d_on_every_path(cin, cout, k, size, monkeypatch):
    """Winograd (wide 3x3), one matmul per image (1x1, large maps), tap by tap (few outputs) and the
    plain fallback all give conv2d's result; the weights are an unchanged nn.Conv2d's."""
    gen = torch.Generator().manual_seed(5)
    conv = fast.FastConv2d(cin, cout, k, padding=k // 2).eval()
    plain = nn.Conv2d(cin, cout, k, padding=k // 2)
    plain.load_state_dict(conv.state_dict())
    assert set(conv.state_dict()) == {"weight", "bias"}
    x = torch.rand(2, cin, size, size + 3, generator=gen)
    wino = []
    real = winograd.conv3x3
    monkeypatch.setattr(winograd, "conv3x3", lambda *a: wino.append(1) or real(*a))
    matmuls = []
    real_pointwise = fast.pointwise
    monkeypatch.setattr(fast, "pointwise", lambda *a: matmuls.append(1) or real_pointwise(*a))
    monkeypatch.setattr(fast, "MATMUL_PIXELS", 128 * 128)
    with torch.no_grad():
        out, ref = conv(x), plain(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() < 1e-4
    assert bool(wino) == (k == 3 and min(cin, cout) >= 96)
    assert bool(matmuls) == (k == 1 and size * (size + 3) >= 128 * 128)
    with fast.reference_kernels(), torch.no_grad():
        assert torch.equal(conv(x), ref)  # the upstream-style path is the plain conv


def test_fast_conv_transforms_only_where_used_and_not_off_the_cpu():
    conv = fast.FastConv2d(128, 128, 3, padding=1).eval()
    with torch.no_grad():
        conv(torch.rand(1, 128, 8, 8))  # 8x8 at 128 channels: oneDNN, nothing transformed
        assert conv._folded is None
        conv(torch.rand(1, 128, 32, 32))
    assert conv._folded is not None and conv._folded[1][0].shape == (36, 128, 128)
    conv.to("meta")
    assert conv._folded is None
