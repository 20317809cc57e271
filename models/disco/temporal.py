"""DisCo's temporal layers, added to stock diffusers networks (the ``TemConvNet`` variant).

DisCo's video model inflates every ResNet and transformer block of the UNet and of both ControlNets:

* **temporal convolution** after ``conv2`` of each ResNet: ``h ← h + Conv1d_k3(SiLU(GroupNorm(h)))``
  along the frame axis, per pixel (``resnets.N.tem_norm``, ``resnets.N.tem_conv``);
* **temporal self-attention** between self- and cross-attention of each transformer block, attending
  over the frames of one spatial token, with no positional encoding
  (``transformer_blocks.0.tem_attn``).

Quirks of the released model, kept because the weights were trained with them:

* the temporal attention is pre-normalised with ``norm2`` (the cross-attention LayerNorm, applied
  again before cross-attention); the block's own ``tem_norm`` is saved but never used;
* the ResNet GroupNorms (``norm1``, ``norm2``, ``tem_norm``) and the UNet's ``conv_norm_out`` see the
  whole clip, so their statistics are pooled over all frames of a sample; the transformer's input
  GroupNorm stays per frame.

The networks keep working on ``(batch·frames, C, H, W)`` tensors like the image model; the number of
frames per sample is held in one shared :class:`FrameCount` per network, set with
:func:`set_num_frames` before a forward pass. All 2-D key names stay unchanged, and the added modules
carry the released names, so a temporal checkpoint loads strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention
from diffusers.models.resnet import ResnetBlock2D
from torch import nn

from .lean_blocks import transformer_block_forward


class FrameCount:
    """Frames per sample of the clip going through a network (shared by all its temporal layers)."""

    def __init__(self, frames: int = 1) -> None:
        self.frames = frames

    def split(self, batch_frames: int) -> tuple[int, int]:
        """``(batch, frames)`` of a ``batch·frames`` leading dimension (clear error if it is not one)."""
        frames = self.frames
        if frames < 1 or batch_frames % frames:
            raise ValueError(
                f"temporal DisCo got {batch_frames} images, not a multiple of {frames} frames per clip; "
                "call set_num_frames() with the window length first."
            )
        return batch_frames // frames, frames


class FramePooledGroupNorm(nn.GroupNorm):
    """GroupNorm whose statistics span all frames of a clip (upstream applies it to 5-D tensors)."""

    frame_count: FrameCount

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames = self.frame_count.split(x.shape[0])
        if frames == 1:
            return super().forward(x)
        channels = x.shape[1]
        clip = x.reshape(batch, frames, channels, -1).transpose(1, 2)  # b c f (hw)
        clip = F.group_norm(clip, self.num_groups, self.weight, self.bias, self.eps)
        return clip.transpose(1, 2).reshape(x.shape)


class TemporalResnetBlock(ResnetBlock2D):
    """ResnetBlock2D with DisCo's temporal convolution after ``conv2`` (SD-1 configuration only)."""

    frame_count: FrameCount
    tem_norm: FramePooledGroupNorm
    tem_conv: nn.Conv1d

    def forward(self, input_tensor: torch.Tensor, temb: torch.Tensor | None, *args, **kwargs) -> torch.Tensor:
        h = self.conv1(self.nonlinearity(self.norm1(input_tensor)))
        if self.time_emb_proj is not None and temb is not None:
            h = h + self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None]
        h = self.conv2(self.dropout(self.nonlinearity(self.norm2(h))))
        h = h + self.temporal_conv(h)
        shortcut = input_tensor if self.conv_shortcut is None else self.conv_shortcut(input_tensor)
        return (shortcut + h) / self.output_scale_factor

    def temporal_conv(self, h: torch.Tensor) -> torch.Tensor:
        """Conv1d over frames for every pixel: ``(b f) c h w → (b h w) c f → back``."""
        batch, frames = self.frame_count.split(h.shape[0])
        _, channels, height, width = h.shape
        x = self.nonlinearity(self.tem_norm(h))
        x = x.reshape(batch, frames, channels, height * width).permute(0, 3, 2, 1)
        x = self.tem_conv(x.reshape(-1, channels, frames))
        x = x.reshape(batch, height * width, channels, frames).permute(0, 3, 2, 1)
        return x.reshape(h.shape)


