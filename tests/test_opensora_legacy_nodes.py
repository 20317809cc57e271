"""Open-Sora 1.1 / 1.0 and PixArt nodes run as ComfyUI runs them, on tiny released-layout weights.

The checkpoints are written in the published formats (v1.1 HF folder, v1.0 training ``.pth``,
PixArt ``{"state_dict"}`` ``.pth``, diffusers SD-VAE folders; see ``opensora_legacy_tiny``) and
loaded by the same node code a user runs. Prompts go through the shared Open-Sora text encoder
node (300 tokens), which the legacy sampler fits to each model's caption length.
"""

from __future__ import annotations

import pytest
import torch
from motionsuite.nodes import opensora as v12_nodes
from motionsuite.nodes import opensora_legacy as nodes
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError
from motionsuite.pipelines.opensora_legacy import generate
from opensora_legacy_tiny import write_all

SIZE = dict(custom_width=32, custom_height=48)
LABELS = {
    "1.1": "v1.1 (STDiT2, video)",
    "1.0": "v1.0 (STDiT, video)",
    "pixart-alpha": "PixArt-α (image)",
    "pixart-sigma": "PixArt-Σ (image)",
}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    models, t5 = write_all(tmp_path_factory.mktemp("legacy"))
    weights.add_search_dir(nodes.FOLDER, models)
    weights.add_search_dir(v12_nodes.T5_FOLDER, t5)
    return models, t5


def run(cls, **kwargs):
    spec = cls.INPUT_TYPES()
    allowed = set(spec["required"]) | set(spec.get("optional", {}))
    assert set(kwargs) <= allowed, set(kwargs) - allowed
    for name, (_, opts) in {**spec["required"], **spec.get("optional", {})}.items():
        assert opts.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    assert isinstance(out, tuple) and len(out) == len(cls.RETURN_TYPES)
    return out


def load(version: str, **kw):
    return run(nodes.OpenSoraLegacyLoader, version=LABELS[version], precision="fp32", **{**SIZE, **kw})


@pytest.fixture(scope="module")
def cond(dirs):
    return run(
        v12_nodes.OpenSoraTextEncoder, t5="t5-v1_1-xxl", prompt="a cat runs on the beach",
        aesthetic_score=0.0, precision="fp32",
    )  # fmt: skip


@pytest.fixture(scope="module")
def v11(dirs):
    return load("1.1", frames=4)


def test_loader_lists_released_names_and_defaults(dirs, v11):
    spec = nodes.OpenSoraLegacyLoader.INPUT_TYPES()["required"]
    assert list(LABELS.values()) == spec["version"][0]
    for name in ("OpenSora-STDiT-v2-stage3", "OpenSora-v1-HQ-16x512x512.pth", "PixArt-XL-2-512x512.pth"):
        assert name in spec["checkpoint"][0]
    assert {"sd-vae-ft-ema", "sdxl-vae"} <= set(spec["vae"][0])
    assert "sd-vae-ft-ema" not in spec["checkpoint"][0]
    model, width, height, frames, fps = v11
    assert (width, height, frames, fps) == (32, 48, 4, 8.0)  # v1.1 videos are saved at 24 / 3 fps
    assert model.text_length == 200 and model.vae.scaling_factor == pytest.approx(0.18215)
    assert next(model.dit.parameters()).device.type == "cpu"


