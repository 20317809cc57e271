"""DisPose hybrid ControlNet: an SVD-UNet encoder copy guided by motion fields and keypoint features.

Inputs besides the UNet's own (noisy + reference latents, time, CLIP embedding, fps/motion/aug ids):

* two motion fields per frame, the dense CMP flow and the blurred sparse keypoint trajectories,
  each encoded by a small strided conv stack to 1/8 resolution and summed into ``conv_in``'s output
  (:class:`MotionFieldEmbedding`);
* reference keypoint features (DIFT) placed at each frame's keypoints by :class:`PointAdapter`,
  added to the output of every down block.

Outputs are the usual ControlNet residuals: one zero-conv per skip connection (12 for SVD) and one
for the mid block, scaled by ``conditioning_scale``.

The modules are stock diffusers blocks (``get_down_block``, ``UNetMidBlockSpatioTemporal``,
``Timesteps``, ``TimestepEmbedding``) arranged with the key names of ``DisPose.pth``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.unets.unet_3d_blocks import UNetMidBlockSpatioTemporal, get_down_block
from torch import nn

from .attention import use_single_token_cross_attention
from .point_adapter import PointAdapter


def _add_field_encoder(parent: nn.Module, name: str, widths: Sequence[int], out_channels: int) -> None:
    """Register ``conv_in_<name>``, ``blocks_<name>`` and ``conv_out_<name>`` on ``parent``.

    conv_in + SiLU, then [conv k3, SiLU, conv k3 stride 2, SiLU] per width step, then conv_out.
    """
    blocks = nn.ModuleList()
    for cin, cout in zip(widths[:-1], widths[1:], strict=True):
        blocks.append(nn.Conv2d(cin, cin, 3, padding=1))
        blocks.append(nn.Conv2d(cin, cout, 3, padding=1, stride=2))
    parent.add_module(f"conv_in_{name}", nn.Conv2d(2, widths[0], 3, padding=1))
    parent.add_module(f"blocks_{name}", blocks)
    parent.add_module(f"conv_out_{name}", nn.Conv2d(widths[-1], out_channels, 3, padding=1))


class MotionFieldEmbedding(nn.Module):
    """Encode the dense (CMP) and sparse (trajectory) flow fields into the ControlNet's input width.

    Both fields are (B, F-1, 2, H, W) in pixels; a zero field is prepended for the reference frame.
    """

    def __init__(self, out_channels: int = 320, widths: Sequence[int] = (16, 32, 96, 256)) -> None:
        super().__init__()
        _add_field_encoder(self, "flow", widths, out_channels)
        _add_field_encoder(self, "traj", widths, out_channels)
        self.conv_final = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def _encode(self, name: str, field: torch.Tensor) -> torch.Tensor:
        field = torch.cat([torch.zeros_like(field[:, :1]), field], dim=1).flatten(0, 1)
        x = F.silu(getattr(self, f"conv_in_{name}")(field))
        for conv in getattr(self, f"blocks_{name}"):
            x = F.silu(conv(x))
        return getattr(self, f"conv_out_{name}")(x)

    def forward(self, flow: torch.Tensor, traj: torch.Tensor) -> torch.Tensor:
        return self.conv_final(self._encode("flow", flow) + self._encode("traj", traj))


def _downsample_rates(down_block_types: Sequence[str]) -> list[int]:
    """Pixel stride of each down block's output (every block but the last halves the size)."""
    rates, rate = [], 8
    for i in range(len(down_block_types)):
        if i < len(down_block_types) - 1:
            rate *= 2
        rates.append(rate)
    return rates


