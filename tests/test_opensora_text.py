"""ComfyUI T5 CLIP objects as Open-Sora text input, against our transformers text encoder.

``FakeComfyT5`` mimics ``comfy.sd.CLIP`` around a T5-only encoder exactly as ComfyUI a125cd84 does it
(``comfy/sd.py`` CLIP.tokenize / encode_from_tokens, ``comfy/sd1_clip.py`` SDTokenizer and
ClipTokenWeightEncoder/SDClipModel.process_tokens, ``comfy/text_encoders/{sd3_clip,pixart_t5,genmo}.py``):
the tokenizer drops the tokenizer's EOS, appends ``end`` (1) and pads with 0 up to the type's
``min_length`` (sd3 77, pixart 1, mochi 256); the model runs with an attention mask only for mochi/ltxv
(1 up to and including the first EOS); SD3's loader also tokenizes for CLIP-L/G and, when those
encoders are loaded, prepends their 77 rows. The model inside is the same tiny transformers T5 our
text encoder loads, so both paths must give the same features for the real tokens and the same mask.
"""

from __future__ import annotations

import pytest
import torch
from motionsuite.models.opensora import STDiT3, STDiT3Config
from motionsuite.nodes import opensora as nodes
from motionsuite.nodes import opensora_text
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError
from motionsuite.pipelines.opensora import text
from opensora_tiny import DIT, write_t5
from parity_utils import random_state_dict

MIN_LENGTH = {"sd3": 77, "pixart": 1, "mochi": 256}


