"""STDiT3: the spatial-temporal diffusion transformer of Open-Sora 1.2.

A PixArt-Σ style DiT where each of the ``depth`` steps is a *spatial* block (attention among the
patches of one frame) followed by a *temporal* block (attention along time at one patch position,
with rotary position embedding). Every block has adaLN-single modulation from the timestep,
cross-attention to T5 tokens and a GELU MLP::

    x (B,4,T,H,W) ─ patchify (1×2×2 conv) ─ + 2-D sin-cos position (per frame)
    t ─ sinusoid ─ MLP  + fps ─ sinusoid ─ MLP  = t ;  t_block(t) → 6 modulation vectors
    y (T5, B×L×4096) ─ MLP → B×L×C  (padding tokens masked out)
    repeat depth×: spatial block, temporal block
    final: LN, modulate with t, linear → patches → (B, 2·4, T, H, W)  (velocity, unused σ)

Frames where ``x_mask`` is False are conditioning frames (a clean reference): their modulation
comes from the same embeddings at timestep 0 (``t0``) instead of the sampling timestep.

State-dict keys and ``config.json`` fields are those of ``hpcai-tech/OpenSora-STDiT-v3``; attention
is torch SDPA (flash-attn/xformers only as optional accelerators, see ``attention.py``) and layer norms
are plain PyTorch, so no xformers/flash-attn/apex is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention
from .config import ReleasedConfig


@dataclass
class STDiT3Config(ReleasedConfig):
    """Fields of the released ``config.json`` that shape the network (others are ignored)."""

    in_channels: int = 4
    patch_size: tuple[int, int, int] = (1, 2, 2)
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    pred_sigma: bool = True
    caption_channels: int = 4096
    model_max_length: int = 300
    input_sq_size: int = 512
    qk_norm: bool = True
    skip_y_embedder: bool = False
    extra: dict = field(default_factory=dict, repr=False)

    ARCHITECTURE = "STDiT3"
    MODEL_TYPE = "STDiT3"


# --------------------------------------------------------------------------------------- embeddings


def sinusoid(values: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """GLIDE/DiT timestep features ``[cos(v·f), sin(v·f)]`` with log-spaced frequencies, fp32."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = values.float()[:, None] * freqs.to(values.device)[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class ScalarEmbedder(nn.Module):
    """Scalar (timestep, fps) → sinusoid(256) → Linear → SiLU → Linear (keys ``mlp.0``, ``mlp.2``)."""

    def __init__(self, hidden_size: int, frequency_size: int = 256):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.mlp(sinusoid(values, self.frequency_size).to(dtype))


