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

User models (fine-tuned or trained by the user) live in a per-user folder
(:func:`user_models_dir`: platformdirs' user data folder, or ``$LATENT_USER_MODELS``)
as ``NAME.safetensors`` + ``NAME.json``; the sidecar's ``sha256`` is checked on every
load, as is the sidecar of any other ``.safetensors`` file that has one. A model name
resolves to a bundled model first, then to a user model (:func:`model_path`).
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
from engine.weights_check import check_finite, check_header, check_metadata, plan_network

__all__ = ["LoadedModel", "save", "load", "read_metadata", "list_bundled", "bundled_path",
           "register_bundled", "manifest_path", "FORMAT_VERSION", "user_models_dir", "list_user", "list_models",
           "model_path", "install_user", "remove_user", "verify_file", "USER_MODELS_ENV"]

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


#: Environment variable that overrides the per-user model folder (tests, portable installs).
USER_MODELS_ENV = "LATENT_USER_MODELS"


def user_models_dir() -> Path:
    """The per-user model folder (not created): ``$LATENT_USER_MODELS`` or platformdirs' user data dir."""
    env = os.environ.get(USER_MODELS_ENV)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("Latent", appauthor=False)) / "models"


def _user_files() -> dict[str, Path]:
    d = user_models_dir()
    if not d.is_dir():
        return {}
    return {p.stem: p for p in sorted(d.glob("*.safetensors"))}


def list_user() -> list[dict[str, Any]]:
    """Every installed user model: name, file, sha256, modality, task, parent, description (from its JSON)."""
    out = []
    for name, path in _user_files().items():
        row: dict[str, Any] = {"name": name, "file": str(path), "source": "user"}
        sidecar = path.with_suffix(".json")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            row["error"] = f"unreadable {sidecar.name}: {exc}"
            meta = {}
        parent = meta.get("parent") or {}
        row.update(sha256=meta.get("sha256", ""), modality=meta.get("modality", ""), task=meta.get("task", ""),
                   architecture=meta.get("architecture"), metrics=meta.get("metrics", {}), parent=parent,
                   description=meta.get("description") or (f"adapted from {parent.get('name')}" if parent else ""))
        out.append(row)
    return out


def list_models() -> list[dict[str, Any]]:
    """Bundled models (``source="bundled"``) then user models (``source="user"``, with ``parent``)."""
    bundled = [{**r, "source": "bundled"} for r in list_bundled()]
    names = {r["name"] for r in bundled}
    return bundled + [r for r in list_user() if r["name"] not in names]


def model_path(name: str) -> Path:
    """The weights file of a bundled or user model *name*; unknown names list the valid ones."""
    if name in _manifest():
        return bundled_path(name)
    user = _user_files()
    if name in user:
        return user[name]
    valid = ", ".join(sorted(set(_manifest()) | set(user))) or "none installed"
    raise WeightsError(f"unknown model {name!r}; available models: {valid}")


def verify_file(path: str | os.PathLike) -> tuple[str, dict[str, Any]]:
    """``(sha256, metadata)`` of a weights file, refused when it is a pickle, is not safetensors,
    or its sha256 differs from the ``sha256`` of its JSON sidecar."""
    path = Path(path)
    meta = read_metadata(path)
    digest = sha256_file(path)
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        try:
            recorded = json.loads(sidecar.read_text(encoding="utf-8")).get("sha256")
        except (OSError, json.JSONDecodeError, AttributeError):
            raise WeightsError(f"{sidecar}: damaged JSON sidecar; cannot verify {path.name}") from None
        if recorded and recorded != digest:
            raise WeightsError(f"{path}: sha256 {digest[:12]}… does not match the {recorded[:12]}… recorded in "
                               f"{sidecar.name}; the file is damaged or was replaced. Refusing to use it")
    return digest, meta


