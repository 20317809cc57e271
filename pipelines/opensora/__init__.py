"""Open-Sora text/image → video (v1.2: STDiT3, video VAE 1.2, rectified flow, T5-XXL)."""
