"""Parity of our FSRT networks and batched, chunked animation with upstream, on identical random weights.

Fixture ``fixtures/fsrt/parity_fsrt.npz`` was made with upstream andrerochow/fsrt @ b895383
(torch 2.14.1 CPU; a scratch fixture script outside the repo). Every network was
filled with ``parity_utils.random_state_dict(net, seed + i)``, i over the sorted names decoder,
encoder, expression_encoder, kp_detector (seed 2024), in eval mode:
- per network, released widths (``FSRT(cfg['model'])`` of runs/vox256_2Source, ``KPDetector()``,
  ``ExpressionEncoder(256, 35)``): keypoints / feature map / heatmap of two 128x128 images, their
  expression vectors, the latent z of two random 64x64 sources with random keypoints and
  expressions, and the decoder's colours for 300 random rays of two frames;
- end to end: upstream ``demo.py:make_animation`` (``.cuda()`` made a no-op, IO imports stubbed),
  ``max_num_pixels=700``, on 32x32 images with a small detector (block_expansion 8, max_features 64,
  3 blocks, scale 0.5; the encoder/decoder keep the released widths, hence the same weights):
  6 driving frames with 2 sources, relative + adapt_scale ("rel2"), and with 1 source, absolute ("abs1").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from motionsuite.models.fsrt.config import FSRTConfig, build_networks
from motionsuite.pipelines.fsrt import FSRTModel, animate_tensors
from motionsuite.pipelines.fsrt.animate import pixel_grid
from parity_utils import max_abs_diff, random_state_dict

FIXTURE = Path(__file__).parent / "fixtures" / "fsrt" / "parity_fsrt.npz"
TOL = 1e-4
SMALL_DETECTOR = FSRTConfig(kp_block_expansion=8, kp_max_features=64, kp_num_blocks=3, kp_scale_factor=0.5,
                            image_size=32)


def _networks(cfg: FSRTConfig, seed: int, reuse: dict | None = None) -> dict:
    """Seeded networks; those in ``reuse`` with the same state-dict shapes get identical weights
    from the same seed, so they are taken as they are (saves building 45M parameters twice)."""
    nets = build_networks(cfg)
    for i, name in enumerate(sorted(nets)):
        if reuse is not None and _same_shapes(nets[name], reuse[name]):
            nets[name] = reuse[name]
            continue
        nets[name].load_state_dict(random_state_dict(nets[name], seed + i))
        nets[name].eval()
    return nets


def _same_shapes(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape for k in sa)


@pytest.fixture(scope="module")
def data() -> dict:
    return {k: torch.from_numpy(v) for k, v in np.load(FIXTURE).items()}


@pytest.fixture(scope="module")
def released(data) -> dict:
    return _networks(FSRTConfig(), int(data["seed"]))


@torch.no_grad()
def test_keypoint_detector_and_expression_encoder(data, released):
    images = data["kpnet_images_u8"].float() / 255
    kp, features, heatmap = released["kp_detector"](images)
    assert max_abs_diff(kp, data["kpnet_kp"]) <= TOL
    assert max_abs_diff(features, data["kpnet_feature_map"]) <= TOL
    assert max_abs_diff(heatmap, data["kpnet_heatmap"]) <= TOL
    expression = released["expression_encoder"](features, heatmap)
    assert expression.abs().max() > 1e-3
    assert max_abs_diff(expression, data["kpnet_expression"]) <= TOL


@torch.no_grad()
def test_encoder_two_sources(data, released):
    enc = released["encoder"]
    z = enc(data["enc_images"][0], data["enc_kp"][0], pixel_grid(64), data["enc_expression"][0])
    assert z.shape == (1, 2 * 8 * 8, 768)
    assert max_abs_diff(z, data["enc_z"]) <= TOL


@torch.no_grad()
def test_decoder_with_and_without_cached_keys_values(data, released):
    dec = released["decoder"]
    rays = data["dec_pixels"].shape[1]
    queries = dec.queries(dec.encode_keypoints(data["dec_kp"])[:, None].expand(-1, rays, -1),
                          dec.encode_pixels(data["dec_pixels"]),
                          data["dec_expression"][:, None].expand(-1, rays, -1))
    z = data["enc_z"]
    assert max_abs_diff(dec(queries, z=z.expand(2, -1, -1)), data["dec_rgb"]) <= TOL
    assert max_abs_diff(dec(queries, kvs=dec.latent_keys_values(z)), data["dec_rgb"]) <= TOL


@pytest.mark.parametrize(
    ("name", "sources", "relative", "chunk"), [("rel2", 2, True, 1000), ("abs1", 1, False, 6144)]
)
def test_six_animated_frames(data, released, name, sources, relative, chunk):
    """Chunks span frame boundaries (1000 rays) or hold all 6 frames at once (6144)."""
    model = FSRTModel(**_networks(SMALL_DETECTOR, int(data["seed"]), reuse=released), config=SMALL_DETECTOR)
    images = data["e2e_images_u8"].float() / 255
    frames = animate_tensors(model, images[:sources], images[2:], relative=relative, adapt_scale=relative,
                             max_num_pixels=chunk, batch_size=4)
    expected = data[f"e2e_{name}"]
    assert frames.std() > 0.05
    assert max_abs_diff(frames.permute(0, 2, 3, 1), expected) <= TOL
