"""Allocation-lean inference forwards for the stock diffusers blocks of DisCo's networks.

Why: on the CPU a fresh tensor of tens of MB costs a page fault per 4 KB page on first touch, and
a DisCo step at 256² with a 16-frame CFG batch allocated about 8 GB of such pages (page faults were
about 15 % of the step: the same run with glibc told to keep freed memory was that much faster).
Most of it is activations that are used once: ``silu(norm(x))``, ``attn(x) + x``, the 8×-wide GEGLU
feed-forward intermediate of every transformer block. These forwards compute the same values with
the element-wise steps done in place on tensors that were just produced (the GEGLU gate product
too), and the feed-forward (LayerNorm, GEGLU, output projection, residual) run a few hundred to
a couple of thousand tokens at a time, so its intermediates (about 8 MB) stay in cache and are
recycled by the allocator instead of paged in.

The transformers' 1x1-conv projections become batched matmuls that read and write the token-major
layout directly (:class:`LeanTransformer2D`), which removes two permuted copies per transformer;
the other 1x1 convolutions are batched matmuls too (:class:`LeanConv1x1`).

Only the configuration DisCo's SD-1 networks have is taken over (plain LayerNorm transformer
blocks, ResNets without up/down-sampling that add the time embedding or have none, dense 1x1
convolutions without padding); anything else,
and every call with autograd enabled or in training mode, runs diffusers' own forward. State-dict
keys do not change: the classes are swapped on the existing modules and add no parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers.models.activations import GEGLU
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn

from ..common.pointwise import pointwise

FF_ROWS = 2048  # most tokens per feed-forward chunk
FF_CHUNK_ELEMENTS = 2**21  # GEGLU intermediate per chunk (rows x 8*C): 8 MB in fp32


def _inference(module: nn.Module) -> bool:
    return not module.training and not torch.is_grad_enabled()


def _feed_forward(ff: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """``ff(h)``; for diffusers' GEGLU feed-forward the gate product is taken in place in the
    projection's output (``value * gelu(gate)``, the same product), one intermediate fewer."""
    layers = list(ff.net)
    if not (len(layers) >= 3 and type(layers[0]) is GEGLU and isinstance(layers[2], nn.Linear)):
        return ff(h)
    value, gate = layers[0].proj(h).chunk(2, dim=-1)
    h = value.mul_(F.gelu(gate))  # a strided view: the next GEMM reads it with its row stride
    for layer in layers[1:]:
        h = layer(h)
    return h


def feed_forward_residual(norm: nn.Module, ff: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``ff(norm(x)) + x`` for per-token ``norm`` and ``ff``, in chunks of tokens on the CPU.

    A chunk's intermediate is kept near :data:`FF_CHUNK_ELEMENTS` (at most :data:`FF_ROWS` tokens),
    so it stays in the caches and below glibc's 32 MB limit for recycling freed memory (bigger
    blocks are mapped fresh, page by page, on every call); GPU allocators recycle memory without
    page faults, and chunks would only add launches there.
    """
    if x.device.type != "cpu":
        return _feed_forward(ff, norm(x)).add_(x)
    rows = x.reshape(-1, x.shape[-1])
    first = ff.net[0]
    inner = first.proj.out_features if isinstance(first, GEGLU) else 8 * x.shape[-1]
    step = max(1, min(FF_ROWS, FF_CHUNK_ELEMENTS // inner))
    out = torch.empty_like(rows)
    for i in range(0, rows.shape[0], step):
        chunk = rows[i : i + step]
        torch.add(_feed_forward(ff, norm(chunk)), chunk, out=out[i : i + step])
    return out.view(x.shape)


def transformer_block_forward(
    block: BasicTransformerBlock,
    x: torch.Tensor,
    encoder_hidden_states: torch.Tensor | None,
    attention_mask: torch.Tensor | None = None,
    encoder_attention_mask: torch.Tensor | None = None,
    attention_kwargs: dict | None = None,
    between: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """The SD-1 transformer block, ``x += attn1(norm1 x)``, ``x += between(x)`` (DisCo's temporal
    attention, when given), ``x += attn2(norm2 x, context)``, ``x += ff(norm3 x)``.

    Each residual is added in place to the sublayer's output (a fresh tensor, so this is also
    autograd-safe); at inference the feed-forward runs through :func:`feed_forward_residual`.
    """
    kwargs = attention_kwargs or {}
    context = encoder_hidden_states if block.only_cross_attention else None
    x = block.attn1(
        block.norm1(x), encoder_hidden_states=context, attention_mask=attention_mask, **kwargs
    ).add_(x)
    if between is not None:
        x = between(x).add_(x)
    if block.attn2 is not None:
        x = block.attn2(
            block.norm2(x),
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=encoder_attention_mask,
            **kwargs,
        ).add_(x)
    if _inference(block):
        return feed_forward_residual(block.norm3, block.ff, x)
    return block.ff(block.norm3(x)).add_(x)


class LeanTransformerBlock(BasicTransformerBlock):
    """BasicTransformerBlock (LayerNorm type, self- then cross-attention) run as
    :func:`transformer_block_forward` at inference."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        timestep: torch.Tensor | None = None,
        cross_attention_kwargs: dict | None = None,
        class_labels: torch.Tensor | None = None,
        added_cond_kwargs: dict | None = None,
    ) -> torch.Tensor:
        if not (_inference(self) and attention_mask is None and encoder_attention_mask is None
                and not cross_attention_kwargs and hidden_states.ndim == 3):
            return super().forward(
                hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask, timestep,
                cross_attention_kwargs, class_labels, added_cond_kwargs,
            )
        return transformer_block_forward(self, hidden_states, encoder_hidden_states)


