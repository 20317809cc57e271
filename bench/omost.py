"""Omost speed: DenseDiffusion attention (SDPA vs materialised) and local chat tokens/s.

    python bench/omost.py [--device cuda] [--dtype fp16] [--pixels 4096 16384] [--tokens 1001]
    python bench/omost.py --chat [--chat-tokens 256] [--chat-width 256 --chat-layers 4]

Chat: a small random Llama (word-level tokenizer, built in a temporary folder) answers through the
pack's streaming local backend (``LocalLLM.chat``: progress bar, interrupt checks, forked-RNG seed,
offload) and through plain ``model.generate`` on the same model and prompt; tokens/s of both, greedy,
no early stop (the model has no EOS), so both write exactly ``--chat-tokens`` tokens.

Sizes follow SDXL at 1024x1024: 64x64 = 4096 pixels at the cross-attention levels with 10 heads of 64
channels, and 13 bags x 77 = 1001 text tokens (a canvas with ~6 regions), CFG batch 2 (uncond, cond).
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _pack  # noqa: E402

pkg = _pack.ensure_package()
at = __import__(f"{pkg}.pipelines.omost.attention", fromlist=["x"])


def measure(fn, device: torch.device, repeats: int) -> tuple[float, float]:
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak = float("nan")  # CPU: not measured (printed as nan)
    return (time.perf_counter() - start) / repeats * 1000, peak


def bench_chat(args: argparse.Namespace) -> None:
    import tempfile

    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    local = __import__(f"{pkg}.pipelines.omost.llm_local", fromlist=["x"])
    words = [f"w{i}" for i in range(2000)]
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    template = ("{% for m in messages %}{{ m['content'] }} {% endfor %}")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   chat_template=template)
    width = args.chat_width
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=width, intermediate_size=width * 3,
                         num_hidden_layers=args.chat_layers, num_attention_heads=args.chat_width // 64,
                         max_position_embeddings=4096, bos_token_id=1, eos_token_id=None, pad_token_id=0)
    messages = [{"role": "system", "content": " ".join(words[:300])}, {"role": "user", "content": "w5 w6 w7"}]
    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(folder)
        fast.save_pretrained(folder)
        llm = local.LocalLLM(folder, dtype="fp32" if args.device == "cpu" else args.dtype, keep_loaded=True)
        llm.chat(messages, temperature=0, max_new_tokens=8)  # load and warm up
        n = args.chat_tokens
        start = time.perf_counter()
        ours = llm.chat(messages, temperature=0, max_new_tokens=n, stream=True, on_token=lambda _: None)
        t_ours = time.perf_counter() - start
        device = next(llm.model.parameters()).device
        prompt = " ".join(m["content"] for m in messages)
        ids = torch.tensor([fast(prompt)["input_ids"]], device=device)
        with torch.inference_mode():
            start = time.perf_counter()
            out = llm.model.generate(ids, max_new_tokens=n, do_sample=False, pad_token_id=0,
                                     attention_mask=torch.ones_like(ids))
            t_plain = time.perf_counter() - start
    assert len(ours.split()) == n and out.shape[1] - ids.shape[1] == n
    params = sum(p.numel() for p in llm.model.parameters()) / 1e6
    print(f"chat: Llama {params:.1f}M params, prompt {ids.shape[1]} tokens, {n} new tokens, device {device}")
    print(f"streaming LocalLLM.chat: {n / t_ours:.1f} tok/s | plain generate: {n / t_plain:.1f} tok/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chat", action="store_true", help="benchmark local chat tokens/s instead")
    parser.add_argument("--chat-tokens", type=int, default=256)
    parser.add_argument("--chat-width", type=int, default=256)
    parser.add_argument("--chat-layers", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp16", choices=["fp16", "bf16", "fp32"])
    parser.add_argument("--pixels", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--tokens", type=int, default=1001)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if args.chat:
        bench_chat(args)
        return
    device = torch.device(args.device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    if device.type == "cpu":
        dtype = torch.float32
    heads, dim = 10, 64
    counts = [77] * (args.tokens // 77)
    counts[-1] += args.tokens - sum(counts)
    n_entries = len(counts)
    print(f"device={device} dtype={dtype} heads={heads} dim={dim} tokens={sum(counts)} entries={n_entries}")
    print("pixels | sdpa ms | naive ms | sdpa MiB | naive MiB | max |diff|")
    for pixels in args.pixels:
        side = int(pixels ** 0.5)
        q = torch.randn(2, pixels, heads * dim, device=device, dtype=dtype)
        k = torch.randn(2, sum(counts), heads * dim, device=device, dtype=dtype)
        v = torch.randn_like(k)
        masks = torch.zeros(n_entries, 90, 90, device=device)
        masks[0] = 1
        for i in range(1, n_entries):
            a = (i * 7) % 45
            masks[i, a:a + 45, (i * 11) % 40:(i * 11) % 40 + 50] = 1
        call = dict(heads=heads, masks=masks, token_counts=counts, latent_hw=(side, side),
                    cond_or_uncond=[1, 0])
        fast = functools.partial(at.dense_diffusion_attention, q, k, v, **call)
        naive = functools.partial(at.dense_diffusion_attention_naive, q, k, v, **call)
        t_fast, m_fast = measure(fast, device, args.repeats)
        t_naive, m_naive = measure(naive, device, args.repeats)
        diff = (fast().float() - naive().float()).abs().max().item()
        print(f"{pixels} | {t_fast:.2f} | {t_naive:.2f} | {m_fast:.0f} | {m_naive:.0f} | {diff:.2e}")


if __name__ == "__main__":
    main()
