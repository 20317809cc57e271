"""Talk to an OpenAI-compatible chat-completions server (Ollama, vLLM, llama.cpp, TGI, LM Studio).

A running server turns Omost's minutes-long local generation into seconds, and keeps the LLM out of the
image model's VRAM. Only the standard library is used (``urllib``), so no client package is needed.
The API key is read from an environment variable the user names, so it never lands in a workflow file.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..core.errors import InputError
from .canvas import AREAS, LOCATIONS, OFFSETS


def system_prompt() -> str:
    """The system turn the Omost models were fine-tuned with, assembled from the canvas vocabularies."""
    def listing(names: dict) -> str:
        return "[" + ", ".join(f'"{n}"' for n in names) + "]"

    return (
        "You are a helpful AI assistant to compose images using the below python class `Canvas`:\n\n"
        "```python\nclass Canvas:\n"
        "    def set_global_description(self, description: str, detailed_descriptions: list[str], tags: str, "
        "HTML_web_color_name: str):\n        pass\n\n"
        "    def add_local_description(self, location: str, offset: str, area: str, "
        "distance_to_viewer: float, description: str, detailed_descriptions: list[str], tags: str, "
        "atmosphere: str, style: str, "
        "quality_meta: str, HTML_web_color_name: str):\n"
        f"        assert location in {listing(LOCATIONS)}\n"
        f"        assert offset in {listing(OFFSETS)}\n"
        f"        assert area in {listing(AREAS)}\n"
        "        assert distance_to_viewer > 0\n        pass\n```"
    )


class LLMServerError(RuntimeError):
    """The server could not be reached or refused the request; the message says what to check."""


@dataclass
class ServerLLM:
    """Where the chat server is and how to ask it. ``model`` empty = the server's first listed model."""

    base_url: str
    model: str = ""
    api_key_env: str = ""
    timeout: float = 120.0

    def __post_init__(self) -> None:
        url = (self.base_url or "").strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise InputError(f"LLM server URL must start with http:// or https://, got {self.base_url!r} "
                             "(e.g. http://127.0.0.1:11434/v1 for Ollama).")
        if not url.endswith("/v1"):
            url += "/v1"
        self.base_url = url
        if self.timeout <= 0:
            raise InputError(f"timeout must be positive seconds, got {self.timeout}.")

    # -- HTTP ---------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise InputError(f"Environment variable {self.api_key_env!r} (named as the API-key variable) "
                                 "is not set; set it before starting ComfyUI or clear the field.")
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def _open(self, path: str, body: dict | None = None):
        url = self.base_url + path
        data = None if body is None else json.dumps(body).encode("utf-8")
        method = "GET" if data is None else "POST"
        req = urllib.request.Request(url, data=data, headers=self._headers(), method=method)
        try:
            return urllib.request.urlopen(req, timeout=self.timeout)  # noqa: S310 - user-chosen http(s) URL
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode("utf-8", "replace").strip()
            if exc.code in (401, 403):
                hint = (f"check the key in ${self.api_key_env}" if self.api_key_env
                        else "the server wants an API key: put it in an environment variable and name it")
                raise LLMServerError(
                    f"LLM server refused the request ({exc.code}) at {url}: {hint}."
                ) from None
            if exc.code == 404:
                raise LLMServerError(
                    f"LLM server answered 404 for {url}: check that the base URL points at the "
                    f"OpenAI-compatible API (usually ending in /v1) and that model {self.model!r} "
                    f"exists there. {detail}"
                ) from None
            raise LLMServerError(f"LLM server error {exc.code} at {url}: {detail}") from None
        except TimeoutError:
            raise LLMServerError(f"LLM server at {url} did not answer within {self.timeout:g} s; "
                                 "raise the timeout or check the server.") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, (TimeoutError, socket.timeout)):
                raise LLMServerError(f"LLM server at {url} did not answer within {self.timeout:g} s; "
                                     "raise the timeout or check the server.") from None
            raise LLMServerError(f"Cannot reach the LLM server at {url} ({exc.reason}); is it running and is "
                                 "the address right?") from None

    def resolve_model(self) -> str:
        """The configured model, or the first one the server lists."""
        if self.model:
            return self.model
        with self._open("/models") as resp:
            data = json.loads(resp.read().decode("utf-8"))
        models = [m.get("id") for m in data.get("data", []) if isinstance(m, dict) and m.get("id")]
        if not models:
            raise LLMServerError(f"The server at {self.base_url} lists no models; load one or name it.")
        return models[0]

    # -- chat ---------------------------------------------------------------------------------
    def chat(
        self, messages: list[dict], *, temperature: float = 0.6, top_p: float = 0.9,
        max_new_tokens: int = 4096, seed: int | None = None, stream: bool = True,
        on_token: Callable[[str], None] | None = None,
    ) -> str:
        """Send the conversation; returns the assistant text. ``on_token`` sees streamed pieces."""
        body = {"model": self.resolve_model(), "messages": messages, "temperature": temperature,
                "top_p": top_p, "max_tokens": max_new_tokens, "stream": stream}
        if seed is not None:
            body["seed"] = int(seed) & 0xFFFFFFFF
        with self._open("/chat/completions", body) as resp:
            if not stream:
                data = json.loads(resp.read().decode("utf-8"))
                try:
                    return data["choices"][0]["message"]["content"] or ""
                except (KeyError, IndexError, TypeError):
                    raise LLMServerError(f"Unexpected reply from the server: {str(data)[:300]}") from None
            pieces = []
            for piece in _sse_pieces(resp):
                pieces.append(piece)
                if on_token is not None:
                    on_token(piece)
            return "".join(pieces)


def _sse_pieces(resp) -> Iterator[str]:
    """Content pieces of a server-sent-events chat stream, up to ``data: [DONE]``."""
    for raw in resp:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            delta = json.loads(payload)["choices"][0].get("delta", {})
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        content = delta.get("content")
        if content:
            yield content
