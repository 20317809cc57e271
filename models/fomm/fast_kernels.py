"""Inference-time re-expressions of the FOMM-family blocks: same function, fewer operations.

These are exact rewrites (they differ from the plain layers only by float rounding, ~1e-6):

* **BatchNorm folding.** In eval mode a BatchNorm after a conv is a per-channel affine map, so it
  folds into the conv: ``w' = w * g / sqrt(var + eps)``, ``b' = (b - mean) * g / sqrt(var + eps) + beta``.
* **Winograd F(4x4, 3x3)** for the wide 3x3 convs of the residual blocks on the CPU, where it is
  measured faster than oneDNN's direct convolution (:mod:`winograd`; float32 error ~2e-5 instead of
  ~2e-6, within the parity budget).
* **Sub-pixel up-sampling.** ``conv3x3(nearest_upsample_x2(x))`` equals, for each of the four output
  phases (row parity a, column parity b), a 2x2 conv of the *low-resolution* ``x`` whose taps are sums
  of the 3x3 taps that land on the same input pixel. That is 16 instead of 36 multiply-adds per input
  pixel and channel pair (2.25x fewer), and the 4x larger up-sampled tensor is never built.

The folded weights are computed on first use and cached on the block; the cache is keyed by the
parameters' identity and version counters (so ``load_state_dict`` rebuilds it) and follows the
module when it is moved or re-cast (``_apply``), so no stale copy stays on a GPU after offloading.

The rewrites run only in eval mode without autograd (``torch.no_grad``/``inference_mode``); training
and :func:`reference_kernels` (used by the benchmark's upstream-style path) take the plain layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..common import winograd
from ..common.pointwise import pointwise

_enabled = True


@contextlib.contextmanager
def reference_kernels() -> Iterator[None]:
    """Run the plain layer sequence (upsample, conv, norm, ReLU) as upstream does, e.g. to time it."""
    global _enabled
    previous, _enabled = _enabled, False
    try:
        yield
    finally:
        _enabled = previous


def active(module: nn.Module) -> bool:
    """True when the rewrites may replace ``module``'s plain forward (inference only)."""
    return _enabled and not module.training and not torch.is_grad_enabled()


def _version(t: torch.Tensor) -> int:
    # Inference tensors (parameters made under ComfyUI's ``torch.inference_mode``) have no version
    # counter; their reloads are caught by ``_load_from_state_dict`` below instead.
    return -1 if t.is_inference() else t._version


def _key(*tensors: torch.Tensor | None) -> tuple:
    return tuple((t.data_ptr(), _version(t), t.dtype, t.device) if t is not None else None for t in tensors)


class CachedFolding(nn.Module):
    """Mixin: a per-module cache of weights derived from its parameters (folded, re-arranged).

    Subclasses list the parameters the cache derives from in :meth:`fold_sources`. Moving or
    re-casting the module (``.to()``, ``.half()``) applies the same conversion to the cached tensors,
    so they follow the parameters (and leave a GPU with them) without being recomputed.
    """

    _folded: tuple | None = None

    def fold_sources(self) -> tuple[torch.Tensor | None, ...]:
        raise NotImplementedError

    #: positions in the cached tuple that only the CPU path uses (Winograd transforms, 4x the size of
    #: their weight): when a move takes them off the CPU the cache is dropped and rebuilt on next use
    cpu_only: tuple[int, ...] = ()

    def _apply(self, fn, *args, **kwargs):  # type: ignore[override]
        out = super()._apply(fn, *args, **kwargs)
        if self._folded is not None:
            moved = tuple(None if t is None else fn(t) for t in self._folded[1])
            if any(moved[i] is not None and moved[i].device.type != "cpu" for i in self.cpu_only):
                self._folded = None
            else:
                self._folded = (_key(*self.fold_sources()), moved)
        return out

    def _load_from_state_dict(self, *args, **kwargs):  # type: ignore[override]
        self._folded = None  # new weights: fold again on the next call
        return super()._load_from_state_dict(*args, **kwargs)

    def cached(self, build) -> tuple:
        """``build()`` once per version of :meth:`fold_sources` (rebuilt after ``load_state_dict``)."""
        key = _key(*self.fold_sources())
        if self._folded is None or self._folded[0] != key:
            self._folded = (key, tuple(build()))
        return self._folded[1]


