"""Developer tools of the pack (not loaded by ComfyUI)."""
