"""``python cli.py opensora`` end to end on tiny released-layout weights (T2V and first+last frame)."""

from __future__ import annotations

import argparse

import pytest
import torch
from motionsuite.pipelines.core import video
from motionsuite.pipelines.core.errors import InputError
from motionsuite.pipelines.opensora import cli
from opensora_tiny import write_all


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = []
    for k, v in kw.items():
        for item in v if isinstance(v, list) else [v]:
            argv += [f"--{k.replace('_', '-')}", str(item)]
    return parser.parse_args(argv)


def test_cli_first_last_frame_writes_exact_frames(tmp_path, capsys):
    dit_dir, t5_dir = write_all(tmp_path / "models")
    for name in ("t5-v1_1-xxl",):
        (dit_dir / name).symlink_to(t5_dir / name)
    for i in range(2):
        video.write_image(torch.rand(1, 40, 40, 3), tmp_path / f"k{i}.png")
    out = tmp_path / "frames"
    args = _args(prompt="a cat", output=out, weights_dir=dit_dir, width=32, height=32, frames=17, steps=1,
                 precision="fp32", image=[tmp_path / "k0.png", tmp_path / "k1.png"])  # fmt: skip
    cli.run(args)
    assert len(list(out.glob("*.png"))) == 17
    assert "wrote 17 frames" in capsys.readouterr().out


def test_cli_bad_size(tmp_path):
    with pytest.raises(InputError, match="multiples of 16"):
        cli.run(_args(prompt="a", output=tmp_path / "x", width=30, height=32))