class LeanResnetBlock(ResnetBlock2D):
    """ResnetBlock2D (no resampling; the time embedding added, or none) with the SiLUs, the time-embedding
    add, the shortcut add and the output scaling done in place at inference."""

    def forward(self, input_tensor: torch.Tensor, temb: torch.Tensor | None, *args, **kwargs) -> torch.Tensor:
        if not _inference(self) or args or kwargs:
            return super().forward(input_tensor, temb, *args, **kwargs)
        h = self.conv1(F.silu(self.norm1(input_tensor), inplace=True))
        if self.time_embedding_norm == "default" and self.time_emb_proj is not None and temb is not None:
            t = temb if self.skip_time_act else F.silu(temb)
            h.add_(self.time_emb_proj(t)[:, :, None, None])
        h = self.conv2(self.dropout(F.silu(self.norm2(h), inplace=True)))
        shortcut = self.conv_shortcut(input_tensor) if self.conv_shortcut is not None else input_tensor
        h.add_(shortcut)
        return h if self.output_scale_factor == 1 else h.div_(self.output_scale_factor)


class LeanTransformer2D(Transformer2DModel):
    """Transformer2DModel (1x1-conv projections) whose projections at inference are batched matmuls
    that read and write the token-major layout directly: ``proj_in`` reads the normalised NCHW map
    as (HW x C) and writes (B, HW, C') tokens, ``proj_out`` writes NCHW and the residual is added in
    place. Diffusers' form (a 1x1 conv, then a permuted copy; a contiguous copy back, then a conv)
    took 3x as long at 32x32 tokens."""

    def _operate_on_continuous_inputs(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, int]:
        if not _inference(self):
            return super()._operate_on_continuous_inputs(hidden_states)
        batch, channels, height, width = hidden_states.shape
        h = self.norm(hidden_states).view(batch, channels, height * width).transpose(1, 2)
        inner = self.proj_in.out_channels
        weight = self.proj_in.weight.view(inner, channels).t().expand(batch, channels, inner)
        if self.proj_in.bias is None:
            return torch.bmm(h, weight), inner
        return torch.baddbmm(self.proj_in.bias.view(1, 1, inner), h, weight), inner

    def _get_output_for_continuous_inputs(
        self, hidden_states: torch.Tensor, residual: torch.Tensor, batch_size: int, height: int, width: int,
        inner_dim: int,
    ) -> torch.Tensor:
        if not _inference(self):
            return super()._get_output_for_continuous_inputs(
                hidden_states, residual, batch_size, height, width, inner_dim
            )
        out_channels = self.proj_out.out_channels
        tokens = hidden_states.transpose(1, 2)  # (B, C', HW), a view
        out = pointwise(tokens, self.proj_out.weight.view(out_channels, inner_dim), self.proj_out.bias)
        return out.view(batch_size, out_channels, height, width).add_(residual)


class LeanConv1x1(nn.Conv2d):
    """A 1x1 convolution (the ControlNets' zero convolutions, the ResNet shortcuts) computed at
    inference as one batched matmul ``W (O x C) @ x (C x HW)`` per image on the contiguous NCHW map:
    on the CPU 1.8-3x oneDNN's 1x1 convolution for 160-480 channels on 32x32 maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (_inference(self) and x.ndim == 4 and x.is_contiguous()):
            return super().forward(x)
        batch, channels, height, width = x.shape
        out = pointwise(x.view(batch, channels, height * width), self.weight.view(-1, channels), self.bias)
        return out.view(batch, self.out_channels, height, width)


def _lean_conv1x1(conv: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d
        and conv.kernel_size == (1, 1)
        and conv.stride == (1, 1)
        and conv.padding in ((0, 0), "valid")
        and conv.dilation == (1, 1)
        and conv.groups == 1
    )


def _lean_transformer_2d(model: nn.Module) -> bool:
    return (
        type(model) is Transformer2DModel
        and model.is_input_continuous
        and not model.use_linear_projection
        and isinstance(model.proj_in, nn.Conv2d)
        and isinstance(model.proj_out, nn.Conv2d)
        and model.proj_in.kernel_size == (1, 1)
        and model.proj_out.kernel_size == (1, 1)
        and model.proj_in.groups == model.proj_out.groups == 1
    )


def _lean_transformer(block: nn.Module) -> bool:
    return (
        type(block) is BasicTransformerBlock
        and block.norm_type == "layer_norm"
        and block.pos_embed is None
        and not block.only_cross_attention
        and block.attn2 is not None
        and not hasattr(block, "fuser")
        and isinstance(block.norm1, nn.LayerNorm)
        and isinstance(block.norm2, nn.LayerNorm)
        and isinstance(block.norm3, nn.LayerNorm)
    )


def _lean_resnet(block: nn.Module) -> bool:
    return (
        type(block) is ResnetBlock2D
        and block.upsample is None
        and block.downsample is None
        and block.time_embedding_norm in ("default", "group")  # "group": no time embedding (the VAE)
        and isinstance(block.nonlinearity, nn.SiLU)
    )


def use_lean_blocks(net: nn.Module) -> int:
    """Swap the qualifying blocks of ``net`` to their lean classes; returns how many were swapped."""
    swapped = 0
    for module in net.modules():
        if _lean_transformer(module):
            module.__class__ = LeanTransformerBlock
        elif _lean_resnet(module):
            module.__class__ = LeanResnetBlock
        elif _lean_transformer_2d(module):
            module.__class__ = LeanTransformer2D
        elif _lean_conv1x1(module):
            module.__class__ = LeanConv1x1
        else:
            continue
        swapped += 1
    return swapped
