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


# --- windows -------------------------------------------------------------------------------------


def test_window_starts():
    from motionsuite.pipelines.core.errors import InputError
    from motionsuite.pipelines.disco.windows import window_starts

    assert window_starts(48, 16) == [0, 16, 32]
    assert window_starts(40, 16) == [0, 16, 24]  # upstream: last window aligned to the end
    assert window_starts(40, 16, overlap=4) == [0, 12, 24]
    assert window_starts(41, 16, overlap=4) == [0, 12, 24, 25]
    assert window_starts(5, 16) == [0]  # fewer frames than a window: one short window
    with pytest.raises(InputError, match="overlap"):
        window_starts(40, 16, overlap=16)
    with pytest.raises(InputError, match="at least 1"):
        window_starts(40, 0)


def test_blend_weights_ramp_at_inner_edges_only():
    from motionsuite.pipelines.disco.windows import blend_weights

    w = blend_weights(8, 3, at_start=False, at_end=False)
    torch.testing.assert_close(w, torch.tensor([0.25, 0.5, 0.75, 1, 1, 0.75, 0.5, 0.25]))
    assert torch.equal(blend_weights(8, 3, at_start=True, at_end=True), torch.ones(8))
    assert blend_weights(8, 3, at_start=True, at_end=False)[0] == 1


def test_temporal_noise_matches_upstream_clip_layout():
    from motionsuite.pipelines.disco.windows import temporal_noise

    noise = temporal_noise(6, 4, (2, 2), seed=3)
    g = torch.Generator().manual_seed(3)
    first = torch.randn(1, 4, 4, 2, 2, generator=g)[0].transpose(0, 1)
    assert noise.shape == (6, 4, 2, 2)
    assert torch.equal(noise[:4], first)


@pytest.fixture(scope="module")
def sampler_inputs():
    model = tiny_model(seed=4, temporal=True)
    g = torch.Generator().manual_seed(0)
    tokens = torch.randn(1, 257, 32, generator=g)
    return model, tokens, torch.zeros_like(tokens), torch.randn(1, 4, 8, 8, generator=g)


def _run(inputs, poses, noise=None, **settings):
    from motionsuite.pipelines.disco import sampling

    model, tokens, uncond, background = inputs
    calls = []
    out = sampling.sample(
        model,
        tokens,
        uncond,
        poses,
        background,
        sampling.SamplerSettings(guidance=1.5, **settings),
        noise=noise,
        callback=lambda done, total, x0: calls.append((done, total)),
    )
    return out, calls


def test_fewer_frames_than_window(sampler_inputs):
    poses = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    out, calls = _run(sampler_inputs, poses, noise, steps=2, window=16)
    same, _ = _run(sampler_inputs, poses, noise, steps=2, window=3)
    assert out.shape == (3, 4, 8, 8) and torch.isfinite(out).all()
    assert calls[-1] == (2, 2)
    torch.testing.assert_close(out, same)


def test_unaligned_last_window_overwrites_like_upstream(sampler_inputs):
    gen = torch.Generator().manual_seed(3)
    poses, noise = torch.rand(6, 3, 64, 64, generator=gen), torch.randn(6, 4, 8, 8, generator=gen)
    out, calls = _run(sampler_inputs, poses, noise, steps=1, window=4)  # windows 0-3, 2-5
    assert calls[-1] == (2, 2)
    last, _ = _run(sampler_inputs, poses[2:], noise[2:], steps=1, window=4)
    first, _ = _run(sampler_inputs, poses[:4], noise[:4], steps=1, window=4)
    torch.testing.assert_close(out[2:], last)
    torch.testing.assert_close(out[:2], first[:2])


def test_overlap_blends_windows_without_seams(sampler_inputs):
    """Same pose and noise on every frame: frames then differ only by where they sit in their
    window (the temporal conv's zero padding), so separate windows jump at every window border,
    while overlapping windows hand over gradually (no spike at the borders)."""
    frames = 12
    poses = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(4)).expand(frames, -1, -1, -1)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(5)).expand(frames, -1, -1, -1)

    def interior_jumps(out):
        jumps = (out[1:] - out[:-1]).abs().amax(dim=(1, 2, 3))
        return jumps[1:-1]  # the first/last frame of the video are window edges in both modes

    separate, calls = _run(sampler_inputs, poses, noise.clone(), steps=2, window=4, overlap=0)
    assert calls[-1] == (6, 6)  # 3 windows x 2 steps
    blended, calls = _run(sampler_inputs, poses, noise.clone(), steps=2, window=4, overlap=2)
    assert calls[-1] == (10, 10)  # 5 windows (stride 2) x 2 steps
    sep, ble = interior_jumps(separate), interior_jumps(blended)
    assert sep.max() > 1.4 * sep.median()  # seams: the border jumps stand out
    assert ble.max() < 1.2 * ble.median()  # blended: no border stands out
    assert ble.max() < 0.6 * sep.max()


