"""BiSeNet face parser (Yu et al. 2018, "BiSeNet"), as trained on CelebAMask-HQ by face-parsing.PyTorch.

Part swap can take its blend mask from this supervised parser instead of the learned parts
("--supervised" upstream). The network: a ResNet-18 context path whose 1/16 and 1/32 features are
refined by attention modules (channel attention from a global pool) and upsampled, fused with the
1/8 features (the spatial path is replaced by ResNet's 1/8 output), and a classifier whose logits
are upsampled to the input size (bilinear, align_corners=True). Two auxiliary heads exist only for
training; they are kept so the released ``79999_iter.pth`` loads strictly.

Class order (CelebAMask-HQ as face-parsing.PyTorch): ``CLASSES`` below. The network expects
ImageNet-normalised RGB, 512x512 in training. The ResNet is built empty: the released parser file
holds its weights, so nothing is downloaded (upstream fetched ImageNet ResNet-18 in the constructor).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm import fast_kernels as fast

CLASSES = (
    "background",
    "skin",
    "l_brow",
    "r_brow",
    "l_eye",
    "r_eye",
    "eye_g",
    "l_ear",
    "r_ear",
    "ear_r",
    "nose",
    "mouth",
    "u_lip",
    "l_lip",
    "neck",
    "neck_l",
    "cloth",
    "hair",
    "hat",
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class BasicBlock(fast.CachedFolding):
    """ResNet basic block; the 1x1 projection shortcut exists when the shape changes.

    At inference the BatchNorms are folded into their convs, and wide 3x3 convs run as Winograd on
    the CPU (:mod:`models.fomm.fast_kernels`); training takes the plain layers.
    """

    cpu_only = (2, 5)  # the Winograd transforms in :meth:`_kernels`

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            if cin != cout or stride != 1
            else None
        )

    def fold_sources(self) -> tuple[torch.Tensor | None, ...]:
        shortcut = () if self.downsample is None else (self.downsample[0].weight,
                                                        *fast.norm_tensors(self.downsample[1]))
        return (self.conv1.weight, *fast.norm_tensors(self.bn1), self.conv2.weight,
                *fast.norm_tensors(self.bn2), *shortcut)

    def _kernels(self) -> tuple[torch.Tensor | None, ...]:
        def build() -> tuple[torch.Tensor | None, ...]:
            w1, b1 = fast.fold(self.conv1, self.bn1)
            w2, b2 = fast.fold(self.conv2, self.bn2)
            wd = bd = None
            if self.downsample is not None:
                wd, bd = fast.fold(self.downsample[0], self.downsample[1])
            u1, u2 = fast.winograd_weight(self.conv1, w1), fast.winograd_weight(self.conv2, w2)
            return w1, b1, u1, w2, b2, u2, wd, bd

        return self.cached(build)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norms = (self.bn1, self.bn2) + (() if self.downsample is None else (self.downsample[1],))
        if fast.active(self) and all(fast.foldable(n) for n in norms):
            w1, b1, u1, w2, b2, u2, wd, bd = self._kernels()
            out = fast.conv(F.relu_(fast.conv(x, self.conv1, w1, b1, u1)), self.conv2, w2, b2, u2)
            shortcut = x if wd is None else F.conv2d(x, wd, bd, self.downsample[0].stride)
            return F.relu_(out.add_(shortcut))
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


def max_pool_3x3_s2(x: torch.Tensor) -> torch.Tensor:
    """``max_pool2d(x, 3, stride=2, padding=1)`` as two separable passes of strided maxima.

    Same values (a maximum is exact); 4x faster on the CPU than the pooling kernel for the stem's
    64-channel 256x256 map, which also builds argmax indices it does not need.
    """
    h, w = x.shape[-2:]
    xp = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    rows = torch.maximum(torch.maximum(xp[:, :, 0:h:2], xp[:, :, 1 : h + 1 : 2]), xp[:, :, 2 : h + 2 : 2])
    return torch.maximum(torch.maximum(rows[..., 0:w:2], rows[..., 1 : w + 1 : 2]), rows[..., 2 : w + 2 : 2])


class ResNet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 feature maps."""

    def __init__(self, base: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, base, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths = [base, base, 2 * base, 4 * base, 8 * base]
        for i in range(1, 5):
            stride = 1 if i == 1 else 2
            blocks = nn.Sequential(
                BasicBlock(widths[i - 1], widths[i], stride), BasicBlock(widths[i], widths[i])
            )
            self.add_module(f"layer{i}", blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = max_pool_3x3_s2(x) if fast.active(self) else self.maxpool(x)
        feat8 = self.layer2(self.layer1(x))
        feat16 = self.layer3(feat8)
        return feat8, feat16, self.layer4(feat16)


class ConvBNReLU(fast.CachedFolding):
    """conv -> BatchNorm -> ReLU (at inference one folded conv, Winograd where it pays on the CPU)."""

    cpu_only = (2,)

    def __init__(self, cin: int, cout: int, kernel_size: int = 3, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def fold_sources(self) -> tuple[torch.Tensor | None, ...]:
        return self.conv.weight, *fast.norm_tensors(self.bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if fast.active(self) and fast.foldable(self.bn):
            def build() -> tuple[torch.Tensor | None, ...]:
                w, b = fast.fold(self.conv, self.bn)
                return w, b, fast.winograd_weight(self.conv, w)

            w, b, u = self.cached(build)
            return F.relu_(fast.conv(x, self.conv, w, b, u))
        return F.relu(self.bn(self.conv(x)))


class AttentionRefinementModule(nn.Module):
    """conv, then reweight channels by a sigmoid of their global average (squeeze-excitation like)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(cin, cout)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        attention = torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean(dim=(2, 3), keepdim=True))))
        return feat * attention


class ContextPath(nn.Module):
    """ResNet features + global context, refined top-down to 1/8 (x8) and 1/16 (x16) maps."""

    def __init__(self, base: int = 64) -> None:
        super().__init__()
        mid = 2 * base
        self.resnet = ResNet18(base)
        self.arm16 = AttentionRefinementModule(4 * base, mid)
        self.arm32 = AttentionRefinementModule(8 * base, mid)
        self.conv_head32 = ConvBNReLU(mid, mid)
        self.conv_head16 = ConvBNReLU(mid, mid)
        self.conv_avg = ConvBNReLU(8 * base, mid, kernel_size=1, padding=0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(feat32.mean(dim=(2, 3), keepdim=True))
        up32 = self.arm32(feat32) + context  # broadcast = nearest upsampling of the 1x1 context
        up32 = self.conv_head32(F.interpolate(up32, feat16.shape[2:], mode="nearest"))
        up16 = self.arm16(feat16) + up32
        up16 = self.conv_head16(F.interpolate(up16, feat8.shape[2:], mode="nearest"))
        return feat8, up16, up32


class FeatureFusionModule(nn.Module):
    """Concatenate the spatial and context features, 1x1 conv, add a channel-attention reweighting."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, kernel_size=1, padding=0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean(dim=(2, 3), keepdim=True)))))
        return feat * attention + feat


class BiSeNetOutput(nn.Module):
    def __init__(self, cin: int, mid: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(cin, mid)
        self.conv_out = nn.Conv2d(mid, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """ImageNet-normalised images (B, 3, H, W) -> class logits (B, n_classes, H, W).

    ``base`` is the ResNet stem width (64 in the released file); tests build narrower copies.
    """

    def __init__(self, n_classes: int = 19, base: int = 64) -> None:
        super().__init__()
        self.cp = ContextPath(base)
        self.ffm = FeatureFusionModule(4 * base, 4 * base)
        self.conv_out = BiSeNetOutput(4 * base, 4 * base, n_classes)
        self.conv_out16 = BiSeNetOutput(2 * base, base, n_classes)  # training-only auxiliary heads
        self.conv_out32 = BiSeNetOutput(2 * base, base, n_classes)
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor, auxiliary: bool = False):
        size = x.shape[2:]
        feat8, context8, context16 = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))
        logits = F.interpolate(logits, size, mode="bilinear", align_corners=True)
        if not auxiliary:
            return logits
        aux = [
            F.interpolate(head(f), size, mode="bilinear", align_corners=True)
            for head, f in ((self.conv_out16, context8), (self.conv_out32, context16))
        ]
        return logits, *aux

    def parse(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> class probabilities (B, n_classes, H, W)."""
        mean = images.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return torch.softmax(self((images - mean) / std), dim=1)
