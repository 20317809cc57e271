"""Open-Sora nodes run as ComfyUI runs them (INPUT_TYPES → FUNCTION) on tiny released-layout weights."""

from __future__ import annotations

import pytest
import torch
from motionsuite.nodes import opensora as nodes
from motionsuite.pipelines.core import weights
from motionsuite.pipelines.core.errors import InputError, MissingWeightsError
from motionsuite.pipelines.opensora import aspect, text
from opensora_tiny import write_all

SIZE = dict(custom_width=32, custom_height=32)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    dit_dir, t5_dir = write_all(tmp_path_factory.mktemp("models"))
    weights.add_search_dir(nodes.FOLDER, dit_dir)
    weights.add_search_dir(nodes.T5_FOLDER, t5_dir)
    return dit_dir, t5_dir


def run(cls, **kwargs):
    spec = cls.INPUT_TYPES()
    allowed = set(spec["required"]) | set(spec.get("optional", {}))
    assert set(kwargs) <= allowed, set(kwargs) - allowed
    for name, (_, opts) in {**spec["required"], **spec.get("optional", {})}.items():
        assert opts.get("tooltip"), f"{cls.__name__}.{name} has no tooltip"
    out = getattr(cls(), cls.FUNCTION)(**kwargs)
    assert isinstance(out, tuple) and len(out) == len(cls.RETURN_TYPES)
    return out


@pytest.fixture(scope="module")
def model(dirs):
    spec = nodes.OpenSoraLoader.INPUT_TYPES()["required"]
    assert nodes.DIT_DEFAULT in spec["dit"][0] and nodes.VAE_DEFAULT in spec["vae"][0]
    model, width, height, frames, fps = run(
        nodes.OpenSoraLoader,
        dit=nodes.DIT_DEFAULT,
        vae=nodes.VAE_DEFAULT,
        frames=17,
        precision="fp32",
        **SIZE,
    )
    assert (width, height, frames, fps) == (32, 32, 17, 24.0)
    assert next(model.dit.parameters()).device.type == "cpu"
    return model


@pytest.fixture(scope="module")
def conditioning(dirs):
    pos, neg = run(
        nodes.OpenSoraTextEncoder, t5=nodes.T5_DEFAULT, prompt="a cat runs on the beach", precision="fp32"
    )
    return pos, neg


def test_text_encoder_keeps_mask_and_adds_scores_once(conditioning):
    pos, neg = conditioning
    y, extra = pos[0]
    assert y.shape == (1, 300, 32) and extra["attention_mask"].shape == (1, 300)
    assert int(extra["attention_mask"].sum()) == 9  # 6 words + "aesthetic score: 6.5."
    assert extra["opensora_prompt"].endswith("aesthetic score: 6.5.")
    assert neg[0][1]["opensora_null"]
    assert text.add_scores("x aesthetic score: 5.0.", 6.5, 4, "pan left") == (
        "x aesthetic score: 5.0. motion score: 4.0. camera motion: pan left."
    )


def test_text_to_video_and_decoder_give_exact_frames(model, conditioning):
    pos, neg = conditioning
    (latent,) = run(nodes.OpenSoraSampler, model=model, positive=pos, negative=neg, seed=3, steps=2)
    assert latent["samples"].shape == (1, 4, 5, 4, 4) and latent["num_frames"] == 17
    (again,) = run(nodes.OpenSoraSampler, model=model, positive=pos, seed=3, steps=2)
    assert torch.equal(latent["samples"], again["samples"])  # CPU noise: reproducible
    (frames,) = run(nodes.OpenSoraDecoder, model=model, latent=latent)
    assert frames.shape == (17, 32, 32, 3) and frames.min() >= 0 and frames.max() <= 1


@pytest.mark.parametrize("mode", ["first frame", "first + last frame", "keyframes"])
def test_image_conditioning_keeps_reference_latents(model, conditioning, mode):
    images = torch.rand(2, 70, 50, 3)  # other size: the encoder fits it
    (ref,) = run(nodes.OpenSoraEncoder, model=model, images=images[:1], more_images=images[1:])
    assert ref["samples"].shape == (2, 4, 1, 4, 4)
    (latent,) = run(
        nodes.OpenSoraSampler, model=model, positive=conditioning[0], steps=2, mode=mode, reference=ref,
        keyframes="0,16",
    )  # fmt: skip
    z, refs = latent["samples"], ref["samples"]
    assert torch.allclose(z[0, :, 0], refs[0, :, 0])
    if mode != "first frame":
        assert torch.allclose(z[0, :, 4], refs[1, :, 0])


