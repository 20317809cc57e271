"""DisCo's allocation-lean block forwards (``models/disco/lean_blocks.py``): swapped onto the stock
diffusers blocks of every network, same keys, and the same values as diffusers' own forwards."""

from __future__ import annotations

import pytest
import torch
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from disco_tiny import tiny_model
from motionsuite.models.disco import lean_blocks

lean_types = (
    lean_blocks.LeanTransformerBlock,
    lean_blocks.LeanResnetBlock,
    lean_blocks.LeanTransformer2D,
    lean_blocks.LeanConv1x1,
)


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=3)


def _unet_inputs(model, batch: int = 3):
    gen = torch.Generator().manual_seed(0)
    cfg = model.unet.config
    size = cfg.sample_size
    x = torch.randn(batch, cfg.in_channels, size, size, generator=gen)
    context = torch.randn(batch, 5, cfg.cross_attention_dim, generator=gen)
    return x, torch.tensor(500), context


def _stock(net: torch.nn.Module) -> dict:
    """Swap ``net``'s lean blocks back to diffusers' classes; returns what to restore."""
    swapped = {}
    for m in net.modules():
        if isinstance(m, lean_types):
            swapped[m] = type(m)
            m.__class__ = type(m).__mro__[1]  # the diffusers class it was swapped from
    return swapped


def test_every_sd_block_is_lean_and_keys_are_unchanged(model):
    for net in (model.unet, model.pose_controlnet, model.background_controlnet, model.vae):
        blocks = [m for m in net.modules()
                  if isinstance(m, (BasicTransformerBlock, ResnetBlock2D, Transformer2DModel))]
        assert blocks and all(isinstance(m, lean_types) for m in blocks)
        pointwise = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
        assert pointwise and all(isinstance(m, lean_blocks.LeanConv1x1) for m in pointwise)
    assert any(isinstance(m, lean_blocks.LeanTransformer2D) for m in model.unet.modules())
    keys = set(model.unet.state_dict())
    restore = _stock(model.unet)
    try:
        assert set(model.unet.state_dict()) == keys
    finally:
        for m, cls in restore.items():
            m.__class__ = cls


def test_lean_unet_equals_stock_forward(model, monkeypatch):
    monkeypatch.setattr(lean_blocks, "FF_ROWS", 7)  # several feed-forward chunks, a ragged last one
    calls = []
    real = lean_blocks.feed_forward_residual
    monkeypatch.setattr(lean_blocks, "feed_forward_residual", lambda *a: calls.append(1) or real(*a))
    x, t, context = _unet_inputs(model)
    with torch.no_grad():
        lean = model.unet(x, t, context).sample
        restore = _stock(model.unet)
        try:
            stock = model.unet(x, t, context).sample
        finally:
            for m, cls in restore.items():
                m.__class__ = cls
    assert calls, "the lean feed-forward did not run"
    assert lean.abs().mean() > 0.01
    assert (lean - stock).abs().max().item() <= 1e-5


def test_autograd_takes_the_stock_forward(model, monkeypatch):
    """With autograd on, every lean block runs diffusers' own forward (counted on the base classes)."""
    def fail(*a):
        raise AssertionError("lean path used with autograd enabled")

    monkeypatch.setattr(lean_blocks, "feed_forward_residual", fail)
    monkeypatch.setattr(lean_blocks, "transformer_block_forward", fail)
    stock_calls = {"resnet": 0, "block": 0, "transformer": 0, "conv1x1": 0}
    conv_forward = torch.nn.Conv2d.forward

    def counting_conv(self, x):
        stock_calls["conv1x1"] += isinstance(self, lean_blocks.LeanConv1x1)
        return conv_forward(self, x)

    monkeypatch.setattr(torch.nn.Conv2d, "forward", counting_conv)

    def counting(name, real):
        def wrapper(*a, **k):
            stock_calls[name] += 1
            return real(*a, **k)
        return wrapper

    monkeypatch.setattr(ResnetBlock2D, "forward", counting("resnet", ResnetBlock2D.forward))
    monkeypatch.setattr(BasicTransformerBlock, "forward", counting("block", BasicTransformerBlock.forward))
    monkeypatch.setattr(Transformer2DModel, "_operate_on_continuous_inputs",
                        counting("transformer", Transformer2DModel._operate_on_continuous_inputs))
    x, t, context = _unet_inputs(model, batch=1)
    with torch.enable_grad():
        x.requires_grad_(True)
        out = model.unet(x, t, context).sample
        out.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    modules = list(model.unet.modules())
    assert stock_calls["resnet"] == sum(isinstance(m, lean_blocks.LeanResnetBlock) for m in modules)
    assert stock_calls["block"] == sum(isinstance(m, lean_blocks.LeanTransformerBlock) for m in modules)
    assert stock_calls["transformer"] == sum(isinstance(m, lean_blocks.LeanTransformer2D) for m in modules)
    # every 1x1 conv runs once per forward (the transformers' projections included, under autograd)
    assert stock_calls["conv1x1"] == sum(isinstance(m, lean_blocks.LeanConv1x1) for m in modules)
    assert min(stock_calls.values()) > 0


def test_vae_decode_equals_stock(model):
    z = torch.randn(1, model.vae.config.latent_channels, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        lean = model.vae.decode(z).sample
        restore = _stock(model.vae)
        try:
            stock = model.vae.decode(z).sample
        finally:
            for m, cls in restore.items():
                m.__class__ = cls
    assert (lean - stock).abs().max().item() <= 1e-5


@pytest.mark.parametrize("bias", [True, False])
def test_lean_conv1x1_equals_conv_and_falls_back_on_other_layouts(bias, monkeypatch):
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(6, 5, 1, bias=bias).eval()
    lean = torch.nn.Conv2d(6, 5, 1, bias=bias).eval()
    lean.load_state_dict(conv.state_dict())
    assert lean_blocks.use_lean_blocks(lean) == 1 and isinstance(lean, lean_blocks.LeanConv1x1)
    name = "baddbmm" if bias else "bmm"
    calls = []
    real = getattr(torch, name)
    monkeypatch.setattr(torch, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.randn(3, 6, 7, 9)
    with torch.no_grad():
        expected = conv(x)
        assert torch.allclose(lean(x), expected, atol=1e-6)
        assert len(calls) == 1, "a contiguous map takes one batched matmul"
        assert torch.allclose(lean(x.contiguous(memory_format=torch.channels_last)), expected, atol=1e-6)
        assert len(calls) == 1, "a channels-last map goes to the stock convolution"


def test_feed_forward_chunks_follow_the_intermediate_width(model, monkeypatch):
    """Chunks hold about FF_CHUNK_ELEMENTS of GEGLU intermediate: fewer tokens for wider blocks."""
    block = next(m for m in model.unet.modules() if isinstance(m, lean_blocks.LeanTransformerBlock))
    inner = block.ff.net[0].proj.out_features
    monkeypatch.setattr(lean_blocks, "FF_CHUNK_ELEMENTS", 3 * inner)  # 3 tokens per chunk
    sizes = []
    real = lean_blocks._feed_forward
    monkeypatch.setattr(lean_blocks, "_feed_forward", lambda ff, h: sizes.append(h.shape[0]) or real(ff, h))
    x = torch.randn(2, 5, block.norm3.normalized_shape[0])
    with torch.no_grad():
        lean = lean_blocks.feed_forward_residual(block.norm3, block.ff, x)
        stock = block.ff(block.norm3(x)) + x
    assert sizes == [3, 3, 3, 1]
    assert torch.allclose(lean, stock, atol=1e-6)
