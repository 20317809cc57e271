"""IDDPM ancestral sampling with timestep respacing (Nichol & Dhariwal 2021), as Open-Sora 1.0/1.1 use it.

Training used 1000 linear-β steps (1e-4 … 0.02); sampling keeps N evenly spaced steps of that chain
and re-derives β for the shorter chain: β'_i = 1 − ᾱ_{k_i} / ᾱ_{k_{i−1}}. The model predicts ε and a
learned-range variance v ∈ [−1, 1] that interpolates (in log space) between the posterior
variance and β'. Each step::

    x̂0   = √(1/ᾱ_i)·x − √(1/ᾱ_i − 1)·ε
    μ    = c1_i·x̂0 + c2_i·x                      (posterior mean of q(x_{i−1} | x_i, x̂0))
    x    ← μ + exp(½·log σ²) · z                 (no noise at the last step)

The model sees the original timestep index k_i. As upstream, the respaced β are rounded to fp32
and the whole short chain is computed in fp32.

Conditioning frames (``mask`` (B,T) in [0,1], 1 = generate, 0 = keep the reference): a frame with
mask m is kept at its clean value until step ⌊m·N⌋, noised to that level once, then denoised; frames
still waiting are modulated at timestep 0 (``x_mask`` False). ``steps`` is honoured exactly
(the seed pack ignored it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

NoiseFn = Callable[[tuple[int, ...]], torch.Tensor]


def space_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """Indices of the ``steps`` kept steps out of ``num_timesteps``, evenly spaced (incl. both ends),
    rounding a running fractional index as the reference implementation does."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be between 1 and {num_timesteps}, got {steps}")
    stride = 1.0 if steps <= 1 else (num_timesteps - 1) / (steps - 1)
    kept, position = [], 0.0
    for _ in range(steps):
        kept.append(round(position))
        position += stride
    return sorted(set(kept))


class SpacedDiffusion:
    """The respaced chain's coefficients (fp32), indexed by the short-chain step i (0 = cleanest)."""

    def __init__(
        self, steps: int, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
    ):
        betas = torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.timestep_map = space_timesteps(num_timesteps, steps)
        new_betas, last = [], 1.0
        for k in self.timestep_map:
            new_betas.append(float(1.0 - alphas_cumprod[k] / last))
            last = alphas_cumprod[k]
        b = torch.tensor(new_betas, dtype=torch.float32)
        self.num_steps = len(b)
        ac = torch.cumprod(1.0 - b, dim=0)
        ac_prev = torch.cat([torch.ones(1), ac[:-1]])
        self.sqrt_ac = ac.sqrt()
        self.sqrt_one_minus_ac = (1.0 - ac).sqrt()
        self.sqrt_recip_ac = (1.0 / ac).sqrt()
        self.sqrt_recipm1_ac = (1.0 / ac - 1).sqrt()
        posterior_var = b * (1.0 - ac_prev) / (1.0 - ac)
        # log posterior variance, clipped at i = 0 (where it is 0) to the value at i = 1
        self.posterior_log_var = torch.log(torch.cat([posterior_var[1:2], posterior_var[1:]]))
        self.log_betas = torch.log(b)
        self.coef_x0 = b * ac_prev.sqrt() / (1.0 - ac)
        self.coef_xt = (1.0 - ac_prev) * (1.0 - b).sqrt() / (1.0 - ac)

    def step(self, out: torch.Tensor, x: torch.Tensor, i: int, noise: torch.Tensor) -> torch.Tensor:
        """One ancestral step from short-chain index i given the model output (ε ‖ v)."""
        eps, v = out.split(x.shape[1], dim=1)
        frac = (v + 1) / 2
        log_var = frac * self.log_betas[i] + (1 - frac) * self.posterior_log_var[i]
        x0 = self.sqrt_recip_ac[i] * x - self.sqrt_recipm1_ac[i] * eps
        mean = self.coef_x0[i] * x0 + self.coef_xt[i] * x
        return mean + (i != 0) * torch.exp(0.5 * log_var) * noise


@torch.no_grad()
def sample_iddpm(
    denoise: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    z: torch.Tensor,
    steps: int,
    noise_fn: NoiseFn,
    mask: torch.Tensor | None = None,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Denoise ``z`` (B,C,T,H,W) (or images (B,C,H,W) without mask) in ``steps`` respaced steps.

    ``denoise(x, t, x_mask)`` returns ε and the variance channels (2C); ``t`` holds original
    timestep indices. ``mask`` (B,T): 1 = generate the frame, 0 = keep ``z``'s frame (reference
    latents already placed in ``z``), in between = edit strength. ``callback(step, total, x)``
    runs after every step (progress, previews, interruption).
    """
    chain = SpacedDiffusion(steps)
    x = z.float()
    b = x.shape[0]
    mask_steps = None if mask is None else (mask.to(x.device).float() * chain.num_steps).to(torch.int)
    per_frame = (slice(None), None, slice(None), None, None)
    for n, i in enumerate(reversed(range(chain.num_steps))):
        t = torch.full((b,), chain.timestep_map[i], device=x.device, dtype=torch.long)
        x_mask = None
        if mask_steps is not None:
            x0 = x
            x_noised = x0 * chain.sqrt_ac[i] + noise_fn(x.shape).to(x) * chain.sqrt_one_minus_ac[i]
            x = torch.where((mask_steps == i)[per_frame], x_noised, x0)
            x_mask = mask_steps > i
        out = denoise(x, t, x_mask).float()
        x_new = chain.step(out, x, i, noise_fn(x.shape).to(x))
        if mask_steps is not None:
            x_new = torch.where((mask_steps < i)[per_frame], x0, x_new)
        x = x_new
        if callback is not None:
            callback(n, chain.num_steps, x)
    return x
