"""Winograd F(4x4, 3x3) convolution for wide 3x3 layers on the CPU (the FOMM family's residual blocks).

Why: most of a FOMM/MRAA/TPSMM/Part Swap frame is 3x3 convolutions with 128-512 channels at
16-128 px, which oneDNN already runs near the CPU's peak.
Winograd's minimal filtering computes each 4x4 output tile from a 6x6 input tile with 36
multiplications per channel pair instead of 144 (4x fewer), as cuDNN does on GPUs:

    Y = A^T [ (G g G^T) (.) (B^T d B) ] A

for every tile ``d`` and filter ``g``. The transformed filters ``U = G g G^T`` are computed once per
weight (in float64, then rounded); the 36 element-wise products summed over input channels become
36 matrix products ``U_k (O x C) @ V_k (C x tiles)``, which is where the time goes.

The matrices come from the Toom-Cook construction on the interpolation points
(0, 1, -1, 1/2, -2, inf). Compared with the classic (0, +-1, +-2) they halve the float32 error
(measured: max |error| 2.8e-5 against 5.4e-5 at unit-scale activations with 256 channels; direct
convolution 2e-6), which keeps the FOMM-family outputs within the 1e-4 parity budget.

Where it pays is measured, not assumed (2-core AVX-512 CPU, fp32): 1.3-1.8x for 128-1280 channels
on maps of 16-64 px (one image, or a batch taken :data:`CHUNK_PIXELS` at a time so the transformed
tiles stay in cache), 1.7-2.4x on 4x4 maps; about break-even on 8x8 maps below 1024 channels and on
single maps from 128x128 px up, which :func:`applies` leaves to oneDNN.

The transformed filters take 4x the memory of the weights, so this is for networks of tens of MB
(the FOMM family), not for multi-GB diffusion UNets; on DisCo's quarter-width UNet at batch 32 it
was also slower than oneDNN (the tile transforms of a large batch of small maps cost more than the
multiplications saved), so DisCo does not use it.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

TILE = 4  # output tile (m)
TAPS = 3  # filter size (r)
SPAN = TILE + TAPS - 1  # input tile (m + r - 1 = 6)
POINTS = (0.0, 1.0, -1.0, 0.5, -2.0)  # finite interpolation points; the sixth is infinity

MIN_CHANNELS = 128
MIN_SIZE = 16  # smaller maps only when they are one tile (<= 4x4) or very wide (WIDE_CHANNELS)
WIDE_CHANNELS = 1024
MAX_PIXELS = 128 * 128  # height x width of one map beyond which the transforms cost more than they save
CHUNK_PIXELS = 2048  # images per call so that batch x height x width stays about this size


@functools.lru_cache(maxsize=1)
def matrices() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B^T, G, A^T) of F(4, 3) in float64, from the Toom-Cook construction on :data:`POINTS`.

    A^T evaluates the product polynomial at the points (rows: powers), G evaluates the filter there
    divided by the Lagrange denominators, and B^T is the unique matrix that makes
    ``A^T [(G g) (.) (B^T d)]`` the correlation of ``d`` with ``g`` for every ``d`` and ``g``, found by
    solving that identity as a linear system (exact up to float64 rounding, then snapped to the
    dyadic values it has).
    """
    n = SPAN
    p = torch.tensor(POINTS, dtype=torch.float64)
    at = torch.zeros(TILE, n, dtype=torch.float64)
    at[:, : n - 1] = p[None, :] ** torch.arange(TILE, dtype=torch.float64)[:, None]
    at[TILE - 1, n - 1] = 1
    g = torch.zeros(n, TAPS, dtype=torch.float64)
    for j in range(n - 1):
        denom = torch.prod(torch.stack([p[j] - p[k] for k in range(n - 1) if k != j]))
        g[j] = p[j] ** torch.arange(TAPS, dtype=torch.float64) / denom
    g[n - 1, TAPS - 1] = 1
    # sum_j at[i, j] g[j, k] bt[j, l] = [l == i + k] for all i, k, l: linear in bt
    coef = at[:, None, :] * g.T[None, :, :]  # (i, k, j)
    system = torch.zeros(TILE * TAPS * n, n * n, dtype=torch.float64)
    rhs = torch.zeros(TILE * TAPS * n, dtype=torch.float64)
    row = 0
    for i in range(TILE):
        for k in range(TAPS):
            for col in range(n):
                system[row, torch.arange(n) * n + col] = coef[i, k]
                rhs[row] = float(col == i + k)
                row += 1
    bt = torch.linalg.lstsq(system, rhs[:, None]).solution.view(n, n)
    bt = torch.round(bt * 2**20) / 2**20
    return bt, g, at


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """(O, C, 3, 3) filters -> (36, O, C) transformed filters ``G g G^T``, in the weight's dtype."""
    _, g, _ = matrices()
    g = g.to(weight.device)
    u = torch.einsum("ik,ockl,jl->ijoc", g, weight.detach().double(), g)
    return u.reshape(SPAN * SPAN, weight.shape[0], weight.shape[1]).to(weight.dtype).contiguous()


