"""DisCo input preparation and pose drawing follow the report's exact rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from motionsuite.pipelines.core.errors import InputError
from motionsuite.pipelines.disco import pose, preprocess


def test_reference_crop_resize_normalise_then_mask():
    image = torch.rand(1, 120, 64, 3)  # portrait: central 64x64 band is used
    mask = torch.zeros(1, 120, 64)
    mask[:, :, :32] = 1  # left half is the person
    out = preprocess.reference_pixels(image, mask)
    assert out.shape == (1, 3, 224, 224)
    band = image[:, 28:92].permute(0, 3, 1, 2)
    expected = F.interpolate(band, size=(224, 224), mode="bicubic", align_corners=False, antialias=False)
    mean = torch.tensor(preprocess.CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(preprocess.CLIP_STD).view(1, 3, 1, 1)
    expected = (expected - mean) / std
    torch.testing.assert_close(out[..., :100], expected[..., :100])  # inside the mask: unchanged
    assert out[..., 124:].abs().max() == 0  # outside: 0 after normalisation (CLIP-mean grey)


def test_background_blanks_person_and_poses_stay_unit_range():
    image = torch.ones(1, 64, 64, 3)
    mask = torch.zeros(1, 64, 64)
    mask[:, :, 32:] = 1
    bg = preprocess.background_pixels(image, mask, 64)
    assert bg[..., :30].min() == 1 and bg[..., 34:].abs().max() == 0
    poses = preprocess.pose_pixels(torch.rand(2, 80, 128, 3), 64)
    assert poses.shape == (2, 3, 64, 64) and poses.min() >= 0 and poses.max() <= 1
    with pytest.raises(InputError, match="2 masks for 1"):
        preprocess.reference_pixels(image, torch.zeros(2, 64, 64))


def test_coco_to_openpose_neck_and_drawing_order():
    coco = np.full((17, 3), -1.0)
    coco[5] = [40, 30, 1]  # left shoulder
    coco[6] = [20, 30, 1]  # right shoulder
    op = pose.coco_to_openpose(coco)
    np.testing.assert_allclose(op[1], [30, 30, 1])  # neck = mean of shoulders
    np.testing.assert_allclose(op[5], coco[5])
    np.testing.assert_allclose(op[2], coco[6])
    canvas = pose.draw_pose(op, 64, 64)
    # joints are drawn first, then limbs blended 0.4/0.6 over them: the neck joint (colour 1)
    # ends blended with the neck–shoulder limbs, never at full colour.
    assert tuple(canvas[30, 30]) != tuple(pose.COLORS[1])
    limb_mid = canvas[30, 25]  # on limb 0 (neck → right shoulder), colour 0 red at 0.6
    assert limb_mid[0] >= 150 and limb_mid[2] == 0


def test_latent_preview_shape_and_range():
    from motionsuite.pipelines.disco import sampling

    preview = sampling.latent_preview(torch.randn(4, 8, 6) * 5)
    assert preview.shape == (8, 6, 3) and preview.min() >= 0 and preview.max() <= 1