class TemporalTransformerBlock(BasicTransformerBlock):
    """BasicTransformerBlock with DisCo's temporal self-attention between self- and cross-attention."""

    frame_count: FrameCount
    tem_attn: Attention
    tem_norm: nn.LayerNorm  # in the released weights, unused by the forward pass (see module doc)

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
        return transformer_block_forward(
            self, hidden_states, encoder_hidden_states, attention_mask, encoder_attention_mask,
            cross_attention_kwargs, between=self.temporal_attention,
        )

    def temporal_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention across frames per token: ``(b f) d c → (b d) f c``, pre-normed by ``norm2``."""
        batch, frames = self.frame_count.split(x.shape[0])
        _, tokens, channels = x.shape
        seq = x.reshape(batch, frames, tokens, channels).transpose(1, 2).reshape(-1, frames, channels)
        out = self.tem_attn(self.norm2(seq))
        return out.reshape(batch, tokens, frames, channels).transpose(1, 2).reshape(x.shape)


def _pooled_norm(norm: nn.GroupNorm, count: FrameCount, copy_weights: bool = True) -> FramePooledGroupNorm:
    pooled = FramePooledGroupNorm(norm.num_groups, norm.num_channels, eps=norm.eps, affine=norm.affine)
    if copy_weights:
        pooled.load_state_dict(norm.state_dict())
    pooled.to(device=norm.weight.device, dtype=norm.weight.dtype)
    pooled.frame_count = count
    return pooled


def _inflate_resnet(block: ResnetBlock2D, count: FrameCount) -> None:
    unsupported = (
        block.upsample is not None
        or block.downsample is not None
        or block.time_embedding_norm != "default"
        or block.skip_time_act
    )
    if unsupported:
        raise ValueError(
            "DisCo temporal layers support SD-1 ResNet blocks only (no up/down-sampling ResNets)."
        )
    channels = block.conv2.out_channels
    block.__class__ = TemporalResnetBlock
    block.frame_count = count
    block.norm1 = _pooled_norm(block.norm1, count)
    block.norm2 = _pooled_norm(block.norm2, count)
    block.tem_norm = _pooled_norm(block.norm2, count, copy_weights=False)  # fresh, like upstream
    block.tem_conv = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
    nn.init.zeros_(block.tem_conv.weight)  # zero-init as upstream: an inflated image model is unchanged
    nn.init.zeros_(block.tem_conv.bias)
    block.tem_conv.to(device=block.conv2.weight.device, dtype=block.conv2.weight.dtype)


def _inflate_transformer_block(block: BasicTransformerBlock, count: FrameCount) -> None:
    if block.norm_type != "layer_norm" or block.pos_embed is not None:
        raise ValueError("DisCo temporal layers support SD-1 transformer blocks (layer_norm) only.")
    attn1 = block.attn1
    tem_attn = Attention(
        query_dim=block.dim,
        heads=attn1.heads,
        dim_head=attn1.inner_dim // attn1.heads,
        bias=block.attention_bias,
        upcast_attention=attn1.upcast_attention,
        out_bias=True,
    )
    nn.init.zeros_(tem_attn.to_out[0].weight)
    nn.init.zeros_(tem_attn.to_out[0].bias)
    ref = attn1.to_q.weight
    block.__class__ = TemporalTransformerBlock
    block.frame_count = count
    block.tem_attn = tem_attn.to(device=ref.device, dtype=ref.dtype)
    block.tem_norm = nn.LayerNorm(block.dim, elementwise_affine=block.norm_elementwise_affine).to(
        ref.device, ref.dtype
    )


def add_temporal_layers(net: nn.Module) -> FrameCount:
    """Turn a stock UNet2DConditionModel or ControlNetModel into DisCo's temporal variant, in place.

    Every ResNet gets the temporal convolution, every transformer block the temporal attention, and
    the UNet's output GroupNorm pools over frames. Returns the network's :class:`FrameCount`.
    """
    if hasattr(net, "disco_frame_count"):
        return net.disco_frame_count
    count = FrameCount()
    for module in list(net.modules()):
        if isinstance(module, ResnetBlock2D):
            _inflate_resnet(module, count)
        elif isinstance(module, BasicTransformerBlock):
            _inflate_transformer_block(module, count)
    if isinstance(getattr(net, "conv_norm_out", None), nn.GroupNorm):
        net.conv_norm_out = _pooled_norm(net.conv_norm_out, count)
    net.disco_frame_count = count
    return count


def is_temporal(net: nn.Module) -> bool:
    return hasattr(net, "disco_frame_count")


def set_num_frames(net: nn.Module, frames: int) -> None:
    """Frames per clip for the next forward passes of a temporal network (no-op for image networks)."""
    count = getattr(net, "disco_frame_count", None)
    if count is not None:
        count.frames = int(frames)
