"""MimicMotion / DisPose denoising UNet: the stock diffusers SVD UNet plus two extra inputs.

MimicMotion adds the PoseNet output to the feature map right after ``conv_in``. DisPose adds the
hybrid ControlNet's residuals to the UNet's skip connections and to the mid-block output.

The released DisPose UNet adds the ControlNet residuals inside the down-block loop. After every
down block, every skip collected so far gets its residual added again. The model was trained that
way, so skip ``j`` effectively receives ``m_j * residual_j`` with ``m = [4,4,4,4,3,3,3,2,2,2,1,1]``
for the SVD layout (skips made by the first down block, and the ``conv_in`` skip, are re-added after
each of the four blocks, and so on). The down blocks themselves never see the residuals. The mid
residual is added once.

Instead of copying the UNet's forward, :class:`MimicMotionUNet` subclasses the stock model and hooks
three points of its unchanged forward: ``conv_in`` (pose latents), ``mid_block`` (mid residual) and
each up block's incoming skip tuple (multiplied residuals). The state-dict keys are the stock ones,
which are the ``unet.*`` keys of ``MimicMotion_1-1.pth`` without the prefix.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
from diffusers import UNetSpatioTemporalConditionModel

from .attention import use_single_token_cross_attention

#: Effective residual multiplier per skip connection of the SVD UNet in the released DisPose code.
SVD_SKIP_MULTIPLIERS = (4, 4, 4, 4, 3, 3, 3, 2, 2, 2, 1, 1)


def skip_multipliers(unet: UNetSpatioTemporalConditionModel) -> list[int]:
    """How often the released code adds each skip's residual, derived from the down-block layout.

    The ``conv_in`` skip and the skips of down block ``b`` exist after blocks ``b..n-1``, so they
    are re-added ``n - b`` times.
    """
    n = len(unet.down_blocks)
    mults = [n]  # conv_in output, collected before the first block
    for b, block in enumerate(unet.down_blocks):
        count = len(block.resnets) + (len(block.downsamplers) if block.downsamplers is not None else 0)
        mults += [n - b] * count
    return mults


def _skips_per_up_block(unet: UNetSpatioTemporalConditionModel) -> list[list[int]]:
    """Indices of the skip connections each up block consumes (taken from the end of the list)."""
    total = 1 + sum(
        len(b.resnets) + (len(b.downsamplers) if b.downsamplers is not None else 0) for b in unet.down_blocks
    )
    out, end = [], total
    for block in unet.up_blocks:
        start = end - len(block.resnets)
        out.append(list(range(start, end)))
        end = start
    return out


class MimicMotionUNet(UNetSpatioTemporalConditionModel):
    """SVD UNet with MimicMotion pose latents and DisPose ControlNet residuals (see module docstring).

    ``forward(sample, timestep, encoder_hidden_states, added_time_ids, pose_latents=None,
    down_block_additional_residuals=None, mid_block_additional_residual=None)``; without the extra
    inputs it is exactly the stock SVD UNet.
    """

    _extra: dict[str, Any] | None = None
    _hooked: bool = False

    def _install_hooks(self) -> None:
        # Hooks are installed on first use: ConfigMixin builds this class through the stock __init__.
        self.conv_in.register_forward_hook(self._add_pose_latents)
        self.mid_block.register_forward_hook(self._add_mid_residual)
        for i, block in enumerate(self.up_blocks):
            # a partial of a bound method (not a closure), so that deepcopy rebinds it to the copy
            block.register_forward_pre_hook(functools.partial(self._add_skip_residuals, i), with_kwargs=True)
        use_single_token_cross_attention(self)  # one CLIP token: no attention needed
        self._skip_mults = skip_multipliers(self)
        self._up_skips = _skips_per_up_block(self)
        self._hooked = True

    def _add_pose_latents(self, module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        pose = (self._extra or {}).get("pose_latents")
        return output if pose is None else output + pose.to(output.dtype)

    def _add_mid_residual(self, module: torch.nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor:
        mid = (self._extra or {}).get("mid")
        return output if mid is None else output + mid.to(output.dtype)

    def _add_skip_residuals(
        self, index: int, module: torch.nn.Module, args: tuple, kwargs: dict
    ) -> tuple[tuple, dict]:
        residuals = (self._extra or {}).get("down")
        if residuals is None:
            return args, kwargs
        skips = kwargs["res_hidden_states_tuple"]
        ids = self._up_skips[index]
        kwargs["res_hidden_states_tuple"] = tuple(
            s + self._skip_mults[j] * residuals[j].to(s.dtype) for s, j in zip(skips, ids, strict=True)
        )
        return args, kwargs

    def forward(  # type: ignore[override]
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        added_time_ids: torch.Tensor,
        pose_latents: torch.Tensor | None = None,
        down_block_additional_residuals: Sequence[torch.Tensor] | None = None,
        mid_block_additional_residual: torch.Tensor | None = None,
        return_dict: bool = True,
    ):
        """Stock SVD forward; ``pose_latents`` is (B*F,320,h,w), residuals as the ControlNet returns them."""
        if not self._hooked:
            self._install_hooks()
        n_res = None if down_block_additional_residuals is None else len(down_block_additional_residuals)
        if n_res is not None and n_res != len(self._skip_mults):
            raise ValueError(f"expected {len(self._skip_mults)} down-block residuals, got {n_res}")
        self._extra = {
            "pose_latents": pose_latents,
            "down": down_block_additional_residuals,
            "mid": mid_block_additional_residual,
        }
        try:
            return super().forward(
                sample, timestep, encoder_hidden_states, added_time_ids, return_dict=return_dict
            )
        finally:
            self._extra = None
