"""The ``config.json`` round trip shared by every Open-Sora / PixArt network config.

Released configs carry more keys than shape the network (training flags, ``architectures``);
they are kept in ``extra`` so a config written back out still loads in upstream code. Tuple fields
(patch sizes) are stored as JSON lists.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

C = TypeVar("C", bound="ReleasedConfig")


class ReleasedConfig:
    """Mixin for dataclass configs with an ``extra: dict`` field and ``in_channels``/``pred_sigma``."""

    ARCHITECTURE: ClassVar[str]
    MODEL_TYPE: ClassVar[str]
    TUPLE_FIELDS: ClassVar[tuple[str, ...]] = ("patch_size",)

    @classmethod
    def from_dict(cls: type[C], data: dict) -> C:
        names = {f.name for f in fields(cls)} - {"extra"}  # type: ignore[arg-type]
        known: dict[str, Any] = {k: v for k, v in data.items() if k in names}
        for key in cls.TUPLE_FIELDS:
            if key in known and known[key] is not None:
                known[key] = tuple(known[key])
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})  # type: ignore[call-arg]

    @classmethod
    def from_json(cls: type[C], path: str | Path) -> C:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}  # type: ignore[arg-type]
        for key in self.TUPLE_FIELDS:
            if out.get(key) is not None:
                out[key] = list(out[key])
        return {"architectures": [self.ARCHITECTURE], "model_type": self.MODEL_TYPE, **self.extra, **out}

    @property
    def out_channels(self) -> int:
        """Twice the latent channels when the network also predicts the variance (``pred_sigma``)."""
        return self.in_channels * 2 if self.pred_sigma else self.in_channels
