"""MRFA motion refinement decoder ("RaftFlow" in the released checkpoints, key prefix ``decoder.``).

Paper idea: the prior (FOMM-style) flow is coarse; a structure correlation volume between the
driving and source keypoint-structure features (each pixel of the driving map vs every pixel of the
source map, at 1/4 resolution) is looked up around the current flow, RAFT style, and small conv
heads predict a residual flow and occlusion at six scales (1/32 ... 1/1). Source features are warped
with the refined flows and decoded into the image.

Flows here are in pixels of their level (backward: driving pixel -> source pixel offset);
``sample_pixels`` is grid_sample with pixel coordinates and the corner convention, the coarse
(prior) warps keep upstream's align_corners=False sampling of corner-convention grids.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..fomm import fast_kernels as fast
from ..fomm.primitives import Hourglass, kp2gaussian
from .config import MRFAConfig
from .generator import RefinementGenerator

CORR_LEVELS = 2
CORR_RADIUS = 3


def pixel_grid(batch: int, h: int, w: int, like: torch.Tensor) -> torch.Tensor:
    """(B, 2, h, w) pixel coordinates, channel 0 = x (column), channel 1 = y (row)."""
    ys, xs = torch.meshgrid(
        torch.arange(h, device=like.device, dtype=like.dtype),
        torch.arange(w, device=like.device, dtype=like.dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys])[None].expand(batch, 2, h, w)


def sample_pixels(image: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear sample ``image`` at pixel coordinates ``coords`` (..., 2) = (x, y), zeros outside."""
    h, w = image.shape[-2:]
    grid = torch.stack([2 * coords[..., 0] / (w - 1) - 1, 2 * coords[..., 1] / (h - 1) - 1], dim=-1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)


def pool2(x: torch.Tensor, axis: int) -> torch.Tensor:
    """2x average pooling of axes ``axis`` and ``axis + 1`` (both even) as two pair sums.

    Same values as ``avg_pool2d(x, 2)`` on those axes; written as contiguous slab additions because
    the correlation volumes are 64 MB with one channel, where avg_pool2d and ``mean`` over strided
    axes were measured 1.7x and 15x slower.
    """
    shape = x.shape
    rows, cols = shape[axis] // 2, shape[axis + 1] // 2
    pairs = x.reshape(*shape[:axis], rows, 2, -1)
    x = pairs.select(axis + 1, 0) + pairs.select(axis + 1, 1)  # rows summed: (..., rows, cols*2*rest)
    rest = x.shape[axis + 1] // (2 * cols)
    pairs = x.view(*shape[:axis], rows, cols, 2, rest)
    out = pairs.select(axis + 2, 0) + pairs.select(axis + 2, 1)
    return out.mul_(0.25).view(*shape[:axis], rows, cols, *shape[axis + 2 :])


def correlation_pyramid(corr: torch.Tensor) -> list[torch.Tensor]:
    """(N, 1, hs, ws) correlation stack and its 2x average-pooled coarser levels (RAFT's pyramid)."""
    levels = [corr]
    for _ in range(1, CORR_LEVELS):
        last = levels[-1]
        even = last.shape[-1] % 2 == 0 and last.shape[-2] % 2 == 0
        levels.append(pool2(last, 2) if even else F.avg_pool2d(last, 2, stride=2))
    return levels


def lookup_correlation(pyramid: list[torch.Tensor], coords: torch.Tensor) -> torch.Tensor:
    """Sample a :func:`correlation_pyramid` (N = B*h*w queries) in a (2r+1)^2 window per level.

    coords: (B, 2, h, w) source-pixel positions. Returns (B, levels*(2r+1)^2, h, w). The window
    offsets are added as (row offset -> x, column offset -> y), the order the weights were trained with.
    """
    b, _, h, w = coords.shape
    r = CORR_RADIUS
    offs = torch.linspace(-r, r, 2 * r + 1, device=coords.device, dtype=coords.dtype)
    delta = torch.stack(
        [offs[:, None].expand(2 * r + 1, 2 * r + 1), offs[None, :].expand(2 * r + 1, 2 * r + 1)], dim=-1
    )
    centres = coords.permute(0, 2, 3, 1).reshape(b * h * w, 1, 1, 2)
    outs = []
    for level, corr in enumerate(pyramid):
        sampled = sample_pixels(corr, centres / 2**level + delta[None])
        outs.append(sampled.view(b, h, w, -1))
    return torch.cat(outs, dim=-1).permute(0, 3, 1, 2)


