"""Omost command line: canvas from a reply file and from the local OpenAI-protocol test server."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from test_omost_llm import CASE, server  # noqa: F401 - the local server fixture

import cli


def test_cli_from_file(tmp_path: Path):
    reply = tmp_path / "reply.txt"
    reply.write_text(CASE["reply"], encoding="utf-8")
    out, png = tmp_path / "canvas.json", tmp_path / "layout.png"
    assert cli.main(["omost", "--canvas", str(reply), "--output", str(out), "--render", str(png),
                     "--size", "64", "48"]) == 0
    assert json.loads(out.read_text()) == CASE["entries"]
    assert Image.open(png).size == (64, 48)
    assert cli.main(["omost", "--canvas", str(out), "--output", str(tmp_path / "again.json")]) == 0
    assert json.loads((tmp_path / "again.json").read_text()) == CASE["entries"]
    assert cli.main(["omost", "--prompt", "x", "--output", str(out)]) == 2  # no --llm
    assert cli.main(["omost", "--prompt", "x", "--llm", str(tmp_path), "--output", str(out)]) == 2


def test_cli_with_server(server, tmp_path: Path):  # noqa: F811
    out = tmp_path / "c.json"
    assert cli.main(["omost", "--prompt", "a battle", "--llm", server, "--output", str(out)]) == 0
    assert json.loads(out.read_text()) == CASE["entries"]
