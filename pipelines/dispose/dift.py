"""DIFT: diffusion features of the reference image from SD-1.5, for the DisPose keypoint features.

As in DisPose: the reference (in [-1,1]) is repeated 8 times, VAE-encoded (sampled posterior times
the scaling factor), noised to DDIM timestep 261, and passed through the SD-1.5 UNet with the prompt
"photo of a human"; the output of up block 1 (1280 channels at 1/16 of the image size) averaged over
the 8 copies is the feature map. The second, null-prompt pass of upstream is not computed: its
result is never used. Unlike upstream the noise comes from a seeded generator, so runs repeat.

Stock diffusers/transformers classes from a diffusers SD-1.5 folder (unet, vae, text_encoder,
tokenizer, scheduler); a forward hook on ``up_blocks[1]`` stops the UNet there.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from ..core.errors import MissingWeightsError

PROMPT = "photo of a human"


class _Stop(Exception):
    """Raised by the hook to skip the UNet blocks after the feature block."""


class DiftFeaturizer:
    """SD-1.5 feature extractor (UNet, VAE encoder, the prompt embedding, DDIM noise schedule)."""

    def __init__(
        self, unet: UNet2DConditionModel, vae: AutoencoderKL, prompt_embeds: torch.Tensor, scheduler
    ):
        self.unet, self.vae, self.prompt_embeds, self.scheduler = unet, vae, prompt_embeds, scheduler

    @property
    def modules(self) -> tuple[torch.nn.Module, torch.nn.Module]:
        return self.unet, self.vae

    @classmethod
    def from_folder(cls, folder: str | Path, dtype: torch.dtype = torch.float16, prompt: str = PROMPT):
        folder = Path(folder)
        for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            if not (folder / sub).is_dir():
                raise MissingWeightsError(
                    f"{folder / sub} is missing. The DIFT folder must hold the diffusers layout of "
                    "HF stable-diffusion-v1-5/stable-diffusion-v1-5 (unet, vae, text_encoder, tokenizer, "
                    "scheduler)."
                )
        tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
        text = CLIPTextModel.from_pretrained(folder / "text_encoder").eval()
        ids = tokenizer(
            prompt,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        with torch.no_grad():
            embeds = text(ids)[0].to(dtype)
        unet = UNet2DConditionModel.from_pretrained(folder / "unet").to(dtype).eval().requires_grad_(False)
        vae = AutoencoderKL.from_pretrained(folder / "vae").to(dtype).eval().requires_grad_(False)
        vae.decoder = None  # only the encoder is used
        scheduler = DDIMScheduler.from_pretrained(folder / "scheduler")
        return cls(unet, vae, embeds, scheduler)

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        timestep: int = 261,
        block: int = 1,
        ensemble: int = 8,
        seed: int = 0,
        noise: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(1,3,H,W) image in [-1,1] -> (1,C,H/16,W/16) features (fp32, CPU).

        ``noise``: optional (posterior sample noise, diffusion noise), each (ensemble,4,H/8,W/8), used
        instead of the seeded draws (the parity test feeds upstream's noise this way).
        """
        device, dtype = self.unet.device, self.unet.dtype
        x = image.to(device, dtype).repeat(ensemble, 1, 1, 1)
        posterior = self.vae.encode(x).latent_dist
        if noise is None:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            noise = tuple(torch.randn(posterior.mean.shape, generator=gen) for _ in range(2))
        eps, noise = (n.to(device, dtype) for n in noise)
        latents = (posterior.mean + posterior.std * eps) * self.vae.config.scaling_factor
        t = torch.tensor(timestep, dtype=torch.long, device=device)
        noisy = self.scheduler.add_noise(latents, noise, t)
        captured: list[torch.Tensor] = []

        def hook(module, args, output):
            captured.append(output)
            raise _Stop

        handle = self.unet.up_blocks[block].register_forward_hook(hook)
        try:
            self.unet(
                noisy, t, encoder_hidden_states=self.prompt_embeds.to(device, dtype).expand(ensemble, -1, -1)
            )
        except _Stop:
            pass
        finally:
            handle.remove()
        return captured[0].float().mean(0, keepdim=True).cpu()
