"""A local transformers causal LM (the Omost Llama-3 / Dolphin / Phi-3 fine-tunes) as a chat backend.

The model lives in ComfyUI's ``models/LLM/<name>`` (a transformers folder) and is downloaded there from
Hugging Face on first use. It is moved to the GPU only while it writes and offloaded afterwards unless
``keep_loaded``, so the image model gets the VRAM back. Generation streams token by token through the
pack's progress bar (which also honours ComfyUI's cancel button), and the seed is applied inside a forked
RNG so the caller's random state is left untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch

from ..core import weights
from ..core.device import get_offload_device, get_torch_device, resolve_dtype
from ..core.errors import InputError, MissingWeightsError
from ..core.memory import on_device
from ..core.progress import Progress

log = logging.getLogger("MotionSuite")
FOLDER = "LLM"
KNOWN_MODELS = {
    "omost-llama-3-8b-4bits": "lllyasviel/omost-llama-3-8b-4bits",
    "omost-dolphin-2.9-llama3-8b-4bits": "lllyasviel/omost-dolphin-2.9-llama3-8b-4bits",
    "omost-phi-3-mini-128k-8bits": "lllyasviel/omost-phi-3-mini-128k-8bits",
    "omost-llama-3-8b": "lllyasviel/omost-llama-3-8b",
    "omost-dolphin-2.9-llama3-8b": "lllyasviel/omost-dolphin-2.9-llama3-8b",
    "omost-phi-3-mini-128k": "lllyasviel/omost-phi-3-mini-128k",
}


def list_models() -> list[str]:
    """Known Omost models plus every transformers folder found under models/LLM."""
    found = [d.name for base in weights.search_dirs(FOLDER) if base.is_dir()
             for d in sorted(base.iterdir()) if (d / "config.json").is_file()]
    return list(dict.fromkeys(list(KNOWN_MODELS) + found))


def resolve_model_dir(name: str, allow_download: bool = True) -> Path:
    """The folder of model ``name``; downloads a known Omost model when it is missing."""
    for base in weights.search_dirs(FOLDER):
        if (base / name / "config.json").is_file():
            return base / name
    repo = KNOWN_MODELS.get(name)
    dest = weights.default_download_dir(FOLDER) / name
    if repo is None or not allow_download:
        raise MissingWeightsError(
            f"LLM folder {name!r} was not found in {[str(d) for d in weights.search_dirs(FOLDER)]}; put a "
            f"transformers model folder there (config.json, weights, tokenizer)"
            + (f", e.g. from https://huggingface.co/{repo}." if repo else ".")
        )
    try:
        from huggingface_hub import snapshot_download

        log.info("MotionSuite: downloading %s into %s", repo, dest)
        snapshot_download(repo_id=repo, local_dir=str(dest))
    except Exception as exc:  # noqa: BLE001 - turned into one clear message
        raise MissingWeightsError(
            f"Could not download {repo} into {dest} ({type(exc).__name__}: {exc}); download the repository "
            f"by hand into that folder."
        ) from None
    return dest


class _TokenSink:
    """transformers streamer: decodes new tokens incrementally, drives progress and ``on_token``."""

    def __init__(self, tokenizer, progress: Progress, on_token: Callable[[str], None] | None) -> None:
        from transformers import TextStreamer

        outer = self

        class _Streamer(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text and outer.on_token is not None:
                    outer.on_token(text)

        self.on_token = on_token
        self.progress = progress
        self.streamer = _Streamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if self._prompt_seen:
            self.progress.update(1)  # raises when the user cancels
        self._prompt_seen = True
        self.streamer.put(value)

    def end(self) -> None:
        self.streamer.end()


class LocalLLM:
    """Loads lazily; ``chat`` runs on the compute device and offloads after unless ``keep_loaded``."""

    def __init__(self, path: Path, dtype: str = "auto", keep_loaded: bool = False) -> None:
        self.path = Path(path)
        self.dtype_name = dtype
        self.keep_loaded = keep_loaded
        self.model = None
        self.tokenizer = None
        self.quantized = False

    def load(self) -> None:
        if self.model is not None:
            return
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        config = AutoConfig.from_pretrained(self.path)
        self.quantized = getattr(config, "quantization_config", None) is not None
        device = get_torch_device()
        if self.quantized:
            try:
                import bitsandbytes  # noqa: F401
            except ImportError:
                raise InputError(f"{self.path.name} is a bitsandbytes-quantised model; install bitsandbytes "
                                 "(CUDA GPUs) or choose a full-precision Omost model.") from None
            # quantised weights cannot be moved between devices: load on the GPU and keep them there
            self.model = AutoModelForCausalLM.from_pretrained(self.path, device_map={"": str(device)})
        else:
            dtype = resolve_dtype(self.dtype_name, device)
            self.model = AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype).to(get_offload_device())
        self.model.eval()
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        log.info("MotionSuite: Omost LLM loaded from %s", self.path)

    @torch.inference_mode()
    def chat(
        self, messages: list[dict], *, temperature: float = 0.6, top_p: float = 0.9,
        max_new_tokens: int = 4096, seed: int | None = None, stream: bool = True,
        on_token: Callable[[str], None] | None = None,
    ) -> str:
        """Generate the assistant reply; ``stream`` drives the progress bar and ``on_token`` per token."""
        self.load()
        ids = self.tokenizer.apply_chat_template(messages, return_tensors="pt", add_generation_prompt=True)
        if not isinstance(ids, torch.Tensor):
            ids = ids["input_ids"]
        keep = self.keep_loaded or self.quantized
        with on_device(self.model, keep_loaded=keep) as device:
            ids = ids.to(device)
            kwargs = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0,
                      "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                      "attention_mask": torch.ones_like(ids)}
            if temperature > 0:
                kwargs.update(temperature=temperature, top_p=top_p)
            devices = [device] if device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), Progress(max_new_tokens, "Omost LLM") as progress:
                if seed is not None:
                    torch.manual_seed(int(seed) & 0xFFFFFFFF)
                if stream:
                    kwargs["streamer"] = _TokenSink(self.tokenizer, progress, on_token)
                out = self.model.generate(ids, **kwargs)
        return self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