def test_v11_text_to_video_is_reproducible_and_decodes_like_core_vae(v11, cond):
    model = v11[0]
    pos, neg = cond
    (latent,) = run(nodes.OpenSoraLegacySampler, model=model, positive=pos, negative=neg, seed=5, steps=3)
    assert latent["samples"].shape == (4, 4, 6, 4) and latent["num_frames"] == 4
    (again,) = run(nodes.OpenSoraLegacySampler, model=model, positive=pos, seed=5, steps=3)
    assert torch.equal(latent["samples"], again["samples"])  # CPU noise, null caption = empty negative
    (frames,) = run(nodes.OpenSoraLegacyDecoder, model=model, latent=latent, batch_size=3)
    assert frames.shape == (4, 48, 32, 3) and frames.min() >= 0 and frames.max() <= 1
    # ComfyUI's VAE Decode runs the VAE on the LATENT as is (unscaled, frames as the batch)
    with torch.no_grad():
        direct = model.vae.module.decode(latent["samples"]).sample
    assert torch.allclose(frames, ((direct + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1), atol=1e-5)


def test_v11_first_frame_conditioning_keeps_the_image(v11, cond):
    model = v11[0]
    image = torch.rand(1, 60, 40, 3)
    (ref,) = run(nodes.OpenSoraLegacyEncoder, model=model, images=image, fit="crop")
    assert ref["samples"].shape == (1, 4, 6, 4)
    (latent,) = run(
        nodes.OpenSoraLegacySampler, model=model, positive=cond[0], steps=4, mode="first frame", reference=ref
    )
    first = latent["samples"][0] * model.vae.scaling_factor
    # held clean, noised once to the last (least noisy) level at the end, as upstream
    assert (first - ref["samples"][0] * model.vae.scaling_factor).abs().max() < 0.2
    (last,) = run(
        nodes.OpenSoraLegacySampler, model=model, positive=cond[0], steps=4, mode="mask strategy",
        mask_strategy="0,0,0,-1,1", reference=ref,
    )  # fmt: skip
    assert not torch.equal(last["samples"], latent["samples"])


@pytest.mark.parametrize(
    "version,length,images", [("1.0", 120, 2), ("pixart-alpha", 120, 2), ("pixart-sigma", 300, 1)]
)
def test_other_versions_generate(dirs, cond, version, length, images):
    model, width, height, frames, _ = load(version, frames=images if version != "1.0" else 3)
    assert model.text_length == length
    (latent,) = run(nodes.OpenSoraLegacySampler, model=model, positive=cond[0], steps=2, seed=1)
    assert latent["samples"].shape == (frames, 4, 6, 4)
    (out,) = run(nodes.OpenSoraLegacyDecoder, model=model, latent=latent)
    assert out.shape == (frames, height, width, 3) and torch.isfinite(out).all()
    if version == "pixart-sigma":
        assert model.vae.scaling_factor == pytest.approx(0.13025)  # the SDXL VAE's own factor


def test_trained_size_from_file_name(dirs):
    model, width, height, frames, fps = run(
        nodes.OpenSoraLegacyLoader,
        version=LABELS["1.0"],
        resolution="trained size",
        frames=1,
        precision="fp32",
    )
    assert (width, height, frames) == (512, 512, 1)
    _, width, height, _, _ = load("1.1", custom_width=0, custom_height=0, resolution="144p")
    assert (width, height) == (256, 144)


def test_fit_text_cuts_and_pads():
    y, mask = torch.randn(1, 300, 8), torch.zeros(1, 300, dtype=torch.long)
    mask[0, :7] = 1
    cut_y, cut_mask = generate.fit_text(y, mask, 120)
    assert cut_y.shape == (1, 120, 8) and torch.equal(cut_y, y[:, :120]) and int(cut_mask.sum()) == 7
    pad_y, pad_mask = generate.fit_text(y[:, :100], mask[:, :100], 120)
    assert pad_y.shape == (1, 120, 8) and pad_y[:, 100:].abs().sum() == 0 and int(pad_mask.sum()) == 7


def test_bad_inputs(dirs, v11, cond):
    model = v11[0]
    with pytest.raises(MissingWeightsError, match="OpenSora-STDiT-v2-stage3"):
        run(nodes.OpenSoraLegacyLoader, version=LABELS["1.1"], checkpoint="missing.pth")
    with pytest.raises(MissingWeightsError, match="huggingface.co/stabilityai/sd-vae-ft-ema"):
        run(nodes.OpenSoraLegacyLoader, version=LABELS["1.1"], vae="nowhere")
    with pytest.raises(InputError, match="at least 16 pixels"):
        load("1.1", custom_width=8, custom_height=48)
    with pytest.raises(InputError, match="give both"):
        load("1.1", custom_width=32, custom_height=0)
    with pytest.raises(InputError, match="needs a reference"):
        run(nodes.OpenSoraLegacySampler, model=model, positive=cond[0], steps=2, mode="first frame")
    bad_ref = {"samples": torch.zeros(1, 4, 8, 8)}
    with pytest.raises(InputError, match="encode the reference"):
        run(nodes.OpenSoraLegacySampler, model=model, positive=cond[0], mode="first frame", reference=bad_ref)
    ref = {"samples": torch.zeros(2, 4, 6, 4)}
    with pytest.raises(InputError, match="one frame number per image"):
        run(nodes.OpenSoraLegacySampler, model=model, positive=cond[0], mode="keyframes", keyframes="0",
            reference=ref)  # fmt: skip
    with pytest.raises(InputError, match="IDDPM"):
        run(nodes.OpenSoraLegacySampler, model=model, positive=cond[0], sampler="dpm-solver++",
            mode="first frame", reference=ref)  # fmt: skip
    with pytest.raises(InputError, match="not the empty negative"):
        run(nodes.OpenSoraLegacySampler, model=model, positive=cond[1])
    with pytest.raises(InputError, match="Open-Sora 1.2 decoder"):
        run(nodes.OpenSoraLegacyDecoder, model=model, latent={"samples": torch.zeros(1, 4, 5, 6, 4)})
    pixart = load("pixart-alpha", frames=1)[0]
    with pytest.raises(InputError, match="no image/video conditioning"):
        run(nodes.OpenSoraLegacySampler, model=pixart, positive=cond[0], mode="first frame", reference=ref)
    with pytest.raises(InputError, match="at least 2 steps"):
        run(nodes.OpenSoraLegacySampler, model=pixart, positive=cond[0], steps=1)
    with pytest.raises(InputError, match="legacy loader"):
        run(nodes.OpenSoraLegacySampler, model=object(), positive=cond[0])


class FakeComfyVAE:
    """What ComfyUI's VAE object does for an SD VAE: IMAGE in [0,1] ↔ unscaled latents."""

    def __init__(self, module):
        self.module = module

    def encode(self, pixels):
        return self.module.encode(pixels.permute(0, 3, 1, 2) * 2 - 1).latent_dist.mode()

    def decode(self, latents):
        return ((self.module.decode(latents).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)


def test_comfy_vae_input_replaces_the_vae_folder(v11, cond):
    folder_model = v11[0]
    model = load("1.1", frames=4, comfy_vae=FakeComfyVAE(folder_model.vae.module))[0]
    assert model.vae.scaling_factor == pytest.approx(0.18215)
    (ref,) = run(nodes.OpenSoraLegacyEncoder, model=model, images=torch.rand(2, 48, 32, 3))
    (latent,) = run(nodes.OpenSoraLegacySampler, model=model, positive=cond[0], steps=2, mode="first frame",
                    reference=ref)  # fmt: skip
    (frames,) = run(nodes.OpenSoraLegacyDecoder, model=model, latent=latent)
    (expected,) = run(nodes.OpenSoraLegacyDecoder, model=folder_model, latent=latent)
    assert frames.shape == (4, 48, 32, 3) and torch.allclose(frames, expected, atol=1e-5)
    with pytest.raises(InputError, match="ComfyUI VAE"):
        load("1.1", comfy_vae=object())