def norm_tensors(norm: nn.Module) -> tuple[torch.Tensor | None, ...]:
    if isinstance(norm, nn.BatchNorm2d):
        return norm.weight, norm.bias, norm.running_mean, norm.running_var
    return ()


def foldable(norm: nn.Module) -> bool:
    """An eval BatchNorm with running statistics (a fixed per-channel affine map)."""
    return (isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats
            and norm.running_mean is not None and norm.running_var is not None)


def fold(conv: nn.Conv2d, norm: nn.Module | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``norm(conv(x))`` as one conv (``norm`` must be :func:`foldable` or None)."""
    w = conv.weight
    b = conv.bias if conv.bias is not None else w.new_zeros(w.shape[0])
    if norm is None:
        return w, b
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.bias is not None:
        shift = shift + norm.bias
    return w * scale.view(-1, 1, 1, 1), b * scale + shift


def phase_kernels(w: torch.Tensor) -> torch.Tensor:
    """(O, I, 3, 3) kernel of conv3x3 after nearest x2 upsampling -> (2, 2, O, I, 2, 2) kernels.

    Output row 2i + a reads up-sampled rows 2i + a - 1 .. 2i + a + 1, i.e. input rows
    (i - 1, i, i) for a = 0 and (i, i, i + 1) for a = 1, so taps that hit the same input row add up;
    the same holds for columns. Phase (a, b) is then a 2x2 conv over the input padded by one pixel,
    starting at row a and column b.
    """
    rows = (torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]], 2),
            torch.stack([w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2))
    out = []
    for r in rows:
        out.append(torch.stack([torch.stack([r[..., 0], r[..., 1] + r[..., 2]], -1),
                                torch.stack([r[..., 0] + r[..., 1], r[..., 2]], -1)]))
    return torch.stack(out)


def upsample_conv(x: torch.Tensor, kernels: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """conv3x3(nearest_x2(x)) from :func:`phase_kernels`; (N, C, H, W) -> (N, O, 2H, 2W)."""
    n, c, h, w = x.shape
    o = kernels.shape[2]
    xp = F.pad(x, (1, 1, 1, 1))
    out = x.new_empty(n, o, h, 2, w, 2)
    if h * w >= 1024:
        # one conv for all four phases over the whole padded input (one pass over x, 4x wider
        # output); phase (a, b) is its window starting at (a, b)
        y = F.conv2d(xp, kernels.reshape(4 * o, c, 2, 2), bias.repeat(4)).view(n, 2, 2, o, h + 1, w + 1)
        for a in range(2):
            for b in range(2):
                out[:, :, :, a, :, b] = y[:, a, b, :, a:a + h, b:b + w]
    else:  # small maps, wide layers: four convs keep the re-ordered weights small
        for a in range(2):
            for b in range(2):
                out[:, :, :, a, :, b] = F.conv2d(xp[:, :, a:a + h + 1, b:b + w + 1], kernels[a, b], bias)
    return out.view(n, o, 2 * h, 2 * w)


def winograd_weight(conv: nn.Conv2d, weight: torch.Tensor) -> torch.Tensor | None:
    """Winograd-transformed ``weight`` of ``conv`` when ``conv`` may run as :func:`winograd.conv3x3`."""
    if winograd.plain_3x3(conv) and winograd.eligible_weight(weight) and weight.device.type == "cpu":
        return winograd.transform_weight(weight)
    return None


def conv(x: torch.Tensor, layer: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor,
         u: torch.Tensor | None) -> torch.Tensor:
    """``layer``'s convolution with (possibly folded) ``weight``/``bias``; Winograd where it pays."""
    if (u is not None and u.device == x.device and u.dtype == x.dtype
            and winograd.applies(x, min(u.shape[1], u.shape[2]))):
        return winograd.conv3x3(x, u, bias)
    return F.conv2d(x, weight, bias, layer.stride, layer.padding, layer.dilation, layer.groups)


MATMUL_PIXELS = 128 * 128  # 1x1 convs on maps at least this large run as one matmul per image
FEW_OUTPUTS = 4  # convs with at most this many output channels run tap by tap


class FastConv2d(CachedFolding, nn.Conv2d):
    """``nn.Conv2d`` (same parameters, same state-dict keys) whose CPU inference picks, by shape,
    an exact formulation that was measured faster than oneDNN's direct convolution:

    * wide 3x3 (>= 96 channels both sides): Winograd F(4x4, 3x3), 1.2-1.9x (:mod:`winograd`);
    * 1x1 on large maps: one matmul ``W (O x C) @ x (C x HW)`` per image, about 1.7x at 256x256;
    * very few outputs (flow and occlusion heads, RGB): the k*k taps as one matmul
      ``(k*k*O x C) @ x`` and the shifted tap maps summed, about 10x for a 3x3 conv with 1-2 outputs
      at 256x256, where oneDNN's blocked layouts leave most of each vector unused.
    """

    cpu_only = (0,)

    def fold_sources(self) -> tuple[torch.Tensor | None, ...]:
        return (self.weight, self.bias)

    def _plain(self) -> bool:
        return (self.stride == (1, 1) and self.dilation == (1, 1) and self.groups == 1
                and self.padding_mode == "zeros" and self.kernel_size[0] == self.kernel_size[1]
                and self.kernel_size[0] % 2 == 1 and self.padding == (self.kernel_size[0] // 2,) * 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (active(self) and x.dim() == 4 and x.device.type == "cpu" and x.dtype == torch.float32
                and self.weight.dtype == x.dtype and self._plain()):
            return super().forward(x)
        n, _, h, w = x.shape
        o, _, k, _ = self.weight.shape
        bias = self.bias if self.bias is not None else x.new_zeros(o)
        if k == 1 and h * w >= MATMUL_PIXELS:
            return pointwise(x.reshape(n, -1, h * w), self.weight.view(o, -1), bias).view(n, o, h, w)
        if o <= FEW_OUTPUTS and k > 1:
            return _conv_by_taps(x, self.weight, bias)
        if (k == 3 and winograd.eligible_weight(self.weight)
                and winograd.applies(x, min(self.weight.shape[:2]))):
            # transformed on first use only: layers that never run at a size where it pays keep none
            (u,) = self.cached(lambda: (winograd.transform_weight(self.weight),))
            return winograd.conv3x3(x, u, bias)
        return super().forward(x)


def _conv_by_taps(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """'Same' conv with few output channels: every tap's (O, H, W) map from one matmul, then the maps
    shifted by their tap offset and summed."""
    n, c, h, w = x.shape
    o, _, k, _ = weight.shape
    p = k // 2
    taps = weight.permute(2, 3, 0, 1).reshape(k * k * o, c)
    out = x.new_empty(n, o, h, w)
    for i in range(n):
        y = (taps @ x[i].reshape(c, h * w)).view(k, k, o, h, w)
        dst = out[i]
        torch.add(y[p, p], bias.view(o, 1, 1), out=dst)
        for a in range(k):
            for b in range(k):
                # out[r, s] += y[a, b][r + a - p, s + b - p] where that pixel exists
                if (a, b) == (p, p) or abs(a - p) >= h or abs(b - p) >= w:
                    continue
                r0, r1 = max(0, p - a), min(h, h + p - a)
                s0, s1 = max(0, p - b), min(w, w + p - b)
                dst[:, r0:r1, s0:s1] += y[a, b, :, r0 + a - p : r1 + a - p, s0 + b - p : s1 + b - p]
    return out