class MotionEncoder(nn.Module):
    """Correlation features + current flow -> 128-channel motion feature (126 learned + flow)."""

    def __init__(self) -> None:
        super().__init__()
        planes = CORR_LEVELS * (2 * CORR_RADIUS + 1) ** 2
        self.convc1 = fast.FastConv2d(planes, 128, 1)
        self.convc2 = fast.FastConv2d(128, 96, 3, padding=1)
        self.convf1 = fast.FastConv2d(2, 128, 7, padding=3)
        self.convf2 = fast.FastConv2d(128, 64, 3, padding=1)
        self.conv = fast.FastConv2d(64 + 96, 128 - 2, 3, padding=1)

    def forward(self, flow: torch.Tensor, corr: torch.Tensor) -> torch.Tensor:
        c = F.relu_(self.convc2(F.relu_(self.convc1(corr))))
        f = F.relu_(self.convf2(F.relu_(self.convf1(flow))))
        return torch.cat([F.relu_(self.conv(torch.cat([c, f], dim=1))), flow], dim=1)


class RefineHead(nn.Module):
    """Motion feature + warped-context feature -> residual flow (2) and occlusion logit (1)."""

    def __init__(self) -> None:
        super().__init__()
        self.convc1 = fast.FastConv2d(192, 128, 3, padding=1)
        self.conv1 = fast.FastConv2d(256, 128, 3, padding=1)
        self.conv2 = fast.FastConv2d(128, 2, 3, padding=1)
        self.convo1 = fast.FastConv2d(256, 128, 3, padding=1)
        self.convo2 = fast.FastConv2d(128, 1, 3, padding=1)

    def forward(self, motion: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([motion, F.relu_(self.convc1(context))], dim=1)
        return self.conv2(F.relu_(self.conv1(x))), self.convo2(F.relu_(self.convo1(x)))


class RefinementDecoder(nn.Module):
    """(kp_s, kp_d, prior motion, source 1/4, source) -> image; see the module docstring.

    The source-side work (feature pyramid, source structure keys) does not depend on the driving
    frame: ``prepare_source`` computes it once and ``render`` reuses it for every batch of frames.
    """

    def __init__(self, cfg: MRFAConfig) -> None:
        super().__init__()
        size = cfg.image_size
        self.size = size
        self.h = size // 4  # resolution of the prior motion and of the correlation volume
        self.scale = cfg.corr_dim**-0.5
        self.generator = RefinementGenerator(
            cfg.num_channels, cfg.gen_block_expansion, cfg.gen_max_features, cfg.gen_num_up_blocks
        )
        self.levels = cfg.gen_num_up_blocks + 1
        self.first = size // 2**cfg.gen_num_up_blocks  # resolution of the coarsest level
        self.basic_level = int(round(math.log2(self.h // self.first)))  # level whose resolution is h
        self.kp = Hourglass(cfg.enc_block_expansion, cfg.num_kp, cfg.enc_num_blocks, cfg.enc_max_features)
        self.kp_img = Hourglass(
            cfg.enc_block_expansion, cfg.num_kp + cfg.num_channels, cfg.enc_num_blocks, cfg.enc_max_features
        )
        self.kp_head = nn.Conv2d(self.kp.out_filters, cfg.corr_dim, 1)
        self.kp_img_head = nn.Conv2d(self.kp_img.out_filters, cfg.corr_dim, 1)
        self.pos_embedding = nn.Parameter(torch.zeros(1, cfg.num_kp, self.h, self.h))
        self.corr_enc = MotionEncoder()
        self.refine = RefineHead()
        self.to_context = nn.ModuleList(fast.FastConv2d(c, 192, 1) for c in self.generator.feature_channels)

    def structure(self, kp: torch.Tensor) -> torch.Tensor:
        """Keypoint structure map: wide Gaussians (variance 0.1) plus a learned per-keypoint code."""
        return kp2gaussian(kp, (self.h, self.h), 0.1) + self.pos_embedding.to(kp.dtype)

    def prepare_source(
        self, kp_source: torch.Tensor, source_small: torch.Tensor, source: torch.Tensor
    ) -> dict:
        """Source feature pyramid (coarsest first) and source structure keys (1, C, h*w)."""
        keys = self.kp_img_head(self.kp_img(torch.cat([self.structure(kp_source), source_small], dim=1)))
        return {"features": self.generator.encode(source), "keys": keys.flatten(2), "image": source}

    def correlation(self, kp_driving: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """(B, h, w, N_src): every driving pixel (h, w) against every source pixel (last axis).

        Driving-major, so the per-driving-pixel maps over the source that the lookups sample are
        contiguous (no transpose of the 64 MB volume) and pooling over driving pixels is a mean over
        two outer axes.
        """
        queries = self.kp_head(self.kp(self.structure(kp_driving))).flatten(2)
        corr = torch.bmm(queries.transpose(1, 2), keys.expand(queries.shape[0], -1, -1)).mul_(self.scale)
        return corr.reshape(corr.shape[0], self.h, self.h, -1)

    def forward(
        self,
        kp_source: torch.Tensor,
        kp_driving: torch.Tensor,
        motion: dict,
        source_small: torch.Tensor,
        source: torch.Tensor,
    ) -> torch.Tensor:
        return self.render(kp_driving, motion, self.prepare_source(kp_source, source_small, source))

    def render(self, kp_driving: torch.Tensor, motion: dict, prepared: dict) -> torch.Tensor:
        b = kp_driving.shape[0]
        feats = [f.expand(b, -1, -1, -1) for f in prepared["features"]]
        source = prepared["image"].expand(b, -1, -1, -1)
        h = self.h
        n_src = h * h
        corr = self.correlation(kp_driving, prepared["keys"])
        deformation = motion["deformation"].permute(0, 3, 1, 2)
        init_flow = (h - 1) * (deformation + 1) / 2 - pixel_grid(b, h, h, deformation)
        init_occ = motion["occlusion"]
        flow = resize(init_flow, self.first) / 2**self.basic_level
        occ = resize(init_occ, self.first)
        warped, occlusions, coarse = [], [], []
        d_flow_acc = d_occ_acc = None
        grid = flow  # set per level below
        full: list[torch.Tensor] | None = None  # the driving-resolution stack: same for levels >= basic
        # driving side average-pooled by 2, 4, 8, ... (each from the previous: one pass over corr)
        driving_pooled = [corr]  # (B, res, res, N_src) for res = h, h/2, h/4, ...
        for _ in range(self.basic_level):
            d = driving_pooled[-1]
            r = d.shape[1] // 2
            driving_pooled.append(pool2(d, 1) if d.shape[1] % 2 == 0 else
                                  d[:, : 2 * r, : 2 * r].reshape(b, r, 2, r, 2, n_src).mean(dim=(2, 4)))
        for i in range(self.levels):
            res = self.first * 2**i
            grid = pixel_grid(b, res, res, flow)
            if i < self.basic_level:
                # driving side pooled to this level; source side stays at h (looked up in its pixels)
                factor = 2 ** (self.basic_level - i)
                pooled = driving_pooled[self.basic_level - i].reshape(b * res * res, 1, h, h)
                looked = lookup_correlation(correlation_pyramid(pooled), (flow + grid) * factor)
            else:
                if full is None:  # built once per batch (upstream rebuilds it at every level)
                    full = correlation_pyramid(corr.reshape(b * h * h, 1, h, h))
                if i == self.basic_level:
                    looked = lookup_correlation(full, flow + grid)
                else:
                    # finer than h: look up at h with the flow brought down, then upsample the features
                    flow_h = resize(flow, h) * 0.5 ** (i - self.basic_level)
                    looked = resize(lookup_correlation(full, flow_h + pixel_grid(b, h, h, flow)), res)
            motion_feat = self.corr_enc(flow, looked)
            context = F.relu_(self.to_context[i](sample_pixels(feats[i], (flow + grid).permute(0, 2, 3, 1))))
            d_flow, d_occ = self.refine(motion_feat, context)
            occ = occ + d_occ
            warped.append(sample_pixels(feats[i], (flow + d_flow + grid).permute(0, 2, 3, 1)))
            occlusions.append(torch.sigmoid(occ))
            prior = deformation if res == h else resize(deformation, res)
            coarse.append(
                F.grid_sample(
                    feats[i],
                    prior.permute(0, 2, 3, 1),
                    mode="bilinear",
                    padding_mode="zeros",
                    align_corners=False,
                )
            )
            if i < self.levels - 1:
                nxt = res * 2
                up_flow = resize(d_flow, nxt) * 2
                up_occ = resize(d_occ, nxt)
                flow = up_flow + resize(init_flow, nxt) * 2.0 ** (i + 1 - self.basic_level)
                occ = up_occ + resize(init_occ, nxt)
                if d_flow_acc is None:
                    d_flow_acc, d_occ_acc = up_flow, up_occ
                else:
                    prev_f, prev_o = resize(d_flow_acc, nxt) * 2, resize(d_occ_acc, nxt)
                    flow, occ = flow + prev_f, occ + prev_o
                    d_flow_acc, d_occ_acc = up_flow + prev_f, up_occ + prev_o
        # the image itself is warped with the last level's prior-plus-earlier-refinements flow
        warped_image = sample_pixels(source, (flow + grid).permute(0, 2, 3, 1))
        return self.generator.decode(warped, warped_image, occlusions, coarse)
