"""Omost multi-diffusion: the wrapper equals its definition, leaves the negative alone, composes."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from motionsuite.nodes import omost as nodes
from motionsuite.pipelines.omost.multidiffusion import MultiDiffusionWrapper, blend_weights
from test_omost_nodes import CASES, FakeClip, _run


class WrapperPatcher:
    """Stand-in ModelPatcher: clone + set_model_unet_function_wrapper, as ComfyUI's."""

    def __init__(self, options=None):
        self.model_options = options or {"transformer_options": {}}

    def clone(self):
        return WrapperPatcher(copy.deepcopy(self.model_options))

    def set_model_unet_function_wrapper(self, fn):
        self.model_options["model_function_wrapper"] = fn


def fake_apply_model(x, t, c_crossattn, transformer_options=None, y=None):
    """A 'model' whose prediction depends on the pixel, the timestep, the context and the pooled vector."""
    assert transformer_options["cond_or_uncond"] and x.shape[0] == y.shape[0] == t.shape[0]
    scale = c_crossattn.mean(dim=(1, 2))[:, None, None, None]
    return x * scale + t[:, None, None, None] + y[:, :1, None, None]


def _call(wrapper, x, t, ctx, y, cou):
    c = {"c_crossattn": ctx, "y": y, "transformer_options": {"cond_or_uncond": cou}}
    return wrapper(fake_apply_model, {"input": x, "timestep": t, "c": c, "cond_or_uncond": cou})


@pytest.mark.parametrize("order", [[1, 0], [0, 1]])
def test_wrapper_equals_definition(order):
    entries = CASES[0]["entries"]
    counts = [77, 154, 77, 77, 77][: len(entries)]
    weights = blend_weights(entries, 0.3, 0.9, "average")
    x, t, y = torch.randn(4, 4, 12, 16), torch.rand(4), torch.randn(4, 8)
    ctx = torch.randn(4, sum(counts), 6)
    out = _call(MultiDiffusionWrapper(weights, counts), x, t, ctx, y, order)
    neg = slice(0, 2) if order[0] == 1 else slice(2, 4)
    pos = slice(2, 4) if order[0] == 1 else slice(0, 2)
    plain = fake_apply_model(x, t, ctx, {"cond_or_uncond": order}, y)
    assert torch.allclose(out[neg], plain[neg])  # negative rows: one ordinary pass
    w = F.interpolate(weights[None], size=(12, 16), mode="nearest-exact")[0]
    parts = ctx[pos].split(counts, dim=1)
    ref = sum(w[i] * fake_apply_model(x[pos], t[pos], parts[i], {"cond_or_uncond": [0]}, y[pos])
              for i in range(len(counts))) / w.sum(0)
    assert (out[pos] - ref).abs().max().item() < 1e-5
    # the first region's pixels see that region's prediction; outside all regions only the global one
    assert not torch.allclose(out[pos], plain[pos])


def test_global_only_and_repeated_context():
    entries = CASES[0]["entries"][:1]
    x, t, y = torch.randn(2, 4, 8, 8), torch.rand(2), torch.randn(2, 8)
    ctx = torch.randn(2, 77, 6)
    wrapper = MultiDiffusionWrapper(blend_weights(entries, 0.2, 0.8, "overlay"), [77])
    plain = fake_apply_model(x, t, ctx, {"cond_or_uncond": [1, 0]}, y)
    assert torch.allclose(_call(wrapper, x, t, ctx, y, [1, 0]), plain, atol=1e-6)
    # ComfyUI repeats a context to a common length: the first copy is used
    assert torch.allclose(_call(wrapper, x, t, ctx.repeat(1, 2, 1), y, [1, 0]), plain, atol=1e-6)
    with pytest.raises(RuntimeError, match="context tokens"):
        _call(wrapper, x, t, ctx[:, :70], y, [1, 0])
    assert torch.allclose(_call(wrapper, x[:1], t[:1], ctx[:1], y[:1], [1]), plain[:1])  # negative only


def test_node_composes_with_previous_wrapper_and_validates():
    entries = CASES[0]["entries"]
    model = WrapperPatcher()
    seen = []

    def previous(apply_model, args):
        seen.append(list(args["cond_or_uncond"]))
        return 2 * apply_model(args["input"], args["timestep"], **args["c"])

    model.set_model_unet_function_wrapper(previous)
    work, positive = _run(nodes.OmostMultiDiffusion, model=model, canvas=entries, clip=FakeClip())
    assert model.model_options["model_function_wrapper"] is previous  # input untouched
    wrapper = work.model_options["model_function_wrapper"]
    cond = positive[0][0]
    assert cond.shape[1] == sum(wrapper.token_counts)
    x, t, y = torch.randn(2, 4, 9, 9), torch.rand(2), torch.randn(2, 8)
    ctx = torch.cat([torch.randn(1, cond.shape[1], 2), cond], dim=0)
    out = _call(wrapper, x, t, ctx, y, [1, 0])
    assert seen[0] == [1] and all(s == [0] for s in seen[1:]) and len(seen) == 1 + len(entries)
    neg = fake_apply_model(x[:1], t[:1], ctx[:1], {"cond_or_uncond": [1]}, y[:1])
    assert torch.allclose(out[:1], 2 * neg)
    with pytest.raises(ValueError, match="global_strength"):
        _run(nodes.OmostMultiDiffusion, model=model, canvas=entries, clip=FakeClip(), global_strength=0.0)
    with pytest.raises(ValueError, match="ComfyUI MODEL"):
        _run(nodes.OmostMultiDiffusion, model="x", canvas=entries, clip=FakeClip())
    with pytest.raises(ValueError, match="overlap"):
        _run(nodes.OmostMultiDiffusion, model=model, canvas=entries, clip=FakeClip(), overlap="x")
    with pytest.raises(ValueError, match="canvas input"):
        _run(nodes.OmostMultiDiffusion, model=model, canvas=[], clip=FakeClip())
