"""Omost nodes run as ComfyUI runs them (INPUT_TYPES → FUNCTION), with bad inputs; greedy bag encoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from motionsuite.nodes import omost as nodes
from motionsuite.pipelines.omost.regional import BOS, EOS, encode_greedy_bags, greedy_partition
from test_omost_llm import server  # noqa: F401 - the local OpenAI-protocol server fixture

_FIX = Path(__file__).parent / "fixtures" / "omost" / "canvas_parity.json"
CASES = json.loads(_FIX.read_text(encoding="utf-8"))["cases"]


class FakeClip:
    """ComfyUI-like CLIP: one token per word, 77-token chunks; cond = the ids, so bags can be read back."""

    def __init__(self, keys=("l", "g")):
        self.keys = keys
        self.vocab: dict[str, int] = {}

    def _id(self, word: str) -> int:
        return self.vocab.setdefault(word, 1000 + len(self.vocab))

    def tokenize(self, text: str):
        ids = [self._id(w) for w in text.split()]
        out = {}
        for k in self.keys:
            pad = 0 if k == "g" else EOS
            chunks = [ids[i:i + 75] for i in range(0, max(len(ids), 1), 75)]
            out[k] = [[(t, 1.0) for t in ([BOS] + c + [EOS] + [pad] * 75)[:77]] for c in chunks]
        return out

    def encode_from_tokens(self, tokens, return_pooled=False):
        ids = torch.tensor([[t for t, _ in tokens["l"][0]]], dtype=torch.float32)
        g = torch.tensor([[t for t, _ in tokens[self.keys[-1]][0]]], dtype=torch.float32)
        cond = torch.stack([ids, g], dim=-1)  # (1, 77, 2)
        return (cond, cond[:, 0]) if return_pooled else cond


def _run(cls, **kwargs):
    types = cls.INPUT_TYPES()
    for section in types.values():
        for name, spec in section.items():
            if len(spec) > 1 and "default" in spec[1]:
                kwargs.setdefault(name, spec[1]["default"])
    return getattr(cls(), cls.FUNCTION)(**kwargs)


def test_every_input_has_tooltip():
    for cls in nodes.NODE_CLASS_MAPPINGS.values():
        for section in cls.INPUT_TYPES().values():
            for name, spec in section.items():
                assert "tooltip" in spec[1], (cls.__name__, name)


def test_canvas_from_text_json_and_code():
    case = CASES[0]
    out = _run(nodes.OmostCanvasFromText, text=case["reply"])
    (from_code,) = out["result"]
    assert from_code == case["entries"]
    assert json.loads(out["ui"]["omost_canvas"][0]) == case["entries"]  # what the canvas editor opens
    (from_json,) = _run(nodes.OmostCanvasFromText, text=json.dumps(case["entries"]))["result"]
    assert from_json == case["entries"]
    with pytest.raises(ValueError, match="empty"):
        _run(nodes.OmostCanvasFromText, text=" ")
    with pytest.raises(ValueError, match="not allowed"):
        _run(nodes.OmostCanvasFromText, text="import os", format="code")
    with pytest.raises(ValueError, match="not valid JSON"):
        _run(nodes.OmostCanvasFromText, text="[1,", format="json")


def test_render_node():
    entries = CASES[0]["entries"]
    image, masks = _run(nodes.OmostRender, canvas=entries, width=96, height=64)
    assert image.shape == (1, 64, 96, 3) and masks.shape == (len(entries), 64, 96)
    image_b, _ = _run(nodes.OmostRender, canvas=entries, width=96, height=64, blur=True)
    assert image_b.shape == image.shape
    with pytest.raises(ValueError, match="canvas input"):
        _run(nodes.OmostRender, canvas=[{"rect": [0, 1]}], width=64, height=64)


def test_server_and_chat_nodes(server):  # noqa: F811
    (llm,) = _run(nodes.OmostLLMServer, base_url=server, timeout=10.0)
    conv, canvas = _run(nodes.OmostChat, llm=llm, text="a battle", seed=2**40 + 3)
    assert canvas == CASES[0]["entries"] and conv[-1]["role"] == "assistant"
    conv2, _ = _run(nodes.OmostChat, llm=llm, text="more dragons", conversation=conv, stream=False)
    assert len(conv2) == 4
    with pytest.raises(ValueError, match="conversation"):
        _run(nodes.OmostChat, llm=llm, text="x", conversation=[{"role": "system"}])
    with pytest.raises(ValueError, match="Omost LLM node"):
        _run(nodes.OmostChat, llm="nope", text="x")
    with pytest.raises(ValueError, match="http://"):
        _run(nodes.OmostLLMServer, base_url="127.0.0.1:1")


def test_greedy_partition_readme_example():
    assert greedy_partition([25, 35, 5, 60, 15, 25], 70) == [[0, 1, 2], [3], [4, 5]]
    assert greedy_partition([80, 3], 70) == [[0], [1]]


def test_greedy_bags_repeat_prefixes():
    clip = FakeClip()
    prefixes = ["a b c.", "d e."]
    suffixes = [" ".join(f"w{i}_{j}" for j in n) for i, n in enumerate([range(30), range(30), range(20)])]
    cond, pooled = encode_greedy_bags(clip, prefixes, suffixes)
    assert cond.shape == (1, 77 * 2, 2) and pooled.shape == (1, 2)
    prefix_ids = [clip.vocab[w] for w in ["a", "b", "c.", "d", "e."]]
    for b in range(2):
        ids = cond[0, 77 * b:77 * (b + 1), 0].long().tolist()
        assert ids[0] == BOS and ids[1:6] == prefix_ids and len(ids) == 77
        g = cond[0, 77 * b:77 * (b + 1), 1].long().tolist()
        assert g[-1] == 0  # SDXL G stream padded with its own pad token
    first = cond[0, :77, 0].long().tolist()
    assert first[6:66] == [clip.vocab[w] for w in (suffixes[0] + " " + suffixes[1]).split()]
    assert first[66] == EOS


def test_mask_conditioning_node():
    entries = CASES[0]["entries"]
    positive = [[torch.zeros(1, 77, 2), {"pooled_output": torch.zeros(1, 2)}]]
    for overlap in ("average", "overlay"):
        cond, masks = _run(nodes.OmostMaskConditioning, canvas=entries, clip=FakeClip(), overlap=overlap,
                           positive=positive)
        assert len(cond) == len(entries) + 1 and masks.shape == (len(entries), 90, 90)
        assert cond[1][1]["mask_strength"] == 0.2 and cond[2][1]["mask_strength"] == 0.8
        region_sum = masks[1:].sum(0)
        assert float(region_sum.max()) <= 1.0 + 1e-5 and bool((masks[0] == 1).all())
    with pytest.raises(ValueError, match="CLIP encoders only"):
        _run(nodes.OmostMaskConditioning, canvas=entries, clip=FakeClip(keys=("t5xxl",)))
    with pytest.raises(ValueError, match="overlap"):
        _run(nodes.OmostMaskConditioning, canvas=entries, clip=FakeClip(), overlap="max")


class _Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.attn2 = torch.nn.Identity()


class _Spatial(torch.nn.Module):
    def __init__(self, depth=1):
        super().__init__()
        self.transformer_blocks = torch.nn.ModuleList([_Block() for _ in range(depth)])


class _TinyUNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.input_blocks = torch.nn.ModuleList([torch.nn.ModuleList([torch.nn.Identity()]),
                                                 torch.nn.ModuleList([torch.nn.Identity(), _Spatial()])])
        self.middle_block = torch.nn.ModuleList([torch.nn.Identity(), _Spatial(2)])
        self.output_blocks = torch.nn.ModuleList([torch.nn.ModuleList([torch.nn.Identity(), _Spatial()])])


class FakePatcher:
    """The parts of ComfyUI's ModelPatcher the region attention uses."""

    def __init__(self, unet=None, options=None):
        self.model = type("BaseModel", (), {})()
        self.model.diffusion_model = unet if unet is not None else _TinyUNet()
        self.model_options = options or {"transformer_options": {}}

    def clone(self):
        import copy
        return FakePatcher(self.model.diffusion_model, copy.deepcopy(self.model_options))

    def set_model_attn2_replace(self, patch, block_name, number, transformer_index=None):
        to = self.model_options["transformer_options"]
        attn2 = to.setdefault("patches_replace", {}).setdefault("attn2", {})
        attn2[(block_name, number, transformer_index)] = patch