class DisPoseControlNet(nn.Module):
    """The DisPose ControlNet; build it with :meth:`from_unet_config` (SVD UNet config dict)."""

    def __init__(self, config: Mapping[str, Any], point_embedding_channels: int = 1280) -> None:
        super().__init__()
        self.config = dict(config)
        widths = list(config["block_out_channels"])
        types = list(config["down_block_types"])
        n = len(types)

        def per_block(value: Any) -> list:
            return list(value) if isinstance(value, list | tuple) else [value] * n

        heads = per_block(config["num_attention_heads"])
        cross = per_block(config["cross_attention_dim"])
        layers = per_block(config["layers_per_block"])
        tlayers = per_block(config.get("transformer_layers_per_block", 1))
        temb = widths[0] * 4

        self.conv_in = nn.Conv2d(config["in_channels"], widths[0], 3, padding=1)
        self.time_proj = Timesteps(widths[0], True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(widths[0], temb)
        self.add_time_proj = Timesteps(config["addition_time_embed_dim"], True, downscale_freq_shift=0)
        self.add_embedding = TimestepEmbedding(config["projection_class_embeddings_input_dim"], temb)
        self.point_adapter = PointAdapter(point_embedding_channels, widths, _downsample_rates(types))
        self.controlnet_cond_embedding = MotionFieldEmbedding(widths[0])

        self.down_blocks = nn.ModuleList()
        zero_convs = [nn.Conv2d(widths[0], widths[0], 1)]
        cin = widths[0]
        for i, block_type in enumerate(types):
            last = i == n - 1
            self.down_blocks.append(
                get_down_block(
                    block_type,
                    num_layers=layers[i],
                    transformer_layers_per_block=tlayers[i],
                    in_channels=cin,
                    out_channels=widths[i],
                    temb_channels=temb,
                    add_downsample=not last,
                    resnet_eps=1e-5,
                    cross_attention_dim=cross[i],
                    num_attention_heads=heads[i],
                    resnet_act_fn="silu",
                )
            )
            zero_convs += [nn.Conv2d(widths[i], widths[i], 1) for _ in range(layers[i] + (0 if last else 1))]
            cin = widths[i]
        self.controlnet_down_blocks = nn.ModuleList(zero_convs)
        self.controlnet_mid_block = nn.Conv2d(widths[-1], widths[-1], 1)
        self.mid_block = UNetMidBlockSpatioTemporal(
            widths[-1],
            temb_channels=temb,
            transformer_layers_per_block=tlayers[-1],
            cross_attention_dim=cross[-1],
            num_attention_heads=heads[-1],
        )
        use_single_token_cross_attention(self)  # one CLIP token: no attention needed

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.conv_in.weight.device

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        controlnet_flow: torch.Tensor,
        traj_flow: torch.Tensor,
        point_list: Sequence[Mapping[str, np.ndarray]] | None = None,
        ref_point_emb: torch.Tensor | None = None,
        conditioning_scale: float = 1.0,
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Residuals for one tile: ``sample`` (B,F,8,h,w), flows (B,F-1,2,8h,8w), ``point_list`` F dicts.

        Keypoint features are the same for every batch item (CFG halves share them), so any batch
        size works, including 1 when guidance is off.
        """
        batch, frames = sample.shape[:2]
        height, width = controlnet_flow.shape[-2:]
        t = torch.as_tensor(timestep, device=sample.device)
        t = t.reshape(-1).expand(batch) if t.numel() == 1 else t
        emb = self.time_embedding(self.time_proj(t).to(sample.dtype))
        ids = self.add_time_proj(added_time_ids.flatten()).reshape(batch, -1).to(emb.dtype)
        emb = (emb + self.add_embedding(ids)).repeat_interleave(frames, dim=0)
        context = encoder_hidden_states.repeat_interleave(frames, dim=0)
        indicator = torch.zeros(batch, frames, dtype=sample.dtype, device=sample.device)

        x = self.conv_in(sample.flatten(0, 1))
        x = x + self.controlnet_cond_embedding(controlnet_flow, traj_flow)
        adapter: list[torch.Tensor] = []
        if point_list is not None and ref_point_emb is not None:
            adapter = self.point_adapter(point_list, ref_point_emb, height, width)

        skips = [x]
        for i, block in enumerate(self.down_blocks):
            kwargs = (
                {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
            )
            x, res = block(hidden_states=x, temb=emb, image_only_indicator=indicator, **kwargs)
            if adapter:
                x = x + adapter[i].repeat(batch, 1, 1, 1)
            skips.extend(res)
        x = self.mid_block(
            hidden_states=x, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator
        )

        down = [
            conv(s) * conditioning_scale for s, conv in zip(skips, self.controlnet_down_blocks, strict=True)
        ]
        return down, self.controlnet_mid_block(x) * conditioning_scale

    @classmethod
    def from_unet_config(
        cls, config: Mapping[str, Any], point_embedding_channels: int = 1280
    ) -> DisPoseControlNet:
        """Same encoder layout as the UNet; weights come from ``DisPose.pth`` afterwards."""
        return cls(config, point_embedding_channels)