def install_user(path: str | os.PathLike, *, name: str | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Copy a verified ``.safetensors`` (+ its JSON) into the user model folder; return its row.

    A bundled model's name is refused (bundled names always win), as is an existing user
    model unless *overwrite*.
    """
    import shutil

    src = Path(path)
    if not src.exists():
        raise WeightsError(f"{src}: no such file")
    digest, meta = verify_file(src)
    name = name or src.stem
    if not name or any(c in name for c in "/\\:") or name.startswith("."):
        raise WeightsError(f"invalid model name {name!r}")
    if name in _manifest():
        raise WeightsError(f"{name!r} is a bundled model's name; install under another name (--name)")
    dest_dir = user_models_dir()
    dest = dest_dir / f"{name}.safetensors"
    if dest.exists() and not overwrite:
        raise WeightsError(f"a user model {name!r} is already installed ({dest}); remove it first")
    dest_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    if sha256_file(dest) != digest:
        dest.unlink()
        raise WeightsError(f"{src}: changed while it was being copied; not installed")
    sidecar = src.with_suffix(".json")
    side = json.loads(sidecar.read_text(encoding="utf-8")) if sidecar.exists() else dict(meta)
    side.update(sha256=digest, file=dest.name, name=name)
    write_json_atomic(dest.with_suffix(".json"), side)
    return next(r for r in list_user() if r["name"] == name)


def remove_user(name: str) -> Path:
    """Delete user model *name* (weights + JSON); bundled models cannot be removed."""
    if name in _manifest():
        raise WeightsError(f"{name!r} is a bundled model; only user models can be removed")
    user = _user_files()
    if name not in user:
        raise WeightsError(f"no user model {name!r}; user models: {', '.join(sorted(user)) or 'none'}")
    path = user[name]
    path.unlink()
    path.with_suffix(".json").unlink(missing_ok=True)
    return path


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


def _read_header(path: Path) -> tuple[int, Any]:
    """The safetensors header of *path*: its length in bytes and its parsed JSON (not yet checked)."""
    n = _check_safetensors(path)
    with open(path, "rb") as fh:
        fh.seek(8)
        try:
            return n, json.loads(fh.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise WeightsError(f"{path}: damaged safetensors header") from None


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The metadata embedded in a safetensors weights file (no tensors are read)."""
    path = Path(path)
    _, header = _read_header(path)
    md = header.get("__metadata__") if isinstance(header, dict) else None
    embedded = md.get("latent") if isinstance(md, dict) else None
    if embedded is None:
        sidecar = path.with_suffix(".json")
        if not sidecar.exists():
            raise WeightsError(f"{path}: no Latent metadata in the file and no {sidecar.name} beside it; "
                               "the file was not written by Latent")
        try:
            return json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise WeightsError(f"{path}: damaged JSON sidecar {sidecar.name}") from None
    try:
        return json.loads(embedded)
    except (TypeError, json.JSONDecodeError):
        raise WeightsError(f"{path}: damaged Latent metadata in the safetensors header") from None


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
    user = _user_files() if spec not in entries else {}
    if spec in entries:
        path = bundled_path(spec)
        expected_sha256 = entries[spec]["sha256"]
        name = spec
    elif spec in user and not Path(spec).exists():
        path, name = user[spec], spec
    else:
        path = Path(spec)
        if not path.exists():
            valid = ", ".join(sorted(set(entries) | set(user))) or "none installed"
            raise WeightsError(f"{spec}: no such weights file and no bundled or user model of that name "
                               f"(available: {valid})")
        name = path.stem
    if spec in entries:
        meta = read_metadata(path)
        digest = sha256_file(path)
    else:  # user models and other files: the JSON sidecar's sha256 must match too
        digest, meta = verify_file(path)
    if expected_sha256 and digest != expected_sha256:
        raise WeightsError(f"{path}: sha256 {digest[:12]}… does not match the expected "
                           f"{expected_sha256[:12]}…; the file is damaged or was replaced")
    meta = check_metadata(path, meta)
    expected = plan_network(path, meta)  # on the meta device: shapes and the size cap, no allocation
    check_header(path, *_read_header(path), expected)
    module = build_model(meta["architecture"], **meta["hparams"])
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: cannot read tensors ({exc})") from None
    check_finite(path, state)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise WeightsError(f"{path}: weights do not fit the {meta['architecture']} network: {first}") from None
    module.eval()
    return LoadedModel(name=meta.get("name", name), path=path, sha256=digest, meta=meta, module=module)
