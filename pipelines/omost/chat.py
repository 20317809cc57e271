"""One Omost chat round: conversation + request → LLM reply → canvas.

The conversation carried between nodes holds only user/assistant turns (the system turn is added on
every call), so a later chat round can edit the canvas ("change the dragon to a dinosaur"). When the
reply holds no valid canvas, ``retries`` further rounds feed the parse error back to the LLM.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..core.errors import InputError
from .canvas import CanvasParseError, ParsedCanvas, parse_reply
from .llm_server import system_prompt


class ChatLLM(Protocol):
    """Anything that answers a list of chat messages with text."""

    def chat(self, messages: list[dict], *, temperature: float, top_p: float, max_new_tokens: int,
             seed: int | None, stream: bool, on_token: Callable[[str], None] | None) -> str: ...


def validate_conversation(conversation: object) -> list[dict]:
    """A conversation is a list of {"role": "user"|"assistant", "content": str}."""
    if conversation is None:
        return []
    if not isinstance(conversation, list) or not all(
        isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str)
        for t in conversation
    ):
        raise InputError("conversation must be a list of {role: user|assistant, content: text} turns, "
                         "as output by a previous Omost chat node.")
    return [dict(t) for t in conversation]


def chat_canvas(
    llm: ChatLLM, text: str, conversation: list[dict] | None = None, *, temperature: float = 0.6,
    top_p: float = 0.9, max_new_tokens: int = 4096, seed: int | None = None, retries: int = 0,
    stream: bool = True, on_token: Callable[[str], None] | None = None,
) -> tuple[list[dict], ParsedCanvas]:
    """Ask the LLM for a canvas; returns (conversation with the new turns, parsed canvas)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("The chat text is empty; describe the image you want (e.g. 'a cat on a sofa').")
    history = validate_conversation(conversation) + [{"role": "user", "content": text}]
    extra: list[dict] = []
    for attempt in range(retries + 1):
        messages = [{"role": "system", "content": system_prompt()}, *history, *extra]
        reply = llm.chat(messages, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                         seed=None if seed is None else seed + attempt, stream=stream, on_token=on_token)
        try:
            parsed = parse_reply(reply)
        except CanvasParseError as exc:
            if attempt == retries:
                raise CanvasParseError(
                    f"The LLM reply holds no valid canvas after {retries + 1} attempt(s): {exc} "
                    f"Reply starts with: {reply.strip()[:200]!r}"
                ) from None
            extra += [{"role": "assistant", "content": reply},
                      {"role": "user", "content": f"That code is invalid: {exc} Write the full corrected "
                                                  "canvas code in one ```python block."}]
            continue
        return history + [{"role": "assistant", "content": reply}], parsed
    raise AssertionError("unreachable")  # pragma: no cover