class PatchEmbed3D(nn.Module):
    """Non-overlapping (pt, ph, pw) patches → tokens, zero-padding T/H/W up to the patch grid."""

    def __init__(self, patch_size: tuple[int, int, int], in_channels: int, hidden_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_channels, hidden_size, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pt, ph, pw = self.patch_size
        _, _, t, h, w = x.shape
        x = F.pad(x, (0, -w % pw, 0, -h % ph, 0, -t % pt))
        return self.proj(x)  # (B, C, T', H', W')


class CaptionProjection(nn.Module):
    """T5 features → hidden size (GELU-tanh MLP). ``y_embedding`` is the learned null caption used
    as the unconditional input for classifier-free guidance."""

    def __init__(self, caption_channels: int, hidden_size: int, max_length: int):
        super().__init__()
        self.y_proj = Mlp(caption_channels, hidden_size, hidden_size)
        self.register_buffer("y_embedding", torch.randn(max_length, caption_channels) / caption_channels**0.5)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.y_proj(y)


class Mlp(nn.Module):
    """Linear → GELU(tanh) → Linear (timm ``Mlp`` key names ``fc1``/``fc2``)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


def position_embedding_2d(
    height: int, width: int, dim: int, scale: float, base_size: int, device=None
) -> torch.Tensor:
    """2-D sin-cos embedding (h·w, dim): first half encodes the column, second half the row.

    Grid coordinates are ``arange(n) / scale · base_size / n`` so the embedding stretches with the
    aspect ratio and is rescaled with the pixel area relative to the 512² training size.
    """
    half = dim // 2
    inv_freq = 1.0 / (10000 ** (torch.arange(0, half, 2, dtype=torch.float32, device=device) / half))
    rows = torch.arange(height, device=device) / scale * (base_size / height)
    cols = torch.arange(width, device=device) / scale * (base_size / width)

    def sincos(pos: torch.Tensor) -> torch.Tensor:
        angles = pos[:, None] * inv_freq[None]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)

    col_emb = sincos(cols)[None, :, :].expand(height, width, half)
    row_emb = sincos(rows)[:, None, :].expand(height, width, half)
    return torch.cat([col_emb, row_emb], dim=-1).reshape(height * width, dim)


class RotaryEmbedding(nn.Module):
    """RoPE over the temporal axis with interleaved channel pairs (theta 10⁴).

    ``freqs`` is saved in the released checkpoint (key ``rope.freqs``), so it is a persistent buffer.
    """

    def __init__(self, dim: int, theta: float = 10000.0):
        super().__init__()
        self.register_buffer("freqs", 1.0 / theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` (..., N, D) by position along N."""
        n = x.shape[-2]
        angles = torch.arange(n, device=x.device, dtype=self.freqs.dtype)[:, None] * self.freqs[None]
        angles = angles.repeat_interleave(2, dim=-1)
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return x * angles.cos().to(x.dtype) + rotated * angles.sin().to(x.dtype)


class RMSNorm(nn.Module):
    """RMS norm over the head dimension, computed in fp32 (Llama/T5 style)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


# ---------------------------------------------------------------------------------------- attention


class SelfAttention(nn.Module):
    """Multi-head self-attention with per-head q/k RMS norm and optional RoPE (after the norm)."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool, rope: RotaryEmbedding | None = None):
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.q_norm = RMSNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)
        # Shared with the model (not a child module, so its buffer is saved once as ``rope.freqs``).
        self._rope = [rope] if rope is not None else []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if self._rope:
            q, k = self._rope[0](q), self._rope[0](k)
        out = attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class CrossAttention(nn.Module):
    """Image tokens attend to the caption tokens of their own sample; padding tokens are masked."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_mask: torch.Tensor | None) -> torch.Tensor:
        """x (B,N,C); y (B,L,C); y_mask (B,L) bool or None (all tokens valid)."""
        b, n, c = x.shape
        heads, hd = self.num_heads, c // self.num_heads
        q = self.q_linear(x).view(b, n, heads, hd).transpose(1, 2)
        k, v = self.kv_linear(y).view(b, y.shape[1], 2, heads, hd).permute(2, 0, 3, 1, 4)
        out = attention(q, k, v, y_mask)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


# ------------------------------------------------------------------------------------------- blocks


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class STDiT3Block(nn.Module):
    """adaLN-single transformer block; spatial or temporal depending on the attention axis.

    Tokens are kept as (B, T, S, C). ``mod`` holds the 6 modulation vectors per frame (B, T', 6, C)
    with T' = 1 (no conditioning frames) or T (per-frame choice between t and t0).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qk_norm: bool, temporal: bool, rope=None):
        super().__init__()
        self.temporal = temporal
        self.norm1 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.attn = SelfAttention(dim, num_heads, qk_norm, rope if temporal else None)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, y: torch.Tensor, y_mask, mod: torch.Tensor) -> torch.Tensor:
        b, t, s, c = x.shape
        params = (self.scale_shift_table + mod).unsqueeze(3)  # (B, T', 6, 1, C)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = params.unbind(dim=2)

        h = modulate(self.norm1(x), shift_msa, scale_msa)
        if self.temporal:
            h = self.attn(h.transpose(1, 2).reshape(b * s, t, c)).view(b, s, t, c).transpose(1, 2)
        else:
            h = self.attn(h.reshape(b * t, s, c)).view(b, t, s, c)
        x = x + gate_msa * h

        x = x + self.cross_attn(x.reshape(b, t * s, c), y, y_mask).view(b, t, s, c)

        h = self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))
        return x + gate_mlp * h