class FakeComfyT5:
    """``comfy.sd.CLIP`` for a T5-XXL file, with a tiny transformers T5 inside (see module docstring)."""

    def __init__(self, folder, kind: str = "pixart", with_clip_lg: bool = False):
        from transformers import AutoTokenizer, T5EncoderModel

        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self.model = T5EncoderModel.from_pretrained(str(folder)).eval()
        self.kind, self.with_clip_lg = kind, with_clip_lg
        self.calls: list[dict] = []

    def tokenize(self, text_, return_word_ids=False, **kwargs):
        self.calls.append(kwargs)
        ids = self.tokenizer(text_)["input_ids"][:-1] + [1]  # SDTokenizer: strip EOS, append end token
        ids += [0] * (MIN_LENGTH[self.kind] - len(ids))
        out = {"t5xxl": [[(i, 1.0) for i in ids]]}
        if self.kind == "sd3":
            out["l"] = out["g"] = [[(49406, 1.0), (49407, 1.0)]]
        return out

    @torch.no_grad()
    def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False):
        sections = []
        for chunk in tokens["t5xxl"]:
            ids = [t for t, _ in chunk]
            first_eos = ids.index(1) if 1 in ids else len(ids) - 1
            mask = torch.tensor([[1] * (first_eos + 1) + [0] * (len(ids) - first_eos - 1)])
            masked = self.kind == "mochi"
            out = self.model(input_ids=torch.tensor([ids]), attention_mask=mask if masked else None)
            sections.append(out.last_hidden_state.float())
        cond = torch.cat(sections, dim=-2)
        if self.kind == "sd3" and self.with_clip_lg and (tokens.get("l") or tokens.get("g")):
            cond = torch.cat([torch.zeros(1, 77, cond.shape[-1]), cond], dim=-2)
        pooled = torch.zeros(1, 2048)
        if return_dict:
            return {"cond": cond, "pooled_output": pooled}
        return (cond, pooled) if return_pooled else cond


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    """The tiny T5 folder with a real T5 post-processor (appends ``</s>``, as DeepFloyd's tokenizer does)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("text_encoders")
    folder = write_t5(root / "t5-eos")
    tok = PreTrainedTokenizerFast.from_pretrained(str(folder))
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    tok.save_pretrained(str(folder))
    weights.add_search_dir(nodes.T5_FOLDER, root)
    return folder


def run(cls, **kwargs):
    spec = cls.INPUT_TYPES()
    for name, (_, opts) in spec["required"].items():
        assert opts.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
    assert set(kwargs) <= set(spec["required"])
    return getattr(cls(), cls.FUNCTION)(**kwargs)


PROMPT = dict(prompt="a cat runs on the beach", negative_prompt="a dog", motion_score=4.0)


@pytest.mark.parametrize(
    "kind, with_clip_lg", [("pixart", False), ("sd3", False), ("sd3", True), ("mochi", False)]
)
def test_comfy_clip_gives_the_text_encoder_conditioning(t5_dir, kind, with_clip_lg):
    clip = FakeComfyT5(t5_dir, kind, with_clip_lg)
    pos, neg = run(opensora_text.OpenSoraTextEncodeCLIP, clip=clip, **PROMPT)
    ref_pos, ref_neg = run(nodes.OpenSoraTextEncoder, t5="t5-eos", precision="fp32", **PROMPT)
    assert all(call.get("disable_weights") for call in clip.calls)  # prompt text is literal, as upstream
    for ours, ref in ((pos, ref_pos), (neg, ref_neg)):
        (y, extra), (y_ref, extra_ref) = ours[0], ref[0]
        assert y.shape == y_ref.shape == (1, 300, 32)
        assert torch.equal(extra["attention_mask"], extra_ref["attention_mask"])
        assert extra["opensora_prompt"] == extra_ref["opensora_prompt"]
        n = int(extra["attention_mask"].sum())
        torch.testing.assert_close(y[:, :n], y_ref[:, :n], atol=1e-5, rtol=1e-5)
        assert not y[:, n:].any()  # padding rows are never attended to
    assert int(pos[0][1]["attention_mask"].sum()) == 13  # 6 words + two 3-word scores + EOS
    assert pos[0][1]["opensora_prompt"].endswith("aesthetic score: 6.5. motion score: 4.0.")


def test_same_video_features_in_stdit3(t5_dir):
    """The zero padding rows change nothing: STDiT3 masks them, so the DiT output is identical."""
    model = STDiT3(STDiT3Config.from_dict(DIT))
    model.load_state_dict(random_state_dict(model, 5, gain=0.5))
    pos, _ = run(opensora_text.OpenSoraTextEncodeCLIP, clip=FakeComfyT5(t5_dir, "sd3"), **PROMPT)
    ref, _ = run(nodes.OpenSoraTextEncoder, t5="t5-eos", precision="fp32", **PROMPT)
    x, t = torch.randn(1, 4, 3, 4, 4), torch.tensor([700.0])
    with torch.no_grad():
        a = model(x, t, pos[0][0], pos[0][1]["attention_mask"])
        b = model(x, t, ref[0][0], ref[0][1]["attention_mask"])
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_long_prompts_truncate_like_transformers_and_scores_are_not_doubled(t5_dir):
    long = " ".join(["a cat on the beach"] * 80) + " aesthetic score: 6.5."
    kwargs = dict(prompt=long, aesthetic_score=6.5)
    (pos,), _ = run(opensora_text.OpenSoraTextEncodeCLIP, clip=FakeComfyT5(t5_dir, "mochi"), **kwargs)
    (ref,), _ = run(nodes.OpenSoraTextEncoder, t5="t5-eos", precision="fp32", **kwargs)
    assert pos[1]["opensora_prompt"] == long  # already has the aesthetic score: not appended again
    assert torch.equal(pos[1]["attention_mask"], ref[1]["attention_mask"])
    assert int(pos[1]["attention_mask"].sum()) == 300
    torch.testing.assert_close(pos[0], ref[0], atol=1e-5, rtol=1e-5)
    (short,), _ = run(
        opensora_text.OpenSoraTextEncodeCLIP,
        clip=FakeComfyT5(t5_dir),
        max_tokens="120 (v1.0, PixArt-α)",
        **kwargs,
    )
    assert short[0].shape == (1, 120, 32) and int(short[1]["attention_mask"].sum()) == 120


def test_clip_bad_inputs(t5_dir):
    with pytest.raises(InputError, match="CLIPLoader"):
        run(opensora_text.OpenSoraTextEncodeCLIP, clip=object(), prompt="a cat")

    class ClipLOnly(FakeComfyT5):
        def tokenize(self, text_, return_word_ids=False, **kwargs):
            return {"l": [[(49406, 1.0), (49407, 1.0)]]}

    with pytest.raises(InputError, match="no T5-XXL"):
        run(opensora_text.OpenSoraTextEncodeCLIP, clip=ClipLOnly(t5_dir), prompt="a cat")

    class Combined(FakeComfyT5):
        def encode_from_tokens(self, tokens, return_pooled=False, return_dict=False):
            cond = super().encode_from_tokens(tokens)
            return torch.cat([torch.zeros(1, 77, cond.shape[-1]), cond], dim=-2)

    with pytest.raises(InputError, match="T5 tokens"):
        run(opensora_text.OpenSoraTextEncodeCLIP, clip=Combined(t5_dir), prompt="a cat")
    with pytest.raises(InputError, match="prompt is empty"):
        run(opensora_text.OpenSoraTextEncodeCLIP, clip=FakeComfyT5(t5_dir), prompt=" ")
    with pytest.raises(InputError, match="max_tokens"):
        run(opensora_text.OpenSoraTextEncodeCLIP, clip=FakeComfyT5(t5_dir), prompt="a cat", max_tokens="77")
    assert text.T5_EOS == 1 and text.T5_PAD == 0


def test_clean_caption_option_on_both_encoders(t5_dir):
    kwargs = dict(prompt="A CAT runs on the Beach https://example.com @someone", clean_caption=True)
    (pos,), _ = run(opensora_text.OpenSoraTextEncodeCLIP, clip=FakeComfyT5(t5_dir), **kwargs)
    (ref,), _ = run(nodes.OpenSoraTextEncoder, t5="t5-eos", precision="fp32", **kwargs)
    assert (
        pos[1]["opensora_prompt"]
        == ref[1]["opensora_prompt"]
        == "a cat runs on the beach aesthetic score: 6.5."
    )
    assert torch.equal(pos[1]["attention_mask"], ref[1]["attention_mask"])
    assert int(ref[1]["attention_mask"].sum()) == 10  # nothing unknown left: 9 words + EOS
    with pytest.raises(InputError, match="after caption cleaning"):
        run(opensora_text.OpenSoraTextEncodeCLIP, clip=FakeComfyT5(t5_dir), prompt="美丽的日落",
            aesthetic_score=0.0, clean_caption=True)  # fmt: skip


def test_older_comfyui_without_disable_weights(t5_dir):
    class OldClip(FakeComfyT5):
        def tokenize(self, text_, return_word_ids=False):
            return super().tokenize(text_, return_word_ids)

    (pos,), _ = run(opensora_text.OpenSoraTextEncodeCLIP, clip=OldClip(t5_dir), **PROMPT)
    (ref,), _ = run(nodes.OpenSoraTextEncoder, t5="t5-eos", precision="fp32", **PROMPT)
    assert torch.equal(pos[1]["attention_mask"], ref[1]["attention_mask"])
