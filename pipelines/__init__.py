"""Inference procedures of the pack. Nothing in here imports ComfyUI except ``core/comfy.py``."""
