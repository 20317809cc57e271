"""Classifier-free guidance around an Open-Sora/PixArt denoiser, and reproducible noise."""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoiser = Callable[..., torch.Tensor]


def classifier_free(
    model: Denoiser,
    y: torch.Tensor,
    y_null: torch.Tensor,
    scale: float,
    cfg_channels: int | None = None,
    **model_kwargs,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]:
    """``denoise(x, t, x_mask)`` running ``model`` on the batch [x, x] with captions [y, y_null].

    The guided prediction ``uncond + scale·(cond − uncond)`` replaces the first ``cfg_channels``
    output channels (default: the eps half, C_out/2); the remaining channels (learned variance)
    are the conditional ones, as upstream's ``forward_with_cfg`` does (v1.0/1.1 configs guide only
    3 of the 4 eps channels: ``cfg_channel=3``). ``model_kwargs`` (caption ``mask``, sizes, fps) are
    passed through; the caption mask stays (B, L) and the model repeats it for the null half.
    """
    y_both = torch.cat([y, y_null.to(y)], dim=0)

    def denoise(x: torch.Tensor, t: torch.Tensor, x_mask: torch.Tensor | None = None) -> torch.Tensor:
        extra = dict(model_kwargs)
        if x_mask is not None:
            extra["x_mask"] = torch.cat([x_mask, x_mask], dim=0)
        out = model(torch.cat([x, x]), torch.cat([t, t]), y_both, **extra)
        channels = out.shape[1] // 2 if cfg_channels is None else cfg_channels
        cond, uncond = out[:, :channels].chunk(2, dim=0)
        guided = uncond + scale * (cond - uncond)
        return torch.cat([guided, out[: x.shape[0], channels:]], dim=1)

    return denoise


def seeded_noise(seed: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
    """``noise_fn(shape)`` drawing from one CPU generator (same numbers on every device)."""
    gen = torch.Generator("cpu").manual_seed(int(seed))

    def noise_fn(shape) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=gen).to(device=device, dtype=dtype)

    return noise_fn
