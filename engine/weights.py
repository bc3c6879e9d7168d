"""Weights: safetensors plus a JSON sidecar, and the registry of bundled models.

A weights file ``NAME.safetensors`` carries its metadata twice: embedded in the
safetensors header (key ``"latent"``, so a single file is enough to load) and as
``NAME.json`` beside it for people to read. The metadata says how to rebuild the
network (``architecture`` + ``hparams``), what data it expects (``modality``,
``preprocessing``, patch or window size), how it was trained, its metrics and its
anomaly calibration. Loading never unpickles anything: ``.pt``/``.pth``/``.ckpt``/
``.pkl`` files are refused.

Bundled models are listed in ``resources/models/manifest.json``:
``{name: {"file", "sha256", "modality", "task", "description"}}``; the sha256 is
checked on every load.
"""
from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine._shared.files import atomic_path, sha256_file, write_json_atomic
from engine._shared.resources import resources_dir
from engine.errors import WeightsError

__all__ = ["LoadedModel", "save", "load", "read_metadata", "list_bundled", "bundled_path",
           "register_bundled", "manifest_path", "FORMAT_VERSION"]

logger = logging.getLogger("engine")

FORMAT_VERSION = 1
_PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar", ".joblib", ".npz")
_MAX_HEADER = 100 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A network ready for inference (eval mode, on CPU) with its metadata."""

    name: str
    path: Path
    sha256: str
    meta: dict[str, Any]
    module: Any = field(repr=False)  # torch.nn.Module

    @property
    def modality(self) -> str:
        return self.meta.get("modality", "")


def manifest_path() -> Path:
    return resources_dir() / "models" / "manifest.json"


def _manifest() -> dict[str, dict[str, Any]]:
    p = manifest_path()
    if not p.exists():
        return {}
    return json.loads(p.read_text(encoding="utf-8"))


def list_bundled() -> list[dict[str, Any]]:
    """Every bundled model: name, file, sha256, modality, task, description (+ sidecar metrics)."""
    out = []
    for name, entry in sorted(_manifest().items()):
        row = {"name": name, **entry}
        sidecar = manifest_path().parent / Path(entry["file"]).with_suffix(".json").name
        if sidecar.exists():
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            row["metrics"] = meta.get("metrics", {})
            row["architecture"] = meta.get("architecture")
        out.append(row)
    return out


def bundled_path(name: str) -> Path:
    """The file of bundled model *name*; unknown names list the valid ones."""
    entries = _manifest()
    if name not in entries:
        valid = ", ".join(sorted(entries)) or "none installed"
        raise WeightsError(f"unknown model {name!r}; bundled models: {valid}")
    return manifest_path().parent / entries[name]["file"]


def register_bundled(name: str, path: str | os.PathLike, *, task: str, description: str) -> dict[str, Any]:
    """Add or update *name* in the bundled manifest (used by the training scripts)."""
    path = Path(path)
    meta = read_metadata(path)
    entries = _manifest()
    entries[name] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "modality": meta.get("modality", ""),
        "task": task,
        "description": description,
    }
    write_json_atomic(manifest_path(), dict(sorted(entries.items())))
    return entries[name]


def _check_safetensors(path: Path) -> int:
    """Refuse anything that is not a safetensors file before a library touches it."""
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        raise WeightsError(f"{path}: pickle-based checkpoints ({path.suffix}) are refused for safety; "
                           "convert the weights to .safetensors")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(9)
    except OSError as exc:
        raise WeightsError(f"{path}: cannot open weights file ({exc.strerror})") from None
    if len(raw) < 9:
        raise WeightsError(f"{path}: not a safetensors file (too short)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n <= _MAX_HEADER and raw[8:9] == b"{" and n + 8 <= path.stat().st_size:
        return n
    # Not safetensors; say so more precisely when it is a PyTorch pickle/zip checkpoint.
    if raw[:2] == b"PK" or raw[:1] == b"\x80":
        raise WeightsError(f"{path}: this is a pickle/zip PyTorch checkpoint; only .safetensors weights are loaded")
    raise WeightsError(f"{path}: not a safetensors file (bad header)")


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata embedded in a safetensors weights file (no tensors are read)."""
    path = Path(path)
    n = _check_safetensors(path)
    with open(path, "rb") as fh:
        fh.seek(8)
        try:
            header = json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WeightsError(f"{path}: damaged safetensors header") from None
    embedded = (header.get("__metadata__") or {}).get("latent")
    if embedded is None:
        sidecar = path.with_suffix(".json")
        if not sidecar.exists():
            raise WeightsError(f"{path}: no Latent metadata in the file and no {sidecar.name} beside it; "
                               "the file was not written by Latent")
        return json.loads(sidecar.read_text(encoding="utf-8"))
    return json.loads(embedded)


def save(module, path: str | os.PathLike, meta: dict[str, Any]) -> str:
    """Write *module*'s state dict to *path* (safetensors) with *meta*; return the file's sha256.

    *meta* must hold ``architecture`` and ``hparams`` (to rebuild the network) and
    ``modality``; ``sha256`` is added to the JSON sidecar.
    """
    from safetensors.torch import save_file

    for key in ("architecture", "hparams", "modality"):
        if key not in meta:
            raise WeightsError(f"weights metadata lacks {key!r}")
    path = Path(path)
    meta = {"format_version": FORMAT_VERSION, **meta}
    state = {k: v.detach().to("cpu").contiguous() for k, v in module.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"latent": json.dumps(meta, sort_keys=True)})
    digest = sha256_file(path)
    write_json_atomic(path.with_suffix(".json"), {**meta, "sha256": digest, "file": path.name})
    return digest


def load(name_or_path: str | os.PathLike, *, expected_sha256: str | None = None) -> LoadedModel:
    """Load a bundled model by name, or a ``.safetensors`` file, as an eval-mode CPU module."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from engine.models import build_model

    spec = os.fspath(name_or_path)
    entries = _manifest()
    if spec in entries:
        path = bundled_path(spec)
        expected_sha256 = entries[spec]["sha256"]
        name = spec
    else:
        path = Path(spec)
        if not path.exists():
            valid = ", ".join(sorted(entries)) or "none installed"
            raise WeightsError(f"{spec}: no such weights file and no bundled model of that name "
                               f"(bundled: {valid})")
        name = path.stem
    meta = read_metadata(path)
    digest = sha256_file(path)
    if expected_sha256 and digest != expected_sha256:
        raise WeightsError(f"{path}: sha256 {digest[:12]}… does not match the expected "
                           f"{expected_sha256[:12]}…; the file is damaged or was replaced")
    module = build_model(meta["architecture"], **meta["hparams"])
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: cannot read tensors ({exc})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"{path}: weights do not fit the {meta['architecture']} network: {first}") from None
    module.eval()
    return LoadedModel(name=meta.get("name", name), path=path, sha256=digest, meta=meta, module=module)