def test_extend_and_mask_strategy(model, conditioning):
    clip = torch.rand(17, 32, 32, 3)
    (ref,) = run(nodes.OpenSoraEncoder, model=model, images=clip, as_video=True)
    assert ref["samples"].shape == (1, 4, 5, 4, 4) and ref["num_frames"] == 17
    (ext,) = run(
        nodes.OpenSoraSampler, model=model, positive=conditioning[0], steps=1, mode="extend", reference=ref,
        extend_frames=5,
    )  # fmt: skip
    assert torch.allclose(ext["samples"][0, :, :2], ref["samples"][0, :, -2:])
    (ms,) = run(
        nodes.OpenSoraSampler, model=model, positive=conditioning[0], steps=1, mode="mask strategy",
        reference=ref, mask_strategy="0,0,0,0,2",
    )  # fmt: skip
    assert torch.allclose(ms["samples"][0, :, :2], ref["samples"][0, :, :2])


def test_bad_inputs(model, conditioning, dirs):
    pos = conditioning[0]
    with pytest.raises(InputError, match="needs a reference"):
        run(nodes.OpenSoraSampler, model=model, positive=pos, steps=1, mode="first frame")
    with pytest.raises(InputError, match="attention mask"):
        run(nodes.OpenSoraSampler, model=model, positive=[[pos[0][0], {}]], steps=1)
    with pytest.raises(InputError, match="keyframe positions"):
        ref = {"samples": torch.zeros(2, 4, 1, 4, 4)}
        run(nodes.OpenSoraSampler, model=model, positive=pos, steps=1, mode="keyframes", reference=ref,
            keyframes="0")  # fmt: skip
    with pytest.raises(InputError, match="reference latents are"):
        bad = {"samples": torch.zeros(1, 4, 1, 3, 3)}
        run(nodes.OpenSoraSampler, model=model, positive=pos, steps=1, mode="first frame", reference=bad)
    with pytest.raises(InputError, match="cannot give"):
        run(nodes.OpenSoraDecoder, model=model, latent={"samples": torch.zeros(1, 4, 5, 4, 4)}, frames=40)
    with pytest.raises(InputError, match="LATENT"):
        run(nodes.OpenSoraDecoder, model=model, latent=torch.zeros(1))
    with pytest.raises(InputError, match="prompt is empty"):
        run(nodes.OpenSoraTextEncoder, t5=nodes.T5_DEFAULT, prompt="  ")
    with pytest.raises(InputError, match="IMAGE"):
        run(nodes.OpenSoraEncoder, model=model, images=torch.zeros(4, 4))
    with pytest.raises(InputError, match="as_video off"):
        img = torch.rand(1, 32, 32, 3)
        run(nodes.OpenSoraEncoder, model=model, images=img, as_video=True, more_images=img)
    with pytest.raises(InputError, match="multiples of 16"):
        run(
            nodes.OpenSoraLoader,
            dit=nodes.DIT_DEFAULT,
            vae=nodes.VAE_DEFAULT,
            custom_width=50,
            custom_height=48,
        )
    with pytest.raises(InputError, match="single latent frame"):
        run(nodes.OpenSoraLoader, dit=nodes.DIT_DEFAULT, vae=nodes.VAE_DEFAULT, frames=3, **SIZE)
    with pytest.raises(MissingWeightsError, match="t5-v1_1-xxl"):
        run(nodes.OpenSoraTextEncoder, t5="missing-t5", prompt="a cat")


def test_tables_label_orientation():
    assert aspect.image_size("240p", "16:9 landscape") == (240, 426)
    assert aspect.image_size("240p", "9:16 portrait") == (426, 240)
    assert aspect.image_size("720p", "1:1 square") == (960, 960)
    assert aspect.frame_count("4s") == 102 and aspect.latent_index(16) == 4 and aspect.latent_index(17) == 5
    with pytest.raises(InputError, match="aspect ratio"):
        aspect.image_size("240p", "7:5")
