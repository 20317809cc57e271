"""One progress helper for every long loop: ComfyUI's bar (with previews) or tqdm on the console."""

from __future__ import annotations

from typing import Any

import torch

from .comfy import progress_bar_class, throw_if_interrupted


def _to_pil(preview: Any, max_size: int = 512) -> Any:
    """IMAGE-like tensor (H,W,3)/(1,H,W,3) or (3,H,W) in 0..1 → PIL image for ComfyUI's preview."""
    from PIL import Image

    if isinstance(preview, Image.Image):
        return preview
    t = preview.detach().float().cpu()
    if t.ndim == 4:
        t = t[0]
    if t.ndim == 3 and t.shape[0] in (1, 3) and t.shape[-1] not in (1, 3):
        t = t.permute(1, 2, 0)
    arr = (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    img = Image.fromarray(arr)
    img.thumbnail((max_size, max_size))
    return img


class Progress:
    """Counts work units; checks for interrupt at every update.

    Inside ComfyUI it drives ``comfy.utils.ProgressBar`` (node progress and, when given, a preview
    image); outside it shows a tqdm bar unless ``quiet``.
    """

    def __init__(self, total: int, desc: str = "MotionSuite", quiet: bool = False) -> None:
        self.total = max(1, int(total))
        self.value = 0
        bar_cls = progress_bar_class()
        self._comfy = bar_cls(self.total) if bar_cls is not None else None
        self._tqdm = None
        if self._comfy is None and not quiet:
            from tqdm.auto import tqdm

            self._tqdm = tqdm(total=self.total, desc=desc, leave=False)

    def update(self, n: int = 1, preview: Any = None) -> None:
        """Advance by ``n``; ``preview`` (IMAGE tensor or PIL image) is shown in ComfyUI."""
        throw_if_interrupted()
        self.value = min(self.total, self.value + n)
        if self._comfy is not None:
            shown = ("JPEG", _to_pil(preview), 512) if preview is not None else None
            self._comfy.update_absolute(self.value, self.total, shown)
        if self._tqdm is not None:
            self._tqdm.update(n)

    def close(self) -> None:
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