@pytest.mark.parametrize("method", ["dense_diffusion", "attention_couple"])
def test_region_attention_node(method):
    from motionsuite.pipelines.omost import attention as at

    entries = CASES[0]["entries"]
    model = FakePatcher()
    work, positive = _run(nodes.OmostRegionAttention, model=model, canvas=entries, clip=FakeClip(),
                          method=method)
    assert model.model_options == {"transformer_options": {}}  # input untouched
    patches = work.model_options["transformer_options"]["patches_replace"]["attn2"]
    assert sorted(patches) == [("input", 1, 0), ("middle", 0, 0), ("middle", 0, 1), ("output", 0, 0)]
    cond = positive[0][0]
    patch = patches[("input", 1, 0)]
    assert cond.shape[1] == sum(patch.token_counts) and cond.shape[1] % 77 == 0
    heads, c, length = 2, 8, cond.shape[1]
    q = torch.randn(4, 6 * 8, c)
    k, v = torch.randn(4, length * 2, c), torch.randn(4, length * 2, c)  # context repeated by ComfyUI
    opts = {"n_heads": heads, "original_shape": [4, 4, 12, 16], "cond_or_uncond": [1, 0]}
    out = patch(q, k, v, opts)
    masks = nodes.render_masks(entries)
    if method == "dense_diffusion":
        ref = at.dense_diffusion_attention_naive(q, k[:, :length], v[:, :length], heads, masks,
                                                 patch.token_counts, (12, 16), [1, 0])
    else:
        counts = patch.token_counts
        splits = list(zip(k[:, :length].split(counts, 1), v[:, :length].split(counts, 1)))
        ref = at.attention_couple(q, splits, heads, masks, (12, 16), [1, 0])
        ref[:2] = at._merge(torch.nn.functional.scaled_dot_product_attention(
            at._heads(q[:2], heads), at._heads(k[:2, :length], heads), at._heads(v[:2, :length], heads)))
    assert (out - ref).abs().max().item() <= 1e-5
    # ComfyUI may run the negative alone (its own 77 tokens): ordinary attention
    alone = patch(q[:2], k[:2, :77], v[:2, :77], {**opts, "cond_or_uncond": [1]})
    plain = at._merge(torch.nn.functional.scaled_dot_product_attention(
        at._heads(q[:2], heads), at._heads(k[:2, :77], heads), at._heads(v[:2, :77], heads)))
    assert (alone - plain).abs().max().item() <= 1e-6
    with pytest.raises(RuntimeError, match="context tokens"):
        patch(q, k[:, :length + 1], v[:, :length + 1], opts)


