"""Shared runtime of the pack: devices, memory, weights, downloads, progress, images, video."""
