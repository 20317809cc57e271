"""Omost: ask an LLM server for an image layout (canvas JSON), optionally render it.

    python cli.py omost --prompt "a dragon fighting warriors" --llm http://127.0.0.1:8080/v1 \
        --output canvas.json --render layout.png
    python cli.py omost --prompt "a cat" --llm models/LLM/omost-llama-3-8b --output canvas.json
    python cli.py omost --canvas reply.txt --output canvas.json     (reply/code/JSON from a file)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from ..core.errors import InputError
from .canvas import canvas_to_json, load_canvas_json, parse_text
from .chat import chat_canvas
from .llm_local import LocalLLM
from .llm_server import ServerLLM
from .render import render_layout

log = logging.getLogger("MotionSuite")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", help="what to draw (sent to the LLM given by --llm)")
    src.add_argument("--canvas", type=Path, help="file with a canvas JSON, an LLM reply or canvas code")
    parser.add_argument("--llm", help="OpenAI-compatible server URL (http://127.0.0.1:11434/v1) or a local "
                        "transformers model folder")
    parser.add_argument("--dtype", default="auto", help="precision of a local model: auto, fp32, fp16, bf16")
    parser.add_argument("--model", default="", help="model name on the server (default: its first model)")
    parser.add_argument("--api-key-env", default="", help="NAME of the environment variable with the API key")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.6)
    parser.add_argument("--top-p", type=float, default=0.9)
    parser.add_argument("--max-new-tokens", type=int, default=4096)
    parser.add_argument("--retries", type=int, default=1, help="re-ask with the parse error this many times")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--output", type=Path, required=True, help="canvas JSON file to write")
    parser.add_argument("--render", type=Path, help="also write the colour layout image (PNG)")
    parser.add_argument("--size", type=int, nargs=2, default=(1024, 1024), metavar=("W", "H"))


def run(args: argparse.Namespace) -> None:
    if args.prompt is not None:
        if not args.llm:
            raise InputError("--prompt needs --llm URL (an OpenAI-compatible chat server).")
        if args.llm.startswith(("http://", "https://")):
            llm = ServerLLM(args.llm, model=args.model, api_key_env=args.api_key_env, timeout=args.timeout)
        elif Path(args.llm, "config.json").is_file():
            llm = LocalLLM(Path(args.llm), dtype=args.dtype)
        else:
            raise InputError(f"--llm {args.llm!r} is neither an http(s) URL nor a model folder.")
        _, parsed = chat_canvas(llm, args.prompt, temperature=args.temperature, top_p=args.top_p,
                                max_new_tokens=args.max_new_tokens, seed=args.seed, retries=args.retries,
                                on_token=lambda t: (sys.stderr.write(t), sys.stderr.flush()))
        entries = parsed.entries
        warnings = parsed.warnings
    else:
        if not args.canvas.is_file():
            raise InputError(f"--canvas file {args.canvas} does not exist.")
        text = args.canvas.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            entries, warnings = load_canvas_json(text), []
        else:
            parsed = parse_text(text)
            entries, warnings = parsed.entries, parsed.warnings
    for w in warnings:
        log.warning("Omost: %s", w)
    args.output.write_text(canvas_to_json(entries) + "\n", encoding="utf-8")
    if args.render:
        from PIL import Image

        width, height = args.size
        Image.fromarray(np.asarray(render_layout(entries, height, width))).save(args.render)
    print(json.dumps({"regions": len(entries) - 1, "output": str(args.output)}))