def test_region_attention_bad_inputs():
    entries = CASES[0]["entries"]
    with pytest.raises(ValueError, match="UNet"):
        _run(nodes.OmostRegionAttention, model=FakePatcher(unet=torch.nn.Linear(2, 2)), canvas=entries,
             clip=FakeClip())
    patched = FakePatcher()
    patched.set_model_attn2_replace(object(), "input", 1, 0)
    with pytest.raises(ValueError, match="already replaced"):
        _run(nodes.OmostRegionAttention, model=patched, canvas=entries, clip=FakeClip())
    with pytest.raises(ValueError, match="ComfyUI MODEL"):
        _run(nodes.OmostRegionAttention, model="x", canvas=entries, clip=FakeClip())
    with pytest.raises(ValueError, match="method"):
        _run(nodes.OmostRegionAttention, model=FakePatcher(), canvas=entries, clip=FakeClip(), method="x")


def test_greedy_bags_encode_node():
    entries = CASES[0]["entries"]
    clip = FakeClip()
    (positive,) = _run(nodes.OmostGreedyBagsEncode, canvas=entries, clip=clip)
    cond, extra = positive[0]
    parts = [encode_greedy_bags(clip, e["prefixes"], e["suffixes"])[0] for e in entries]
    assert torch.equal(cond, torch.cat(parts, dim=1))
    assert torch.equal(extra["pooled_output"], encode_greedy_bags(clip, entries[0]["prefixes"],
                                                                  entries[0]["suffixes"])[1])
    with pytest.raises(ValueError, match="canvas input"):
        _run(nodes.OmostGreedyBagsEncode, canvas=[], clip=clip)
