"""Omost: an LLM writes an image layout (regions with prompts and colours); regions condition the image."""
