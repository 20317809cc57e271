"""Temporal DisCo through the user-facing loader: a tiny DeepSpeed ``.pt`` in the released layout."""

from __future__ import annotations

import pytest
import torch
from disco_tiny import tiny_model, write_base_folder, write_deepspeed_checkpoint
from motionsuite.models.disco.temporal import TemporalResnetBlock, TemporalTransformerBlock
from motionsuite.pipelines.disco import loading


@pytest.fixture(scope="module")
def tiny_temporal(tmp_path_factory):
    root = tmp_path_factory.mktemp("disco_tm")
    base = write_base_folder(root / "sd-image-variations-diffusers")
    model = tiny_model(seed=5, temporal=True)
    released = loading.released_state_dict(model)
    ckpt = write_deepspeed_checkpoint(root / "disco_tm" / "mp_rank_00_model_states.pt", released)
    return base, ckpt, model, released


def test_temporal_checkpoint_is_detected_and_loads_strictly(tiny_temporal):
    base, ckpt, _, released = tiny_temporal
    assert "unet.down_blocks.0.resnets.0.tem_conv.weight" in released
    assert "controlnet.nets.0.mid_block.attentions.0.transformer_blocks.0.tem_norm.weight" in released
    loaded = loading.load_disco(base, ckpt)
    assert loaded.temporal
    for net in (loaded.unet, loaded.pose_controlnet, loaded.background_controlnet):
        assert any(isinstance(m, TemporalResnetBlock) for m in net.modules())
        assert any(isinstance(m, TemporalTransformerBlock) for m in net.modules())
    for key, value in loading.released_state_dict(loaded).items():
        assert torch.equal(value, released[key]), key


def test_image_checkpoint_stays_image_model(tiny_temporal, tmp_path):
    base, _, _, released = tiny_temporal
    image_only = {k: v for k, v in released.items() if ".tem_" not in k}
    path = write_deepspeed_checkpoint(tmp_path / "tiktok_cfg" / "mp_rank_00_model_states.pt", image_only)
    assert not loading.load_disco(base, path).temporal


def test_partial_temporal_checkpoint_names_missing_keys(tiny_temporal, tmp_path):
    base, _, _, released = tiny_temporal
    broken = {k: v for k, v in released.items() if not k.startswith("controlnet.nets.1.") or ".tem_" not in k}
    path = write_deepspeed_checkpoint(tmp_path / "broken.pt", broken)
    with pytest.raises(ValueError, match="temporal checkpoint"):
        loading.load_disco(base, path)


def test_zero_temporal_layers_equal_image_model_on_identical_frames():
    """With tem_conv/tem_attn outputs at zero and identical frames, the pooled GroupNorm sees the
    same statistics as a per-frame one, so the temporal UNet must equal the image UNet."""
    model = tiny_model(seed=2, temporal=True)
    image = tiny_model(seed=2)
    sd = loading.released_state_dict(model)
    for key, value in sd.items():
        if ".tem_conv." in key or ".tem_attn.to_out" in key:
            value.zero_()
    loading.load_weights(model, sd)
    loading.load_weights(image, {k: v for k, v in sd.items() if ".tem_" not in k})
    frames = 3
    x = torch.randn(1, 4, 8, 8).expand(frames, -1, -1, -1)
    emb = torch.randn(1, 257, 32).expand(frames, -1, -1)
    model.set_num_frames(frames)
    with torch.no_grad():
        a = model.unet(x, 500, emb).sample
        b = image.unet(x, 500, emb).sample
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    model.set_num_frames(2)
    with pytest.raises(ValueError, match="multiple of 2 frames"):
        model.unet(x, 500, emb)
