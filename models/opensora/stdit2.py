"""STDiT2: the spatial-temporal diffusion transformer of Open-Sora 1.1.

Each of the ``depth`` blocks holds three attentions in a row, then an MLP::

    x (B,4,T,H,W) ─ patchify (1×2×2) ─ + 2-D sin-cos position (scaled by √(H·W)/512, per frame)
    t ─ sinusoid ─ MLP = t
    size info  = [csize(h), csize(w), ar]  (three SizeEmbedders of C/3 each)  → t_spatial  = t + size
    frames     = fl(num_frames) + fps(fps)                                    → t_temporal = t + frames
    block: spatial self-attn  (6-way adaLN-single from t_block(t_spatial))
           temporal self-attn (3-way adaLN-single from t_block_temp(t_temporal), RoPE over time)
           cross-attn to T5 tokens, MLP (modulated by the spatial vectors)
    final: LN, modulate with t, linear → patches → (B, 2·4, T, H, W)

v1.1 was trained with ``qk_norm_legacy``: the temporal rotary embedding is applied *before* the
q/k RMS norm (Open-Sora 1.2 swapped the order). The released weights need the legacy order, which
is the default here.

Frames where ``x_mask`` is False are clean conditioning frames: their modulation comes from the
same embeddings at timestep 0. State-dict keys are those of ``hpcai-tech/OpenSora-STDiT-v2-stage3``
(``model.safetensors`` + ``config.json``); attention is torch SDPA and layer norms plain PyTorch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .config import ReleasedConfig
from .stdit3 import (
    CaptionProjection,
    CrossAttention,
    Mlp,
    PatchEmbed3D,
    RMSNorm,
    RotaryEmbedding,
    ScalarEmbedder,
    modulate,
    position_embedding_2d,
)


@dataclass
class STDiT2Config(ReleasedConfig):
    """Fields of the released ``config.json`` that shape the network (others kept in ``extra``)."""

    in_channels: int = 4
    patch_size: tuple[int, int, int] = (1, 2, 2)
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    pred_sigma: bool = True
    caption_channels: int = 4096
    model_max_length: int = 200
    input_sq_size: int = 512
    qk_norm: bool = True
    qk_norm_legacy: bool = True
    extra: dict = field(default_factory=dict, repr=False)

    ARCHITECTURE = "STDiT2"
    MODEL_TYPE = "stdit2"


class SizeEmbedder(ScalarEmbedder):
    """Each of D scalars per sample → sinusoid → MLP, concatenated: (B, D) → (B, D·hidden)."""

    def forward(self, values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:  # type: ignore[override]
        b = values.shape[0]
        return super().forward(values.reshape(-1), dtype).reshape(b, -1)


class Attention(nn.Module):
    """Self-attention with q/k RMS norm and optional RoPE; ``legacy`` puts RoPE before the norm."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, rope=None, legacy: bool = True):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.q_norm = RMSNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        self.legacy = legacy
        self._rope = [rope] if rope is not None else []  # shared; saved once as ``rope.freqs``

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        rope = self._rope[0] if self._rope else None
        if rope is not None and self.legacy:
            q, k = rope(q), rope(k)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None and not self.legacy:
            q, k = rope(q), rope(k)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class STDiT2Block(nn.Module):
    """Spatial attention → temporal attention → cross-attention → MLP on tokens (B, T, S, C).

    ``mod`` (B, T', 6, C) and ``mod_temp`` (B, T', 3, C) hold the modulation vectors per frame
    (T' = 1, or T when conditioning frames use the timestep-0 vectors).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qk_norm: bool, rope, legacy: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn = Attention(dim, num_heads, qk_norm, legacy=legacy)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_temp = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn_temp = Attention(dim, num_heads, qk_norm, rope=rope, legacy=legacy)
        self.scale_shift_table_temporal = nn.Parameter(torch.randn(3, dim) / dim**0.5)

    def forward(self, x, y, y_mask, mod: torch.Tensor, mod_temp: torch.Tensor) -> torch.Tensor:
        b, t, s, c = x.shape
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            (self.scale_shift_table + mod).unsqueeze(3).unbind(dim=2)
        )
        shift_tmp, scale_tmp, gate_tmp = (
            (self.scale_shift_table_temporal + mod_temp).unsqueeze(3).unbind(dim=2)
        )

        h = modulate(self.norm1(x), shift_msa, scale_msa)
        h = self.attn(h.reshape(b * t, s, c)).view(b, t, s, c)
        x = x + gate_msa * h

        h = modulate(self.norm_temp(x), shift_tmp, scale_tmp)
        h = self.attn_temp(h.transpose(1, 2).reshape(b * s, t, c)).view(b, s, t, c).transpose(1, 2)
        x = x + gate_tmp * h

        x = x + self.cross_attn(x.reshape(b, t * s, c), y, y_mask).view(b, t, s, c)

        h = self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x + gate_mlp * h


class FinalLayer(nn.Module):
    """LayerNorm, modulation by the time embedding, linear to patch pixels.

    As upstream's T2IFinalLayer, conditioning frames get a *second* LayerNorm + modulation (with
    their t0 vector) on top of the first one; the released weights were trained that way.
    """

    def __init__(self, dim: int, patch_volume: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.linear = nn.Linear(dim, patch_volume * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, t: torch.Tensor, t0: torch.Tensor | None = None, x_mask=None):
        shift, scale = (self.scale_shift_table + t[:, None]).unbind(dim=1)
        h = modulate(self.norm_final(x), shift[:, None, None], scale[:, None, None])
        if x_mask is not None:
            shift0, scale0 = (self.scale_shift_table + t0[:, None]).unbind(dim=1)
            h0 = modulate(self.norm_final(h), shift0[:, None, None], scale0[:, None, None])
            h = torch.where(x_mask[:, :, None, None], h, h0)
        return self.linear(h)


def _per_sample(value, default: float, batch: int, device) -> torch.Tensor:
    """A scalar / (B,) / (1,) conditioning value as a float (B,) tensor."""
    v = torch.as_tensor(default if value is None else value, dtype=torch.float32, device=device).reshape(-1)
    return v.expand(batch) if v.shape[0] == 1 else v


class STDiT2(nn.Module):
    """Open-Sora 1.1 denoiser. ``forward`` returns (B, out_channels, T, H, W) in fp32."""

    def __init__(self, config: STDiT2Config):
        super().__init__()
        if config.hidden_size % 3:
            raise ValueError(f"STDiT2 hidden_size must be divisible by 3 (got {config.hidden_size})")
        self.config = config
        c = config.hidden_size
        self.rope = RotaryEmbedding(c // config.num_heads)
        self.x_embedder = PatchEmbed3D(config.patch_size, config.in_channels, c)
        self.t_embedder = ScalarEmbedder(c)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))
        self.t_block_temp = nn.Sequential(nn.SiLU(), nn.Linear(c, 3 * c))
        self.y_embedder = CaptionProjection(config.caption_channels, c, config.model_max_length)
        self.blocks = nn.ModuleList(
            STDiT2Block(
                c, config.num_heads, config.mlp_ratio, config.qk_norm, self.rope, config.qk_norm_legacy
            )
            for _ in range(config.depth)
        )
        self.final_layer = FinalLayer(c, math.prod(config.patch_size), config.out_channels)
        self.csize_embedder = SizeEmbedder(c // 3)
        self.ar_embedder = SizeEmbedder(c // 3)
        self.fl_embedder = SizeEmbedder(c)
        self.fps_embedder = SizeEmbedder(c)

    @property
    def dtype(self) -> torch.dtype:
        return self.x_embedder.proj.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.x_embedder.proj.weight.device

    def null_caption(self, batch: int) -> torch.Tensor:
        """The learned unconditional caption (B, L, caption_channels)."""
        return self.y_embedder.y_embedding[None].expand(batch, -1, -1)

    def embed_caption(self, y: torch.Tensor, mask: torch.Tensor | None, batch: int):
        """Project T5 features (B,[1,]L,D) → (B,L,C) and a bool key mask (B,L) or None.

        A mask with fewer rows than the batch is repeated (the prompt mask is reused for the null
        caption, as upstream does); positions no sample uses are dropped.
        """
        if y.dim() == 4:
            y = y.squeeze(1)
        y = self.y_embedder(y)
        if y.shape[0] != batch:
            y = y.repeat(batch // y.shape[0], 1, 1)
        if mask is None:
            return y, None
        mask = mask.reshape(mask.shape[0], -1).bool().to(y.device)
        if mask.shape[0] != batch:
            mask = mask.repeat(batch // mask.shape[0], 1)
        used = mask.any(dim=0).nonzero()
        length = int(used.max()) + 1 if len(used) else 1
        return y[:, :length], mask[:, :length]

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor | None = None,
        x_mask: torch.Tensor | None = None,
        num_frames=None,
        height=None,
        width=None,
        ar=None,
        fps=None,
        **_: object,
    ) -> torch.Tensor:
        """x (B,C,T,H,W) latents; timestep (B,) in [0, 1000); y (B,[1,]L,D) T5 features; mask (B,L);
        x_mask (B,T) bool, False = conditioning frame; num_frames, height, width: the video's pixel
        size (default: from the latent, ×8 spatially); ar = height/width; fps (default 24, 120 for
        images as upstream's IMG_FPS)."""
        dtype, dev = self.dtype, x.device
        b, _, frames, lat_h, lat_w = x.shape
        x, timestep, y = x.to(dtype), timestep.to(dtype), y.to(dtype)
        pt, ph, pw = self.config.patch_size
        nt, nh, nw = -(-frames // pt), -(-lat_h // ph), -(-lat_w // pw)

        height = _per_sample(height, lat_h * 8, b, dev)
        width = _per_sample(width, lat_w * 8, b, dev)
        ar = _per_sample(ar, float(height[0] / width[0]), b, dev)
        num_frames = _per_sample(num_frames, frames, b, dev)
        fps = _per_sample(fps, 120.0 if frames == 1 else 24.0, b, dev)

        size_info = torch.cat(
            [
                self.csize_embedder(torch.stack([height, width], dim=1), dtype),
                self.ar_embedder(ar[:, None], dtype),
            ],
            dim=1,
        )
        frame_info = self.fl_embedder(num_frames[:, None], dtype) + self.fps_embedder(fps[:, None], dtype)

        temb = self.t_embedder(timestep, dtype)  # (B, C)
        t_spatial, t_temporal = (temb + size_info)[:, None], (temb + frame_info)[:, None]  # (B, 1, C)
        t0_spatial = None
        if x_mask is not None:
            x_mask = x_mask.to(dev).bool()
            t0 = self.t_embedder(torch.zeros_like(timestep), dtype)
            t0_spatial = t0 + size_info
            keep = x_mask[:, :, None]
            t_spatial = torch.where(keep, t_spatial, t0_spatial[:, None])
            t_temporal = torch.where(keep, t_temporal, (t0 + frame_info)[:, None])
        mod = self.t_block(t_spatial).unflatten(-1, (6, -1))  # (B, T', 6, C)
        mod_temp = self.t_block_temp(t_temporal).unflatten(-1, (3, -1))  # (B, T', 3, C)

        y, y_mask = self.embed_caption(y, mask, b)

        tokens = self.x_embedder(x).flatten(3).permute(0, 2, 3, 1)  # (B, T, S, C)
        scale = math.sqrt(float(height[0]) * float(width[0])) / self.config.input_sq_size
        pos = position_embedding_2d(nh, nw, tokens.shape[-1], scale, round((nh * nw) ** 0.5), device=dev)
        tokens = tokens + pos.to(dtype)

        for block in self.blocks:
            tokens = block(tokens, y, y_mask, mod, mod_temp)

        out = self.final_layer(tokens, temb, t0_spatial, x_mask)
        return self.unpatchify(out, nt, nh, nw)[:, :, :frames, :lat_h, :lat_w].float()

    def unpatchify(self, x: torch.Tensor, nt: int, nh: int, nw: int) -> torch.Tensor:
        pt, ph, pw = self.config.patch_size
        c = self.config.out_channels
        x = x.reshape(x.shape[0], nt, nh, nw, pt, ph, pw, c).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(x.shape[0], c, nt * pt, nh * ph, nw * pw)
