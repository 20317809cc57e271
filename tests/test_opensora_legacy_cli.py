"""``python cli.py opensora --version …``: Open-Sora 1.1 / 1.0 and PixArt on tiny released-layout weights."""

from __future__ import annotations

import argparse

import pytest
import torch
from motionsuite.pipelines.core import video
from motionsuite.pipelines.core.errors import InputError
from motionsuite.pipelines.opensora import cli
from opensora_legacy_tiny import write_all


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    models, t5 = write_all(tmp_path_factory.mktemp("legacy_cli"))
    (models / "t5-v1_1-xxl").symlink_to(t5 / "t5-v1_1-xxl")
    return models


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    argv = []
    for k, v in kw.items():
        for item in v if isinstance(v, list) else [v]:
            argv += [f"--{k.replace('_', '-')}", str(item)]
    return parser.parse_args(argv)


def test_v11_first_and_last_frame(weights_dir, tmp_path, capsys):
    for i in range(2):
        video.write_image(torch.rand(1, 40, 40, 3), tmp_path / f"k{i}.png")
    out = tmp_path / "frames"
    images = [tmp_path / "k0.png", tmp_path / "k1.png"]
    cli.run(_args(prompt="a cat", output=out, weights_dir=weights_dir, version="1.1", width=32, height=32,
                  frames=5, steps=2, precision="fp32", image=images))  # fmt: skip
    assert len(list(out.glob("*.png"))) == 5
    assert "wrote 5 frames" in capsys.readouterr().out


@pytest.mark.parametrize("version", ["1.0", "pixart-sigma"])
def test_text_only_versions(weights_dir, tmp_path, capsys, version):
    out = tmp_path / ("clip" if version == "1.0" else "image.png")
    cli.run(_args(prompt="a dog on the beach", negative="a cat", output=out, weights_dir=weights_dir,
                  version=version, width=32, height=24, frames=2, steps=2, precision="fp32"))  # fmt: skip
    if version == "1.0":
        assert len(list(out.glob("*.png"))) == 2
    else:
        images = sorted(tmp_path.glob("image_*.png"))
        assert len(images) == 2 and video.read_image(images[0]).shape == (1, 24, 32, 3)
    assert "wrote 2" in capsys.readouterr().out


def test_bad_version_inputs(weights_dir, tmp_path):
    with pytest.raises(InputError, match="needs --version 1.1"):
        cli.run(_args(prompt="a", output=tmp_path / "x", weights_dir=weights_dir, version="pixart-alpha",
                      image=tmp_path / "none.png"))  # fmt: skip
    with pytest.raises(FileNotFoundError, match="PixArt-XL-2-1024-MS.pth"):
        cli.run(_args(prompt="a", output=tmp_path / "x", weights_dir=weights_dir, version="pixart-alpha",
                      dit="PixArt-XL-2-1024-MS.pth"))  # fmt: skip
    with pytest.raises(SystemExit):
        _args(prompt="a", output="x", version="2.0")
