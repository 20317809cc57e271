"""Finding, downloading and loading weight files.

A pipeline names each file it needs in a ``WeightSpec``. Files are looked up in ComfyUI's
``models/<folder>`` (and any extra paths the user configured for that folder) and in the pack's
own ``pretrained_weights/<folder>``; when absent they are downloaded from the Hugging Face Hub
into ComfyUI's models folder, and when that is impossible the error says exactly what to put where.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from .comfy import folder_paths
from .errors import MissingWeightsError, WeightsMismatchError

log = logging.getLogger("MotionSuite")

PACK_DIR = Path(__file__).resolve().parents[2]
PACK_WEIGHTS_DIR = PACK_DIR / "pretrained_weights"
WEIGHT_EXTENSIONS = (".safetensors", ".pth", ".pth.tar", ".pt", ".ckpt", ".bin", ".onnx")
_extra_dirs: dict[str, list[Path]] = {}


@dataclass(frozen=True)
class WeightSpec:
    """One released weight file and where it comes from."""

    filename: str
    folder: str
    repo_id: str = ""
    repo_path: str = ""
    url: str = ""
    size: str = ""
    source: str = ""
    description: str = ""

    @property
    def origin(self) -> str:
        """Human-readable origin: the Hub repo and path, or the upstream page."""
        if self.repo_id:
            return f"https://huggingface.co/{self.repo_id} (file {self.repo_path or self.filename})"
        return self.url or self.source or "the upstream project"


def register_folder(folder: str) -> None:
    """Make ``models/<folder>`` and ``pretrained_weights/<folder>`` known to ComfyUI's folder_paths."""
    fp = folder_paths()
    if fp is None:
        return
    paths = [os.path.join(fp.models_dir, folder), str(PACK_WEIGHTS_DIR / folder)]
    existing = fp.folder_names_and_paths.get(folder)
    if existing is None:
        fp.folder_names_and_paths[folder] = (paths, set(WEIGHT_EXTENSIONS))
        return
    for p in paths:
        if p not in existing[0]:
            existing[0].append(p)


def add_search_dir(folder: str, path: str | os.PathLike) -> None:
    """Add a directory to search for ``folder`` (the CLI's --weights-dir, tests)."""
    _extra_dirs.setdefault(folder, [])
    p = Path(path)
    if p not in _extra_dirs[folder]:
        _extra_dirs[folder].insert(0, p)


def default_download_dir(folder: str) -> Path:
    """Where downloads go: a directory the user named (CLI --weights-dir), ComfyUI's
    ``models/<folder>``, else the pack's ``pretrained_weights/<folder>``."""
    if _extra_dirs.get(folder):
        return _extra_dirs[folder][0]
    fp = folder_paths()
    if fp is not None:
        return Path(fp.models_dir) / folder
    return PACK_WEIGHTS_DIR / folder


def search_dirs(folder: str) -> list[Path]:
    """Every directory searched for ``folder``, in priority order."""
    dirs: list[Path] = list(_extra_dirs.get(folder, []))
    fp = folder_paths()
    if fp is not None:
        register_folder(folder)
        dirs += [Path(p) for p in fp.get_folder_paths(folder)]
    dirs.append(PACK_WEIGHTS_DIR / folder)
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def list_files(folder: str, exts: Iterable[str] = WEIGHT_EXTENSIONS) -> list[str]:
    """Names (relative to their search dir) of the weight files present for ``folder``."""
    exts = tuple(exts)
    found: list[str] = []
    for d in search_dirs(folder):
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            if p.is_file() and p.name.endswith(exts):
                rel = p.relative_to(d).as_posix()
                if rel not in found:
                    found.append(rel)
    return found


def find_file(folder: str, name: str) -> Path | None:
    """The first existing ``<dir>/<name>`` over ``search_dirs(folder)``, or None."""
    candidate = Path(name)
    if candidate.is_absolute():
        return candidate if candidate.exists() else None
    for d in search_dirs(folder):
        p = d / name
        if p.exists():
            return p
    return None


def _missing_message(spec: WeightSpec, reason: str) -> str:
    where = ", ".join(str(d) for d in search_dirs(spec.folder))
    size = f" ({spec.size})" if spec.size else ""
    return (
        f"Weight file '{spec.filename}'{size} was not found. Looked in: {where}. {reason} "
        f"Download it from {spec.origin} and put it in {default_download_dir(spec.folder)}."
    )


