"""DisCo checkpoint loading through the user-facing loader, with tiny files in the released layout."""

from __future__ import annotations

import pytest
import torch
from disco_tiny import tiny_model, write_base_folder, write_deepspeed_checkpoint
from motionsuite.pipelines.disco import loading


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("disco")
    base = write_base_folder(root / "sd-image-variations-diffusers")
    model = tiny_model(seed=3)
    released = loading.released_state_dict(model)
    ckpt = write_deepspeed_checkpoint(root / "tiktok_cfg" / "mp_rank_00_model_states.pt", released)
    return base, ckpt, model, released


def test_released_layout_has_upstream_names(tiny):
    _, _, _, released = tiny
    assert "vae.encoder.mid_block.attentions.0.query.weight" in released
    assert "vae.decoder.mid_block.attentions.0.proj_attn.bias" in released
    assert released["controlnet.nets.1.controlnet_cond_embedding.conv_in.weight"].shape == (32, 4, 3, 3)
    assert "controlnet.nets.0.controlnet_cond_embedding.blocks.5.weight" in released
    assert released["refer_clip_proj.weight"].shape == (32, 32)
    assert not any(".to_q." in k for k in released if k.startswith("vae."))


def test_deepspeed_checkpoint_loads_strictly(tiny):
    base, ckpt, _, released = tiny
    loaded = loading.load_disco(base, ckpt)
    assert loaded.name == "tiktok_cfg"
    for key, value in loading.released_state_dict(loaded).items():
        assert torch.equal(value, released[key]), key


def test_fp16_keeps_clip_fp32(tiny):
    base, ckpt, _, _ = tiny
    loaded = loading.load_disco(base, ckpt, dtype=torch.float16)
    assert loaded.unet.dtype == torch.float16
    assert loaded.clip.dtype == torch.float32


def test_safetensors_and_position_ids(tiny, tmp_path):
    from safetensors.torch import save_file

    base, _, _, released = tiny
    sd = dict(released)
    sd["clip_image_encoder.vision_model.embeddings.position_ids"] = torch.arange(257)[None]
    path = tmp_path / "disco.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    model = loading.load_disco(base, path)
    loaded = loading.released_state_dict(model)
    assert set(loaded) == set(released)  # the old position_ids buffer was dropped, nothing else
    for key, value in released.items():
        torch.testing.assert_close(loaded[key].float(), value.float(), msg=key)


def test_errors_are_clear(tiny, tmp_path):
    base, ckpt, _, released = tiny
    with pytest.raises(FileNotFoundError, match="sd-image-variations"):
        loading.load_disco(tmp_path / "nowhere", ckpt)
    with pytest.raises(FileNotFoundError, match="DisCo README"):
        loading.load_disco(base, tmp_path / "missing.pt")
    broken = {k: v for k, v in released.items() if not k.endswith("conv_out.weight")}
    path = write_deepspeed_checkpoint(tmp_path / "broken.pt", broken)
    with pytest.raises(ValueError, match="missing"):
        loading.load_disco(base, path)
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="does not look like a DisCo"):
        loading.load_disco(base, tmp_path / "other.pt")


def test_stage1_pretrain_prefix_maps_to_background():
    sd = {"controlnet.conv_in.weight": torch.zeros(1), "unet.conv_in.weight": torch.zeros(1)}
    parts = loading.split_state_dict(sd)
    assert "conv_in.weight" in parts["background_controlnet"]


def test_convert_to_safetensors_is_preferred(tiny, tmp_path):
    import shutil

    base, ckpt, _, released = tiny
    pt = tmp_path / "moretiktok_nocfg" / "mp_rank_00_model_states.pt"
    pt.parent.mkdir()
    shutil.copy(ckpt, pt)
    converted = loading.convert_to_safetensors(pt)
    assert converted == pt.with_suffix(".safetensors")
    assert loading.preferred_checkpoint(pt) == converted
    sd = loading.read_checkpoint(converted)
    assert sd["unet.conv_in.weight"].dtype == torch.float16
    assert sd["clip_image_encoder.vision_model.post_layernorm.weight"].dtype == torch.float32
    model = loading.load_disco(base, pt)
    assert model.name == "moretiktok_nocfg"
    w = model.unet.conv_in.weight
    torch.testing.assert_close(w, released["unet.conv_in.weight"].half().float())
