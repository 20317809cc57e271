"""DisPose pipeline: loading and inference procedures (no ComfyUI imports)."""
