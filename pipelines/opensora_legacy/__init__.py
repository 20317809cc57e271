"""Open-Sora 1.1 / 1.0 and PixArt-α/Σ: text (and images) → video or images with the SD VAE."""
