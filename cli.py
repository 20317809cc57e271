"""Command line of the pack, run from the pack folder without installing it.

    python cli.py --help              lists the pipelines
    python cli.py fomm --help         options of one pipeline

Each pipeline lives in ``pipelines/<name>/cli.py`` with ``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _pack  # noqa: E402

PIPELINES_DIR = Path(__file__).resolve().parent / "pipelines"


def discover() -> dict[str, object]:
    """Pipelines that ship a ``cli.py``, by name."""
    pkg = _pack.ensure_package()
    found = {}
    for cli_file in sorted(PIPELINES_DIR.glob("*/cli.py")):
        name = cli_file.parent.name
        found[name.replace("_", "-")] = importlib.import_module(f"{pkg}.pipelines.{name}.cli")
    return found


def build_parser(pipelines: dict[str, object]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cli.py", description="ComfyUI-MotionSuite on the command line.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is loaded from where")
    sub = parser.add_subparsers(dest="pipeline", metavar="PIPELINE", required=True)
    for name, mod in pipelines.items():
        doc = (mod.__doc__ or "").strip().splitlines()
        p = sub.add_parser(name, help=doc[0] if doc else name, description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(discover())
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        args._run(args)
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
