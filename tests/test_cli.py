"""The root command line lists every pipeline that ships a cli.py and fails cleanly on bad input."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_help_lists_pipelines():
    out = subprocess.run([sys.executable, "cli.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for cli_file in (ROOT / "pipelines").glob("*/cli.py"):
        assert cli_file.parent.name.replace("_", "-") in out.stdout


def test_unknown_pipeline_is_an_argparse_error():
    out = subprocess.run([sys.executable, "cli.py", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice" in out.stderr
