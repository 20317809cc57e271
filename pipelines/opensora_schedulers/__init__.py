"""Samplers of Open-Sora 1.0/1.1 and PixArt: IDDPM with respacing and DPM-Solver++ (2M).

Both drive a ``denoise(x, t, x_mask) -> model output`` callable (see :mod:`.guidance` for the
classifier-free wrapper around an STDiT/STDiT2/PixArt model) and draw their noise through a
``noise_fn(shape) -> tensor`` so a seed gives the same video on every device.
"""

from .dpm_solver import DPMSolverPP, sample_dpm_solver
from .guidance import classifier_free, seeded_noise
from .iddpm import SpacedDiffusion, sample_iddpm, space_timesteps

__all__ = [
    "DPMSolverPP",
    "SpacedDiffusion",
    "classifier_free",
    "sample_dpm_solver",
    "sample_iddpm",
    "seeded_noise",
    "space_timesteps",
]
