"""CMP, conditional motion propagation: sparse keypoint displacements -> dense optical flow.

The network from Zhan et al. (CVPR 2019), as released in MOFA-Video's ``ckpt_iter_42000.pth.tar``
(``resnet50_vip+mpii_liteflow``) and used by DisPose for the dense motion field:

* image encoder: ResNet-50 whose layer3 / layer4 3x3 convs are dilated 2 / 4 with stride 1 in
  *every* block (output stride 8), then a 1x1 conv to 256 channels; it also hands the stride-2
  stem and the stride-4 layer1 features to the decoder;
* flow encoder: a shallow conv net on (sparse flow, mask), 4 -> 16 channels at stride 8;
* decoder: four pooled branches (1, 2, 4, 8) fused, then two skip-layer fusions up to stride 2 and a
  1x1 head with 2 x 99 logits (x and y displacement bins);
* :func:`fuse_flow`: softmax expectation over the 99 bins, each covering 100/99 px in [-50, 50].

Key names are those of the checkpoint's ``state_dict`` without the ``module.`` prefix. No
CUDA-only call anywhere: the module follows whatever device its weights are on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride and dilation on the 3x3 conv)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, dilation: int = 1, downsample=None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class DilatedResNet50(nn.Module):
    """ResNet-50 at output stride 8; returns (features /8, stem /2, layer1 /4)."""

    def __init__(self, output_dim: int = 256) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self._cin = 64
        self.layer1 = self._layer(64, 3, stride=1, dilation=1)
        self.layer2 = self._layer(128, 4, stride=2, dilation=1)
        self.layer3 = self._layer(256, 6, stride=1, dilation=2)
        self.layer4 = self._layer(512, 3, stride=1, dilation=4)
        self.conv5 = nn.Conv2d(2048, output_dim, 1)

    def _layer(self, planes: int, blocks: int, stride: int, dilation: int) -> nn.Sequential:
        down = None
        if stride != 1 or self._cin != planes * 4:
            down = nn.Sequential(
                nn.Conv2d(self._cin, planes * 4, 1, stride, bias=False), nn.BatchNorm2d(planes * 4)
            )
        layers = [Bottleneck(self._cin, planes, stride, dilation, down)]
        self._cin = planes * 4
        layers += [Bottleneck(self._cin, planes, 1, dilation) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stem = F.relu(self.bn1(self.conv1(img)))
        layer1 = self.layer1(self.maxpool(stem))
        x = self.layer4(self.layer3(self.layer2(layer1)))
        return self.conv5(x), stem, layer1


class ShallowNet8x(nn.Module):
    """(sparse flow, mask) -> 16 channels at stride 8."""

    def __init__(self, input_dim: int = 4, output_dim: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(input_dim, 16, 5, 2, 2),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(16, output_dim, 3, padding=1),
            nn.BatchNorm2d(output_dim),
            nn.ReLU(),
            nn.AvgPool2d(2, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


def _branch(cin: int, pool: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.MaxPool2d(pool, pool)] if pool > 1 else []
    return nn.Sequential(
        *layers, *_conv_bn_relu(cin, 128), *_conv_bn_relu(128, 128), *_conv_bn_relu(128, 128)
    )


class SkipLayerDecoder(nn.Module):
    """Multi-scale context at stride 8, then fusion with layer1 (/4) and stem (/2) features."""

    def __init__(self, input_dim: int = 272, output_dim: int = 198) -> None:
        super().__init__()
        self.decoder1 = _branch(input_dim, 1)
        self.decoder2 = _branch(input_dim, 2)
        self.decoder4 = _branch(input_dim, 4)
        self.decoder8 = _branch(input_dim, 8)
        self.fusion8 = nn.Sequential(*_conv_bn_relu(512, 256))
        self.skipconv4 = nn.Sequential(*_conv_bn_relu(256, 128))
        self.fusion4 = nn.Sequential(*_conv_bn_relu(256 + 128, 128))
        self.skipconv2 = nn.Sequential(*_conv_bn_relu(64, 32))
        self.fusion2 = nn.Sequential(*_conv_bn_relu(128 + 32, 64))
        self.head = nn.Conv2d(64, output_dim, 1)

    @staticmethod
    def _up(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=ref.shape[-2:], mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor, stem: torch.Tensor, layer1: torch.Tensor) -> torch.Tensor:
        x1 = self.decoder1(x)
        ctx = [x1] + [self._up(b(x), x1) for b in (self.decoder2, self.decoder4, self.decoder8)]
        f8 = self.fusion8(torch.cat(ctx, dim=1))
        f4 = self.fusion4(torch.cat([self._up(f8, layer1), self.skipconv4(layer1)], dim=1))
        f2 = self.fusion2(torch.cat([self._up(f4, stem), self.skipconv2(stem)], dim=1))
        return self.head(f2)


def fuse_flow(logits: torch.Tensor, nbins: int = 99, fmax: float = 50.0) -> torch.Tensor:
    """(B, 2*nbins, h, w) bin logits -> (B, 2, h, w) flow as the softmax-weighted bin centres."""
    step = 2 * fmax / nbins
    centres = torch.arange(nbins, device=logits.device, dtype=logits.dtype) * step - fmax + step / 2
    centres = centres.view(1, -1, 1, 1)
    fx = (logits[:, :nbins].softmax(dim=1) * centres).sum(dim=1, keepdim=True)
    fy = (logits[:, nbins:].softmax(dim=1) * centres).sum(dim=1, keepdim=True)
    return torch.cat([fx, fy], dim=1)


class CMP(nn.Module):
    """Conditional motion propagation network (``ckpt_iter_42000.pth.tar`` layout)."""

    def __init__(self, img_enc_dim: int = 256, sparse_enc_dim: int = 16, nbins: int = 99, fmax: float = 50.0):
        super().__init__()
        self.image_encoder = DilatedResNet50(img_enc_dim)
        self.flow_encoder = ShallowNet8x(4, sparse_enc_dim)
        self.flow_decoder = SkipLayerDecoder(img_enc_dim + sparse_enc_dim, 2 * nbins)
        self.nbins, self.fmax = nbins, fmax

    def forward(self, image: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        """Raw logits: ``image`` (B,3,H,W) in [-1,1], ``sparse`` (B,4,H,W) = (flow xy, mask xy)."""
        feats, stem, layer1 = self.image_encoder(image)
        return self.flow_decoder(torch.cat([feats, self.flow_encoder(sparse)], dim=1), stem, layer1)

    def flow(self, image01: torch.Tensor, sparse: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Dense flow (B,2,H,W) in pixels of the input size from an image in [0,1] and a sparse field."""
        dtype = self.head_dtype
        logits = self(image01.to(dtype) * 2 - 1, torch.cat([sparse, mask], dim=1).to(dtype))
        flow = fuse_flow(logits.float(), self.nbins, self.fmax)
        if flow.shape[-2:] != image01.shape[-2:]:
            flow = F.interpolate(flow, size=image01.shape[-2:], mode="bilinear", align_corners=True)
        return flow

    @property
    def head_dtype(self) -> torch.dtype:
        return self.flow_decoder.head.weight.dtype