# --- nodes and CLI through a temporal DeepSpeed checkpoint -----------------------------------------


@pytest.fixture(scope="module")
def temporal_weights_dir(tmp_path_factory, tiny_temporal):
    from motionsuite.nodes import disco as nodes
    from motionsuite.pipelines.core import weights

    _, _, _, released = tiny_temporal
    root = tmp_path_factory.mktemp("models_disco_tm")
    write_base_folder(root / nodes.BASE_FOLDER_NAME)
    write_deepspeed_checkpoint(root / "moretiktok_tm_cfg" / "mp_rank_00_model_states.pt", released)
    weights.add_search_dir(nodes.FOLDER, root)
    return root


def test_temporal_nodes_full_graph(temporal_weights_dir):
    from motionsuite.nodes import disco as nodes
    from motionsuite.pipelines.core.errors import InputError
    from test_disco_nodes import run

    (model,) = run(
        nodes.DiscoLoader,
        checkpoint="moretiktok_tm_cfg/mp_rank_00_model_states.pt",
        base_folder=nodes.BASE_FOLDER_NAME,
        precision="fp32",
    )
    assert model.temporal
    image = torch.rand(1, 72, 64, 3)
    mask = torch.zeros(1, 72, 64)
    mask[:, 10:60, 16:48] = 1
    (cond,) = run(nodes.DiscoEncoder, model=model, reference=image, reference_mask=mask, size=64)
    assert cond.cfg_mode == "zero_image"
    poses = torch.rand(5, 64, 64, 3)
    (latent,) = run(
        nodes.DiscoSampler,
        model=model,
        condition=cond,
        poses=poses,
        steps=1,
        seed=3,
        frames_per_window=3,
        overlap=1,
    )
    assert latent["samples"].shape == (5, 4, 8, 8) and torch.isfinite(latent["samples"]).all()
    (frames,) = run(nodes.DiscoDecoder, model=model, latent=latent, batch_size=4)
    assert frames.shape == (5, 64, 64, 3)
    with pytest.raises(InputError, match="overlap"):
        run(
            nodes.DiscoSampler,
            model=model,
            condition=cond,
            poses=poses,
            steps=1,
            frames_per_window=3,
            overlap=3,
        )


def test_cli_temporal_flag(temporal_weights_dir, tmp_path):
    import argparse

    import numpy as np
    from motionsuite.pipelines.core.errors import InputError
    from motionsuite.pipelines.disco import cli
    from PIL import Image

    rng = np.random.default_rng(0)
    poses = tmp_path / "poses"
    poses.mkdir()
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(poses / f"{i:03d}.png")
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "ref.png")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    common = ["--reference", str(tmp_path / "ref.png"), "--poses", str(poses), "--weights-dir"]
    common += [str(temporal_weights_dir), "--steps", "1", "--size", "64", "--precision", "fp32"]
    cli.run(parser.parse_args([*common, "--output", str(tmp_path / "out"), "--temporal", "--window", "2"]))
    assert len(list((tmp_path / "out").glob("*.png"))) == 2
    image_only = {
        k: v
        for k, v in loading.read_checkpoint(
            temporal_weights_dir / "moretiktok_tm_cfg" / "mp_rank_00_model_states.pt"
        ).items()
        if ".tem_" not in k
    }
    write_deepspeed_checkpoint(tmp_path / "w" / "img" / "mp_rank_00_model_states.pt", image_only)
    write_base_folder(tmp_path / "w" / cli.BASE_FOLDER)
    args = [*common, "--output", str(tmp_path / "o2"), "--temporal", "--weights-dir", str(tmp_path / "w")]
    args += ["--checkpoint", "img/mp_rank_00_model_states.pt"]
    with pytest.raises(InputError, match="--temporal needs a temporal"):
        cli.run(parser.parse_args(args))


def test_temporal_safetensors_conversion_and_legacy_pickle(tiny_temporal, tmp_path):
    """A converted temporal checkpoint stays temporal; a pre-zip (legacy) pickle, which cannot be
    memory-mapped, is read normally."""
    base, ckpt, _, released = tiny_temporal
    converted = loading.convert_to_safetensors(ckpt, tmp_path / "tm.safetensors")
    model = loading.load_disco(base, converted, dtype=torch.float16)
    assert model.temporal and model.unet.dtype == torch.float16 and model.clip.dtype == torch.float32
    key = "unet.up_blocks.1.resnets.0.tem_conv.weight"
    torch.testing.assert_close(loading.released_state_dict(model)[key], released[key].half())
    legacy = tmp_path / "legacy" / "mp_rank_00_model_states.pt"
    legacy.parent.mkdir()
    torch.save({"module": released}, legacy, _use_new_zipfile_serialization=False)
    assert loading.load_disco(base, legacy).temporal