class FinalLayer(nn.Module):
    """LayerNorm, modulation by the (unprojected) time embedding, linear to patch pixels."""

    def __init__(self, dim: int, patch_volume: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.linear = nn.Linear(dim, patch_volume * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, t: torch.Tensor, t0: torch.Tensor | None = None, x_mask=None):
        """x (B,T,S,C); t, t0 (B,C) time embeddings at the sampling timestep and at 0.

        Conditioning frames (``x_mask`` False) are modulated with ``t0`` *after* the ``t``
        modulation and a second LayerNorm: upstream's T2IFinalLayer does this (it re-normalises its
        already modulated tensor), and the released weights were trained with it, so it is kept.
        """
        shift, scale = (self.scale_shift_table + t[:, None]).unbind(dim=1)
        h = modulate(self.norm_final(x), shift[:, None, None], scale[:, None, None])
        if x_mask is not None:
            shift0, scale0 = (self.scale_shift_table + t0[:, None]).unbind(dim=1)
            h0 = modulate(self.norm_final(h), shift0[:, None, None], scale0[:, None, None])
            h = torch.where(x_mask[:, :, None, None], h, h0)
        return self.linear(h)


# -------------------------------------------------------------------------------------------- model


class STDiT3(nn.Module):
    """Open-Sora 1.2 denoiser. ``forward`` returns (B, out_channels, T, H, W) in fp32."""

    def __init__(self, config: STDiT3Config):
        super().__init__()
        self.config = config
        c = config.hidden_size
        self.rope = RotaryEmbedding(c // config.num_heads)
        self.x_embedder = PatchEmbed3D(config.patch_size, config.in_channels, c)
        self.t_embedder = ScalarEmbedder(c)
        self.fps_embedder = ScalarEmbedder(c)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(c, 6 * c))
        self.y_embedder = CaptionProjection(config.caption_channels, c, config.model_max_length)
        args = (c, config.num_heads, config.mlp_ratio, config.qk_norm)
        self.spatial_blocks = nn.ModuleList(STDiT3Block(*args, temporal=False) for _ in range(config.depth))
        self.temporal_blocks = nn.ModuleList(
            STDiT3Block(*args, temporal=True, rope=self.rope) for _ in range(config.depth)
        )
        self.final_layer = FinalLayer(c, math.prod(config.patch_size), config.out_channels)
        #: blocks pairs kept on ``offload_device`` and moved in only while they run (block swap).
        self.swap_blocks = 0
        self.offload_device: torch.device | None = None

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
        """Project T5 features; returns (y (B,L,C), bool mask (B,L) or None).

        ``y`` may be (B,1,L,D) as upstream passes it. A mask with fewer rows than ``y`` is repeated
        (upstream reuses the prompt's mask for the null caption). Trailing positions that no sample
        uses are dropped, which changes nothing but saves work.
        """
        if y.dim() == 4:
            y = y.squeeze(1)
        if self.config.skip_y_embedder:
            raise NotImplementedError("skip_y_embedder checkpoints (pre-projected captions) are unsupported")
        y = self.y_embedder(y)
        if y.shape[0] != batch:
            y = y.repeat(batch // y.shape[0], 1, 1)
        if mask is None:
            return y, None
        mask = mask.reshape(mask.shape[0], -1).bool()
        if mask.shape[0] != batch:
            mask = mask.repeat(batch // mask.shape[0], 1)
        used = mask.any(dim=0).nonzero()
        length = int(used.max()) + 1 if len(used) else 1
        return y[:, :length], mask[:, :length].to(y.device)

    def forward(
        self,
        x: torch.Tensor,
        timestep: torch.Tensor,
        y: torch.Tensor,
        mask: torch.Tensor | None = None,
        x_mask: torch.Tensor | None = None,
        fps: torch.Tensor | float | None = None,
        height: torch.Tensor | float | None = None,
        width: torch.Tensor | float | None = None,
        **_: object,
    ) -> torch.Tensor:
        """x (B,C,T,H,W) latents; timestep (B,) in [0, 1000]; y (B,[1,]L,D) T5 features; mask (B,L)
        caption mask; x_mask (B,T) bool, False = conditioning frame; fps, height, width: the video's
        frame rate and pixel size (height·width sets the position-embedding scale)."""
        dtype = self.dtype
        b, _, frames, lat_h, lat_w = x.shape
        x, timestep, y = x.to(dtype), timestep.to(dtype), y.to(dtype)
        pt, ph, pw = self.config.patch_size
        nt, nh, nw = -(-frames // pt), -(-lat_h // ph), -(-lat_w // pw)
        s = nh * nw

        # timestep (+ fps) embedding; t0 for clean conditioning frames
        fps_t = torch.as_tensor(fps if fps is not None else 24.0, device=x.device).reshape(-1)
        fps_emb = self.fps_embedder(fps_t, dtype)
        fps_emb = fps_emb.repeat(b // fps_emb.shape[0], 1) if fps_emb.shape[0] != b else fps_emb
        temb = self.t_embedder(timestep, dtype) + fps_emb  # (B, C)
        frame_temb = temb[:, None]  # (B, 1, C): same for every frame
        t0 = None
        if x_mask is not None:
            x_mask = x_mask.to(x.device).bool()
            t0 = self.t_embedder(torch.zeros_like(timestep), dtype) + fps_emb
            frame_temb = torch.where(x_mask[:, :, None], frame_temb, t0[:, None])  # (B, T, C)
        mod = self.t_block(frame_temb).unflatten(-1, (6, -1))  # (B, T', 6, C)

        y, y_mask = self.embed_caption(y, mask, b)

        # tokens (B, T, S, C) with the 2-D position embedding
        tokens = self.x_embedder(x).flatten(3).permute(0, 2, 3, 1)
        height_px = float(torch.as_tensor(height if height is not None else lat_h * 8).reshape(-1)[0])
        width_px = float(torch.as_tensor(width if width is not None else lat_w * 8).reshape(-1)[0])
        scale = math.sqrt(height_px * width_px) / self.config.input_sq_size
        pos = position_embedding_2d(nh, nw, tokens.shape[-1], scale, round(s**0.5), device=x.device)
        tokens = tokens + pos.to(dtype)

        for i, (spatial, temporal) in enumerate(zip(self.spatial_blocks, self.temporal_blocks)):
            swap = i < self.swap_blocks and self.offload_device is not None
            if swap:
                spatial.to(x.device)
                temporal.to(x.device)
            try:
                tokens = spatial(tokens, y, y_mask, mod)
                tokens = temporal(tokens, y, y_mask, mod)
            finally:  # also on out-of-memory/interrupt: a swapped pair never stays on the GPU
                if swap:
                    spatial.to(self.offload_device)
                    temporal.to(self.offload_device)

        out = self.final_layer(tokens, temb, t0, x_mask)  # (B, T, S, pt·ph·pw·Cout)
        return self.unpatchify(out, nt, nh, nw)[:, :, :frames, :lat_h, :lat_w].float()

    def unpatchify(self, x: torch.Tensor, nt: int, nh: int, nw: int) -> torch.Tensor:
        pt, ph, pw = self.config.patch_size
        c = self.config.out_channels
        x = x.reshape(x.shape[0], nt, nh, nw, pt, ph, pw, c)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(x.shape[0], c, nt * pt, nh * ph, nw * pw)
