"""Reading and writing images, videos and frame folders for the command line.

Inside ComfyUI, video I/O belongs to ComfyUI's own nodes; this module serves ``cli.py``. Videos go
through PyAV (which ComfyUI itself depends on); frame folders are lossless PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def _pil_to_image(img) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)[None]


def read_image(path: str | Path) -> torch.Tensor:
    """An image file as IMAGE (1,H,W,3)."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image file '{path}' does not exist")
    with Image.open(path) as img:
        return _pil_to_image(img)


def read_frames(path: str | Path, max_frames: int | None = None) -> tuple[torch.Tensor, float]:
    """A video file, a folder of images or one image, as (IMAGE (N,H,W,3), fps)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"folder '{path}' holds no image frames ({', '.join(IMAGE_SUFFIXES)})")
        files = files[:max_frames] if max_frames else files
        return torch.cat([read_image(f) for f in files]), 25.0
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path), 25.0
    if not path.is_file():
        raise InputError(f"video '{path}' does not exist")
    import av

    frames: list[torch.Tensor] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else 25.0
        for frame in container.decode(stream):
            frames.append(torch.from_numpy(frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0))
            if max_frames and len(frames) >= max_frames:
                break
    if not frames:
        raise InputError(f"video '{path}' has no decodable frames")
    return torch.stack(frames), fps


def write_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write the first image of IMAGE (B,H,W,3) as one lossless PNG (or any PIL format by suffix)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (image[0].detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


def write_frames(images: torch.Tensor, path: str | Path, fps: float = 25.0) -> Path:
    """Write IMAGE (N,H,W,3): a folder of PNG frames when ``path`` has no suffix, image file(s) for an image
    suffix (``name_00000.png``… when N > 1), else a video file."""
    from PIL import Image

    path = Path(path)
    arr = (images.detach().float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    if path.suffix == "":
        path.mkdir(parents=True, exist_ok=True)
        for i, frame in enumerate(arr):
            Image.fromarray(frame).save(path / f"frame_{i:05d}.png")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in IMAGE_SUFFIXES and path.suffix.lower() != ".gif":
        # An image name for image models (PixArt) or a one-frame result; more frames get numbered names.
        if len(arr) == 1:
            Image.fromarray(arr[0]).save(path)
        else:
            for i, frame in enumerate(arr):
                Image.fromarray(frame).save(path.with_name(f"{path.stem}_{i:05d}{path.suffix}"))
        return path
    if path.suffix.lower() == ".gif":
        pil = [Image.fromarray(f) for f in arr]
        pil[0].save(path, save_all=True, append_images=pil[1:], duration=int(1000 / fps), loop=0)
        return path
    from fractions import Fraction

    import av

    n, h, w, _ = arr.shape
    ph, pw = h + h % 2, w + w % 2  # yuv420p needs even sizes
    if (ph, pw) != (h, w):
        arr = np.pad(arr, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    codec = "libvpx-vp9" if path.suffix.lower() == ".webm" else "libx264"
    with av.open(str(path), mode="w") as container:
        try:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        except Exception:  # noqa: BLE001 - builds of FFmpeg without x264
            stream = container.add_stream("mpeg4", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "17"}
        for frame in arr:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
