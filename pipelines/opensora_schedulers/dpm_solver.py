"""DPM-Solver++ (2M, multistep, data prediction; Lu et al. 2022) on the discrete linear-β VP chain.

This is how PixArt and Open-Sora's ``dpm-solver`` scheduler sample: continuous time t ∈ [1/1000, 1]
with log αₜ linearly interpolated between the 1000 training steps, ``time_uniform`` steps
tᵢ = linspace(1, 1/1000, N+1), model input time (t − 1/1000)·1000 (fractional), and with
λ = log α − log σ, h = λₜ − λₛ, the data prediction x̂0 = (x − σ·ε)/α::

    first step:  x ← σₜ/σₛ·x − αₜ·(e^{−h} − 1)·x̂0ₛ
    later steps: x ← σₜ/σₛ·x − αₜ·(e^{−h} − 1)·(x̂0ₛ + ½·(x̂0ₛ − x̂0ₚ)·h/hₚ)

With fewer than 10 steps the last step is first order ("lower order final"). diffusers'
DPMSolverMultistepScheduler implements the same update but on integer timesteps with another
spacing, so its samples differ; this module keeps upstream's schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class DPMSolverPP:
    """The VP schedule of a discrete linear-β model in continuous time (fp32 like upstream)."""

    def __init__(self, num_timesteps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02):
        betas = torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
        log_alpha = 0.5 * torch.log(1.0 - betas).cumsum(dim=0)
        # clip the end of the chain where the half-log-SNR falls below −5.1 (numerical stability)
        lam = log_alpha - 0.5 * torch.log(1.0 - torch.exp(2.0 * log_alpha))
        cut = int(torch.searchsorted(torch.flip(lam, [0]), torch.tensor(-5.1, dtype=torch.float64)))
        if cut > 0:
            log_alpha = log_alpha[:-cut]
        self.log_alpha_table = log_alpha.float()
        self.total = len(log_alpha)
        self.t_table = torch.linspace(0.0, 1.0, self.total + 1)[1:]

    def log_alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Piecewise-linear log αₜ (linear extrapolation outside the table)."""
        t = t.reshape(-1).float()
        k = torch.searchsorted(self.t_table, t).clamp(1, self.total - 1)
        x0, x1 = self.t_table[k - 1], self.t_table[k]
        y0, y1 = self.log_alpha_table[k - 1], self.log_alpha_table[k]
        return y0 + (t - x0) * (y1 - y0) / (x1 - x0)

    def coefficients(self, t: torch.Tensor):
        """(α, σ, λ) at time t."""
        la = self.log_alpha(t)
        log_sigma = 0.5 * torch.log(1.0 - torch.exp(2.0 * la))
        return torch.exp(la), torch.sqrt(1.0 - torch.exp(2.0 * la)), la - log_sigma

    def time_steps(self, steps: int) -> torch.Tensor:
        return torch.linspace(1.0, 1.0 / self.total, steps + 1)

    def model_time(self, t: torch.Tensor) -> torch.Tensor:
        return (t - 1.0 / self.total) * 1000.0


@torch.no_grad()
def sample_dpm_solver(
    denoise: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    z: torch.Tensor,
    steps: int,
    callback: Callable[[int, int, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Deterministic DPM-Solver++(2M) from pure noise ``z`` in ``steps`` model evaluations.

    ``denoise(x, t, None)`` returns ε in its first C channels (extra variance channels ignored);
    ``t`` is the fractional model time in [0, 999]. Conditioning frames are not supported (as
    upstream); use IDDPM for those.
    """
    if steps < 2:
        raise ValueError(f"DPM-Solver++ (2M) needs at least 2 steps, got {steps}")
    vp = DPMSolverPP()
    x = z.float()
    b, c = x.shape[:2]
    times = vp.time_steps(steps).to(x.device)
    view = (-1,) + (1,) * (x.dim() - 1)

    def data_prediction(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = denoise(x, vp.model_time(t).expand(b).to(x.device), None)[:, :c].float()
        alpha, sigma, _ = vp.coefficients(t.cpu())
        return (x - sigma.to(x).view(view) * eps) / alpha.to(x).view(view)

    def update(x, t_prev, t, x0_prev, x0_prev2=None, t_prev2=None):
        _, sigma_s, lam_s = vp.coefficients(t_prev.cpu())
        alpha_t, sigma_t, lam_t = vp.coefficients(t.cpu())
        h = lam_t - lam_s
        phi = torch.expm1(-h)
        ratio, a_phi = (sigma_t / sigma_s).to(x).view(view), (alpha_t * phi).to(x).view(view)
        if x0_prev2 is None:
            return ratio * x - a_phi * x0_prev
        _, _, lam_p = vp.coefficients(t_prev2.cpu())
        r = ((lam_s - lam_p) / h).to(x).view(view)
        d1 = (1.0 / r) * (x0_prev - x0_prev2)
        return ratio * x - a_phi * x0_prev - 0.5 * a_phi * d1

    history = [data_prediction(x, times[0])]
    for step in range(1, steps + 1):
        t, t_prev = times[step], times[step - 1]
        first_order = step == 1 or (steps < 10 and step == steps)
        if first_order:
            x = update(x, t_prev, t, history[-1])
        else:
            x = update(x, t_prev, t, history[-1], history[-2], times[step - 2])
        if step < steps:
            history = [history[-1], data_prediction(x, t)]
        if callback is not None:
            callback(step - 1, steps, x)
    return x