@functools.lru_cache(maxsize=8)
def _tile_transforms(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    bt, _, at = matrices()
    return torch.kron(bt, bt).to(device, dtype), torch.kron(at, at).to(device, dtype)


def eligible_weight(weight: torch.Tensor) -> bool:
    """A 3x3 filter bank wide enough for Winograd to pay (the caller checks stride/padding/groups)."""
    o, c, kh, kw = weight.shape
    return (kh, kw) == (TAPS, TAPS) and min(o, c) >= MIN_CHANNELS


def applies(x: torch.Tensor, channels: int = MIN_CHANNELS) -> bool:
    """Whether :func:`conv3x3` is the faster choice for this input (CPU float32, see module doc).

    ``channels``: the smaller of the layer's input and output widths.
    """
    _, _, h, w = x.shape
    small_ok = max(h, w) <= TILE or channels >= WIDE_CHANNELS
    return (x.device.type == "cpu" and x.dtype == torch.float32 and h * w <= MAX_PIXELS
            and (min(h, w) >= MIN_SIZE or small_ok))


def conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv2d(x, w, bias, padding=1)`` from ``u = transform_weight(w)``; (N, C, H, W) -> (N, O, H, W).

    A batch runs :data:`CHUNK_PIXELS` at a time (the tile buffers of a whole batch outgrow the caches).
    """
    n, _, h, w = x.shape
    per = max(1, CHUNK_PIXELS // (h * w))
    if n <= per:
        return _conv3x3(x, u, bias)
    out = x.new_empty(n, u.shape[1], h, w)
    for i in range(0, n, per):
        out[i : i + per] = _conv3x3(x[i : i + per], u, bias)
    return out


def _conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    n, c, h, w = x.shape
    o = u.shape[1]
    th, tw = -(-h // TILE), -(-w // TILE)
    kb, ka = _tile_transforms(x.device, x.dtype)
    # zero padding: 1 px for the convolution, plus up to 3 px so the tiles cover the map
    xp = F.pad(x, (1, TILE * tw + 1 - w, 1, TILE * th + 1 - h))
    if n == 1:
        # B^T d B for every tile as a stride-4 conv with 36 outputs per channel (one pass over x);
        # the (c, 36, tiles) result is read by the matmuls below in place (leading dimension 36*tiles)
        v = F.conv2d(xp.view(c, 1, *xp.shape[2:]), kb.view(SPAN * SPAN, 1, SPAN, SPAN), stride=TILE)
        v = v.view(c, SPAN * SPAN, th * tw).transpose(0, 1)
    else:  # a few small maps: gather the tiles (channel-major for all images), then transform
        tiles = xp.unfold(2, SPAN, TILE).unfold(3, SPAN, TILE)  # (n, c, th, tw, 6, 6), a view
        d = tiles.permute(4, 5, 1, 0, 2, 3).reshape(SPAN * SPAN, c * n * th * tw)
        v = (kb @ d).view(SPAN * SPAN, c, n * th * tw)
    m = torch.bmm(u, v).view(SPAN * SPAN, o * n * th * tw)  # sum over input channels
    y = (ka @ m).view(TILE, TILE, o, n, th, tw)  # A^T m A: the 4x4 output tiles
    out = x.new_empty(n, o, th * TILE, tw * TILE)
    tiled = y.permute(3, 2, 4, 0, 5, 1)
    if bias is None:
        out.view(n, o, th, TILE, tw, TILE).copy_(tiled)
    else:
        torch.add(tiled, bias.view(1, o, 1, 1, 1, 1), out=out.view(n, o, th, TILE, tw, TILE))
    if th * TILE != h or tw * TILE != w:
        out = out[:, :, :h, :w].contiguous()
    return out


def plain_3x3(conv: nn.Conv2d) -> bool:
    """A 3x3, stride-1, 'same'-padded (zeros), dense convolution: the layers Winograd computes."""
    return (conv.kernel_size == (TAPS, TAPS) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros")