def _download_url(spec: WeightSpec, dest: Path) -> Path:
    """Plain HTTP(S) download to a temporary name, renamed only when complete."""
    import urllib.request

    from tqdm.auto import tqdm

    target = dest / spec.filename
    part = target.with_name(target.name + ".part")
    dest.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(spec.url, timeout=60) as response, open(part, "wb") as fh:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=spec.filename, leave=False) as bar:
            while chunk := response.read(1 << 20):
                fh.write(chunk)
                bar.update(len(chunk))
    part.replace(target)
    return target


def download(spec: WeightSpec, dest_dir: Path | None = None) -> Path:
    """Download ``spec`` (Hugging Face Hub repo, else its URL) into ``dest_dir`` (default: models folder)."""
    if not spec.repo_id and not spec.url:
        raise MissingWeightsError(_missing_message(spec, "It has no automatic download source."))
    dest = Path(dest_dir or default_download_dir(spec.folder))
    log.info("MotionSuite: downloading %s from %s into %s", spec.filename, spec.origin, dest)
    try:
        if not spec.repo_id:
            return _download_url(spec, dest)
        from huggingface_hub import hf_hub_download

        repo_path = spec.repo_path or spec.filename
        got = Path(hf_hub_download(repo_id=spec.repo_id, filename=repo_path, local_dir=str(dest)))
    except Exception as exc:  # noqa: BLE001 - offline, 404, auth: all end in one clear message
        raise MissingWeightsError(
            _missing_message(spec, f"The download failed ({type(exc).__name__}: {str(exc)[:200]}).")
        ) from exc
    target = dest / spec.filename
    if got != target and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        got.replace(target)
    return target if target.exists() else got


def resolve(spec: WeightSpec, name: str | None = None, allow_download: bool = True) -> Path:
    """Path of ``spec`` (or of the file ``name`` chosen in a node), downloading it when needed."""
    path = find_file(spec.folder, name or spec.filename)
    if path is not None:
        return path
    if name and name != spec.filename:
        raise MissingWeightsError(
            f"Weight file '{name}' was not found in {', '.join(str(d) for d in search_dirs(spec.folder))}."
        )
    if allow_download and os.environ.get("HF_HUB_OFFLINE", "0") not in ("1", "true", "True"):
        return download(spec)
    raise MissingWeightsError(_missing_message(spec, "Automatic download is off (offline)."))


def load_state_dict(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """Load a checkpoint file into a dict of tensors (or the nested dict it holds).

    .safetensors load without pickle; torch pickles (.pt/.pth/.pth.tar/.ckpt/.bin) load with
    ``weights_only=True``, so a file that would need arbitrary code to unpickle is refused.
    """
    path = Path(path)
    if not path.exists():
        raise MissingWeightsError(f"Weight file '{path}' does not exist.")
    if path.name.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path), device=str(device))
    try:
        return torch.load(str(path), map_location=device, weights_only=True)
    except Exception as exc:
        raise WeightsMismatchError(
            f"Could not read '{path.name}' as a weights-only torch checkpoint ({type(exc).__name__}: "
            f"{str(exc)[:300]}). The file may be damaged or not a checkpoint of this model; "
            "download it again."
        ) from exc


def select(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of ``sd`` under ``prefix``, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}


def strip_prefix(sd: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """``sd`` with ``prefix`` removed from keys that have it (others kept), e.g. 'module.'."""
    return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in sd.items()}


def rename_keys(sd: Mapping[str, torch.Tensor], rules: Iterable[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Apply regex ``(pattern, replacement)`` rules, in order, to every key."""
    compiled = [(re.compile(p), r) for p, r in rules]
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        for pat, rep in compiled:
            k = pat.sub(rep, k)
        out[k] = v
    return out


def _sample(keys: list[str], n: int = 8) -> str:
    head = ", ".join(keys[:n])
    return head + (f", … ({len(keys) - n} more)" if len(keys) > n else "")


def load_into(
    module: torch.nn.Module, sd: Mapping[str, torch.Tensor], what: str, strict: bool = True
) -> None:
    """Load ``sd`` into ``module``; a mismatch raises one readable error instead of a wall of keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = sorted(k for k in set(own) & set(sd) if tuple(own[k].shape) != tuple(sd[k].shape))
    if strict and (missing or unexpected or wrong):
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_sample(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_sample(unexpected)})")
        if wrong:
            parts.append(
                f"{len(wrong)} keys with other shapes ("
                + _sample(
                    [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}" for k in wrong], 4
                )
                + ")"
            )
        raise WeightsMismatchError(
            f"The weights do not fit the {what}: " + "; ".join(parts) + ". Check that the file is the "
            f"released {what} checkpoint and that the chosen model variant matches it."
        )
    module.load_state_dict({k: v for k, v in sd.items() if k not in wrong}, strict=False)
