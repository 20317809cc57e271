"""The inference rewrites of the FOMM-family blocks (BatchNorm folding, sub-pixel up-sampling) must
compute what the plain layer sequence computes, and their weight cache must follow the parameters."""

from __future__ import annotations

import pytest
import torch
from motionsuite.models.fomm import fast_kernels as fast
from motionsuite.models.fomm.primitives import DownBlock2d, Hourglass, ResBlock2d, SameBlock2d, UpBlock2d
from parity_utils import randomize_for_eval
from torch import nn


def _randomize(module: nn.Module, seed: int) -> nn.Module:
    """Non-trivial BatchNorm statistics and affine parameters, so folding is really exercised."""
    return randomize_for_eval(module, seed)


def _both(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        fast_out = module(x)
        with fast.reference_kernels():
            plain = module(x)
    return fast_out, plain


@pytest.mark.parametrize("size", [(9, 7), (32, 33)])  # both sub-pixel code paths (small / large maps)
@pytest.mark.parametrize("norm", [nn.BatchNorm2d, nn.InstanceNorm2d])
@pytest.mark.parametrize("block", [SameBlock2d, DownBlock2d, UpBlock2d])
def test_blocks_match_plain_layers(block, norm, size):
    m = _randomize(block(6, 5, norm=norm), 0)
    x = torch.rand(2, 6, *size)
    fast_out, plain = _both(m, x)
    assert fast_out.shape == plain.shape
    assert (fast_out - plain).abs().max().item() <= 1e-5


@pytest.mark.parametrize("norm", [nn.BatchNorm2d, nn.InstanceNorm2d])
def test_resblock_and_hourglass_match(norm):
    x = torch.rand(1, 4, 16, 16)
    for m in (_randomize(ResBlock2d(4, norm=norm), 1), _randomize(Hourglass(4, 4, 3, 16, norm=norm), 2)):
        fast_out, plain = _both(m, x)
        assert (fast_out - plain).abs().max().item() <= 1e-5


def test_training_and_autograd_take_the_plain_path():
    m = _randomize(UpBlock2d(3, 2), 3)
    x = torch.rand(1, 3, 4, 4, requires_grad=True)
    m(x).sum().backward()  # autograd on: plain layers, gradients flow
    assert x.grad is not None and m._folded is None


def test_cache_follows_parameters():
    m = _randomize(UpBlock2d(3, 2), 4)
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        first = m(x)
        m.load_state_dict(_randomize(UpBlock2d(3, 2), 5).state_dict())  # new weights: cache rebuilt
        second, plain = _both(m, x)
        assert not torch.allclose(first, second)
        assert (second - plain).abs().max().item() <= 1e-5
        m.to(torch.float64)  # re-cast: the cached kernels follow
        assert all(t.dtype == torch.float64 for t in m._folded[1])
        out64 = m(x.double())
    assert out64.dtype == torch.float64
    assert (out64.float() - plain).abs().max().item() <= 1e-5


def test_inference_mode_models_as_comfyui_builds_them():
    """ComfyUI runs every node under ``torch.inference_mode``, so the loader's parameters are
    inference tensors (no version counter); the cache must still work and still follow reloads."""
    x = torch.rand(1, 3, 5, 5)
    with torch.inference_mode():
        m = _randomize(UpBlock2d(3, 2), 6)
        assert m.conv.weight.is_inference()
        first = m(x)
        assert torch.equal(first, m(x))  # second call from the cache
        m.load_state_dict(_randomize(UpBlock2d(3, 2), 7).state_dict())
        second = m(x)
        with fast.reference_kernels():
            plain = m(x)
    assert not torch.allclose(first, second)
    assert (second - plain).abs().max().item() <= 1e-5


@pytest.mark.parametrize(("channels", "scale", "size"), [(3, 0.25, 64), (1, 0.125, 77), (3, 0.5, 31)])
def test_antialias_downscale_strided_separable_matches_plain(channels, scale, size):
    from motionsuite.models.fomm.primitives import AntiAliasInterpolation2d

    m = AntiAliasInterpolation2d(channels, scale).eval()
    x = torch.rand(2, channels, size, size)
    fast_out, plain = _both(m, x)
    assert fast_out.shape == plain.shape
    assert (fast_out - plain).abs().max().item() <= 1e-5
    with torch.no_grad():  # a kernel that is not rank 1 takes the strided 2-D conv, same result
        m.weight.add_(torch.rand(m.weight.shape) * 0.01)
    fast_out, plain = _both(m, x)
    assert (fast_out - plain).abs().max().item() <= 1e-5
