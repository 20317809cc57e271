"""Local transformers backend on a tiny random Llama with a tiny word-level tokenizer built here."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from motionsuite.pipelines.omost.llm_local import LocalLLM, list_models, resolve_model_dir

WORDS = ["canvas", "=", "Canvas()", "```python", "```", "sky", "red", "a", "the", "dragon", "cat", "."]
TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
            "{% if add_generation_prompt %}<assistant>{% endif %}")


def _tiny_model(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    special = ["<unk>", "<s>", "</s>", "<system>", "<user>", "<assistant>"]
    vocab = {w: i for i, w in enumerate(special + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   chat_template=TEMPLATE)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=4096,
                         bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(1)
    LlamaForCausalLM(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("LLM")
    return _tiny_model(root / "tiny-omost")


def test_stream_equals_generate_and_rng_untouched(tiny):
    llm = LocalLLM(tiny, dtype="fp32")
    msgs = [{"role": "system", "content": "a"}, {"role": "user", "content": "the red dragon"}]
    state = torch.get_rng_state()
    pieces: list[str] = []
    streamed = llm.chat(msgs, temperature=0.8, max_new_tokens=12, seed=5, stream=True, on_token=pieces.append)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched
    plain = llm.chat(msgs, temperature=0.8, max_new_tokens=12, seed=5, stream=False)
    assert streamed == plain and streamed.strip()
    assert "".join(pieces).split() == streamed.split()
    ids = llm.tokenizer.apply_chat_template(msgs, return_tensors="pt", add_generation_prompt=True)
    ids = ids if isinstance(ids, torch.Tensor) else ids["input_ids"]
    torch.manual_seed(5)
    ref = llm.model.generate(ids, max_new_tokens=12, do_sample=True, temperature=0.8, top_p=0.9,
                             pad_token_id=0, attention_mask=torch.ones_like(ids))
    assert plain == llm.tokenizer.decode(ref[0, ids.shape[1]:], skip_special_tokens=True)
    other = llm.chat(msgs, temperature=0.8, max_new_tokens=12, seed=6, stream=False)
    greedy = [llm.chat(msgs, temperature=0.0, max_new_tokens=8, seed=s, stream=False) for s in (1, 2)]
    assert greedy[0] == greedy[1] and isinstance(other, str)


def test_model_folder_lookup(tiny):
    from motionsuite.pipelines.core import weights

    weights.add_search_dir("LLM", tiny.parent)
    assert "tiny-omost" in list_models() and "omost-llama-3-8b-4bits" in list_models()
    assert resolve_model_dir("tiny-omost") == tiny
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_model_dir("no-such-model")


def test_loader_and_chat_nodes(tiny):
    from motionsuite.nodes import omost as nodes
    from motionsuite.pipelines.core import weights
    from motionsuite.pipelines.omost.canvas import CanvasParseError

    weights.add_search_dir("LLM", tiny.parent)
    types = nodes.OmostLLMLoader.INPUT_TYPES()["required"]
    assert "tiny-omost" in types["model"][0]
    (llm,) = nodes.OmostLLMLoader().load(model="tiny-omost", dtype="fp32", keep_loaded=False)
    # a random model writes no canvas: the chat node reports the reply's start after the retries
    with pytest.raises(CanvasParseError, match="after 2 attempt"):
        nodes.OmostChat().chat(llm=llm, text="a cat", max_new_tokens=8, top_p=0.9, temperature=0.7, seed=3,
                               retries=1, stream=True)
    with pytest.raises(FileNotFoundError, match="models/LLM|not found"):
        nodes.OmostLLMLoader().load(model="missing-folder", dtype="auto", keep_loaded=False)
    with pytest.raises(ValueError, match="dtype"):
        nodes.OmostLLMLoader().load(model="tiny-omost", dtype="fp64", keep_loaded=False)
