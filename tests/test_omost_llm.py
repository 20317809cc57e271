"""LLM server backend and chat round against a real OpenAI-protocol HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from motionsuite.pipelines.omost.canvas import CanvasParseError
from motionsuite.pipelines.omost.chat import chat_canvas
from motionsuite.pipelines.omost.llm_server import LLMServerError, ServerLLM

_FIX = Path(__file__).parent / "fixtures" / "omost" / "canvas_parity.json"
CASE = json.loads(_FIX.read_text(encoding="utf-8"))["cases"][0]


class _Handler(BaseHTTPRequestHandler):
    replies: list[str] = []
    requests: list[dict] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def _auth_ok(self) -> bool:
        if self.headers.get("Authorization") == "Bearer wrong":
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"error": "bad key"}')
            return False
        return True

    def do_GET(self):
        if not self._auth_ok():
            return
        if self.path == "/v1/models":
            body = json.dumps({"data": [{"id": "omost-llama-3-8b"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(404)
            self.end_headers()

    def do_POST(self):
        if not self._auth_ok():
            return
        if self.path != "/v1/chat/completions":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"not found")
            return
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(req)
        if req["model"] == "sleepy":
            time.sleep(1.5)
            return  # the client has given up by now
        reply = type(self).replies.pop(0) if type(self).replies else CASE["reply"]
        self.send_response(200)
        if req.get("stream"):
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for i in range(0, len(reply), 50):
                chunk = {"choices": [{"delta": {"content": reply[i:i + 50]}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
        else:
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"choices": [{"message": {"content": reply}}]}).encode())


@pytest.fixture()
def server():
    _Handler.replies, _Handler.requests = [], []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("stream", [True, False])
def test_chat_round_trip(server, stream, monkeypatch):
    monkeypatch.setenv("OMOST_TEST_KEY", "sekrit")
    llm = ServerLLM(server, api_key_env="OMOST_TEST_KEY", timeout=10)
    pieces: list[str] = []
    conv, parsed = chat_canvas(llm, "a battle", seed=7, stream=stream, on_token=pieces.append)
    assert parsed.entries == CASE["entries"]
    assert [t["role"] for t in conv] == ["user", "assistant"] and conv[1]["content"] == CASE["reply"]
    req = _Handler.requests[-1]
    assert req["model"] == "omost-llama-3-8b" and req["seed"] == 7
    assert req["messages"][0]["role"] == "system"
    assert req["messages"][-1] == {"role": "user", "content": "a battle"}
    assert ("".join(pieces) == CASE["reply"]) if stream else not pieces
    conv2, _ = chat_canvas(llm, "make it night", conv, stream=stream)
    assert len(conv2) == 4 and _Handler.requests[-1]["messages"][1:3] == conv


def test_retry_feeds_error_back(server):
    _Handler.replies = ["Sorry, no code.", CASE["reply"]]
    llm = ServerLLM(server + "/v1/", model="m", timeout=10)
    conv, parsed = chat_canvas(llm, "x", retries=1, stream=False)
    assert len(parsed.entries) == 5 and len(conv) == 2
    assert "invalid" in _Handler.requests[-1]["messages"][-1]["content"]
    _Handler.replies = ["Sorry, no code."]
    with pytest.raises(CanvasParseError, match="Reply starts with: 'Sorry"):
        chat_canvas(llm, "x", stream=False)


def test_server_errors(server, monkeypatch):
    monkeypatch.setenv("OMOST_BAD_KEY", "wrong")
    with pytest.raises(LLMServerError, match="refused the request \\(401\\)"):
        ServerLLM(server, api_key_env="OMOST_BAD_KEY", timeout=5).chat([], stream=False)
    with pytest.raises(LLMServerError, match="404"):
        ServerLLM(server + "/api", model="m", timeout=5).chat([], stream=False)
    with pytest.raises(LLMServerError, match="Cannot reach"):
        ServerLLM("http://127.0.0.1:9", model="m", timeout=5).chat([], stream=False)
    with pytest.raises(LLMServerError, match="did not answer within"):
        ServerLLM(server, model="sleepy", timeout=0.3).chat([], stream=False)
    with pytest.raises(ValueError, match="OMOST_UNSET_KEY"):
        ServerLLM(server, api_key_env="OMOST_UNSET_KEY").chat([])
    with pytest.raises(ValueError, match="http://"):
        ServerLLM("localhost:8080")
    with pytest.raises(ValueError, match="empty"):
        chat_canvas(ServerLLM(server), "  ")
