"""The pack inside real ComfyUI (skipped unless COMFYUI_DIR points at a ComfyUI checkout).

Starts ``python main.py --cpu`` with a private base directory whose custom_nodes holds a link to
this pack, checks that every pack node is listed by /object_info, then queues every example
workflow (API format) on tiny weights and waits for it to finish without error.

    COMFYUI_DIR=/path/to/ComfyUI [COMFYUI_PYTHON=/path/to/python] \
        python -m pytest tests/test_comfyui_integration.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
pytestmark = pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to run")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"ComfyUI refused the prompt: {exc.read().decode()[:2000]}") from exc


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("comfy")
    for sub in ("custom_nodes", "models", "input", "output", "user"):
        (base / sub).mkdir()
    (base / "custom_nodes" / "ComfyUI-MotionSuite").symlink_to(ROOT)
    stems = [p.stem for p in (ROOT / "workflows").glob("*.json") if not p.name.endswith("_api.json")]
    sys.path.insert(0, str(ROOT / "tests"))
    for stem in stems:
        __import__(f"wf_{stem}").prepare(base / "models", base / "input")
    port = _free_port()
    log = open(base / "comfy.log", "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            os.environ.get("COMFYUI_PYTHON", sys.executable),
            "main.py",
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(port),
            "--base-directory",
            str(base),
            "--disable-auto-launch",
        ],
        cwd=COMFYUI_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            _get(url + "/system_stats")
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError((base / "comfy.log").read_text()[-4000:]) from None
            time.sleep(0.5)
    yield url, base, stems
    proc.terminate()
    proc.wait(30)
    log.close()


def test_pack_nodes_listed(server):
    from motionsuite.nodes import NODE_CLASS_MAPPINGS

    url, base, _ = server
    info = _get(url + "/object_info")
    missing = sorted(set(NODE_CLASS_MAPPINGS) - set(info))
    log = (base / "comfy.log").read_text()
    assert not missing, f"not in /object_info: {missing}\n{log[-3000:]}"
    assert "IMPORT FAILED" not in log, log[-3000:]


def test_workflows_run_in_comfyui(server):
    url, base, stems = server
    for stem in stems:
        api = json.loads((ROOT / "workflows" / f"{stem}_api.json").read_text())
        prompt_id = _post(url + "/prompt", {"prompt": api})["prompt_id"]
        for _ in range(1200):
            hist = _get(f"{url}/history/{prompt_id}")
            if prompt_id in hist and hist[prompt_id]["status"].get("completed") is not None:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"{stem}: did not finish in 10 minutes")
        status = hist[prompt_id]["status"]
        assert status["status_str"] == "success", f"{stem}: {json.dumps(status['messages'])[:3000]}"
