"""Winograd F(4x4, 3x3) convolution for wide 3x3 layers on the CPU (the FOMM family's residual blocks and
MRFA's refinement heads).

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

Where it pays is measured, not assumed (2-core AVX-512 CPU, fp32): 1.3-2.1x for 96-1280 channels
on maps of 16-256 px, 1.7-2.4x on 4x4 maps; about break-even on 8x8 maps below 1024 channels, which
:func:`applies` leaves to oneDNN. The tile buffers must stay in the caches: small maps run a batch
:data:`CHUNK_PIXELS` at a time, larger ones one image at a time in strips of :data:`STRIP_PIXELS`
output pixels, with the zero padding done per strip (at 256x256 px, transforming the whole map at
once, or padding it first, was slower than oneDNN).

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

MIN_CHANNELS = 96
MIN_SIZE = 16  # smaller maps only when they are one tile (<= 4x4) or very wide (WIDE_CHANNELS)
WIDE_CHANNELS = 1024
CHUNK_PIXELS = 2048  # small maps: images per call so that batch x height x width stays about this size
STRIP_PIXELS = 2048  # larger maps: output pixels per strip (tile rows x width), one image at a time


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
    return (x.device.type == "cpu" and x.dtype == torch.float32
            and (min(h, w) >= MIN_SIZE or small_ok))


def conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``conv2d(x, w, bias, padding=1)`` from ``u = transform_weight(w)``; (N, C, H, W) -> (N, O, H, W).

    Small maps run :data:`CHUNK_PIXELS` of the batch at a time; larger maps one image at a time in
    strips of about :data:`STRIP_PIXELS` output pixels. Either way the tile buffers stay in the
    caches (transforming a whole 256x256 map at once costs more than the multiplications it saves).
    """
    n, _, h, w = x.shape
    per = CHUNK_PIXELS // (h * w)
    if n == 1 or per <= 1:
        out = x.new_empty(n, u.shape[1], h, w)
        for i in range(n):
            _strips(x[i], u, bias, out[i])
        return out
    if n <= per:
        return _conv3x3(x, u, bias)
    out = x.new_empty(n, u.shape[1], h, w)
    for i in range(0, n, per):
        out[i : i + per] = _conv3x3(x[i : i + per], u, bias)
    return out


def _output_tiles(y: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> None:
    """Write ``y`` (4, 4, O, N, th, tw) output tiles into ``out`` (N, O, th*4, tw*4), adding ``bias``."""
    _, _, o, n, th, tw = y.shape
    tiled = y.permute(3, 2, 4, 0, 5, 1)
    dst = out.view(n, o, th, TILE, tw, TILE)
    if bias is None:
        dst.copy_(tiled)
    else:
        torch.add(tiled, bias.view(1, o, 1, 1, 1, 1), out=dst)


def _strips(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None, out: torch.Tensor) -> None:
    """One (C, H, W) map into ``out`` (O, H, W), a strip of tile rows at a time.

    B^T d B of every tile is a stride-4 conv with 36 outputs per channel (one pass over the strip);
    its (C, 36, tiles) result is read by the batched matmul in place (leading dimension 36*tiles).
    The zero padding is the conv's own where it can be (1 px left and right when the width is a
    multiple of 4), otherwise each strip is padded on its own: padding the whole map first would
    allocate (and page in) a second copy of it.
    """
    c, h, w = x.shape
    o = u.shape[1]
    th, tw = -(-h // TILE), -(-w // TILE)
    kb, ka = _tile_transforms(x.device, x.dtype)
    kb = kb.view(SPAN * SPAN, 1, SPAN, SPAN)
    exact = th * TILE == h and tw * TILE == w
    full = out if exact else x.new_empty(o, th * TILE, tw * TILE)
    rows = max(1, STRIP_PIXELS // (TILE * TILE * tw))  # tile rows per strip
    right = TILE * tw + 1 - w
    for top in range(0, th, rows):
        r = min(rows, th - top)
        lo, hi = top * TILE - 1, (top + r) * TILE + 1  # input rows the strip's tiles read
        strip = x[:, max(lo, 0) : min(hi, h)]
        pad_top, pad_bottom = max(0, -lo), max(0, hi - h)
        if right == 1 and pad_top == pad_bottom == 0:
            v = F.conv2d(strip.unsqueeze(1), kb, stride=TILE, padding=(0, 1))
        else:
            strip = F.pad(strip, (1, right, pad_top, pad_bottom))
            v = F.conv2d(strip.unsqueeze(1), kb, stride=TILE)
        v = v.view(c, SPAN * SPAN, r * tw).transpose(0, 1)
        m = torch.bmm(u, v).view(SPAN * SPAN, o * r * tw)  # sum over input channels
        y = (ka @ m).view(TILE, TILE, o, 1, r, tw)  # A^T m A: the 4x4 output tiles
        _output_tiles(y, bias, full[None, :, top * TILE : (top + r) * TILE])
    if not exact:
        out.copy_(full[:, :h, :w])


def _conv3x3(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """A few small maps: gather the tiles (channel-major for all images), then transform."""
    n, c, h, w = x.shape
    o = u.shape[1]
    th, tw = -(-h // TILE), -(-w // TILE)
    kb, ka = _tile_transforms(x.device, x.dtype)
    xp = F.pad(x, (1, TILE * tw + 1 - w, 1, TILE * th + 1 - h))
    tiles = xp.unfold(2, SPAN, TILE).unfold(3, SPAN, TILE)  # (n, c, th, tw, 6, 6), a view
    d = tiles.permute(4, 5, 1, 0, 2, 3).reshape(SPAN * SPAN, c * n * th * tw)
    v = (kb @ d).view(SPAN * SPAN, c, n * th * tw)
    m = torch.bmm(u, v).view(SPAN * SPAN, o * n * th * tw)
    y = (ka @ m).view(TILE, TILE, o, n, th, tw)
    out = x.new_empty(n, o, th * TILE, tw * TILE)
    _output_tiles(y, bias, out)
    if th * TILE != h or tw * TILE != w:
        out = out[:, :, :h, :w].contiguous()
    return out


def plain_3x3(conv: nn.Conv2d) -> bool:
    """A 3x3, stride-1, 'same'-padded (zeros), dense convolution: the layers Winograd computes."""
    return (conv.kernel_size == (TAPS, TAPS) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and conv.padding_mode == "zeros")
