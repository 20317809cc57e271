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
    (from_code,) = _run(nodes.OmostCanvasFromText, text=case["reply"])
    assert from_code == case["entries"]
    (from_json,) = _run(nodes.OmostCanvasFromText, text=json.dumps(case["entries"]))
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
