"""Session files: a small JSON that names the input (with its sha256), the model, the parameters
and the view, and one ``.npz`` per result in a folder beside it.

The results are the engine's frozen dataclasses (:mod:`engine.results`); they are stored field by
field (arrays in the ``.npz``, everything else in the JSON) and rebuilt as the same classes, so a
restored result is the one that was saved, bit for bit. Only classes of ``engine.results`` and
``engine.data`` are rebuilt. No Qt here; files are written atomically; the input is never touched.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "VERSION", "SessionError", "input_files", "input_sha256", "encode", "decode",
           "write_session", "read_session", "results_dir", "check_input"]

FORMAT = "latent-session"
VERSION = 1
#: modules whose dataclasses a session may rebuild (a session file never imports anything else)
ALLOWED_MODULES = ("engine.results", "engine.data")
_CHUNK = 1 << 20


class SessionError(ValueError):
    """A session that cannot be restored: missing or changed input, damaged or foreign file."""


# ---- the input ----------------------------------------------------------------------
def input_files(path: str | os.PathLike) -> list[Path]:
    """The files whose bytes make the input: the file (a WFDB header with its record's other files),
    or every file of a folder (a DICOM series), sorted."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file())
    if not p.exists() and p.with_name(p.name + ".hea").exists():  # a WFDB record named without suffix
        p = p.with_name(p.name + ".hea")
    if p.suffix.lower() == ".hea":
        return sorted(f for f in p.parent.glob(p.stem + ".*") if f.is_file())
    return [p] if p.is_file() else []


def input_sha256(path: str | os.PathLike) -> str:
    """sha256 over the input's files (relative name and bytes of each, in order)."""
    files = input_files(path)
    if not files:
        raise SessionError(f"{path}: not found")
    root = Path(path) if Path(path).is_dir() else files[0].parent
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def check_input(doc: dict, session_path: str | os.PathLike) -> str:
    """The input path of a session *doc* after checking it is there and unchanged (sha256)."""
    inp = doc.get("input") or {}
    path = inp.get("path", "")
    if not path or not input_files(path):  # moved together with the session: try the relative path
        rel = inp.get("relative")
        alt = (Path(session_path).parent / rel) if rel else None
        if alt is None or not input_files(alt):
            raise SessionError(f"the session's input {path} is not found; put it back or open the file itself")
        path = str(alt.resolve())
    now = input_sha256(path)
    if now != inp.get("sha256"):
        raise SessionError(f"{path} has changed since the session was saved (sha256 {inp.get('sha256', '?')[:12]}… "
                           f"then, {now[:12]}… now): its results belong to other data and were not restored. "
                           "Open the file and run the task again.")
    return path


# ---- results: dataclasses <-> JSON + arrays --------------------------------------------
def encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """JSON-able form of *value*; arrays go into *arrays* under a generated key."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("object arrays cannot be stored in a session")
        key = f"a{len(arrays)}"
        arrays[key] = value
        return {"__array__": key}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if cls.__module__ not in ALLOWED_MODULES:
            raise TypeError(f"{cls.__qualname__} is not an engine result")
        out = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            v = getattr(value, f.name)
            if f.name == "sample_reader":  # a Signal read from a file: keep its samples instead
                v = None
            elif f.name == "_data" and v is None and getattr(value, "sample_reader", None) is not None:
                v = value.data
            out[f.name] = encode(v, arrays)
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}", "fields": out}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [encode(v, arrays) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode(v, arrays) for k, v in value.items()}
        return {"__items__": [[encode(k, arrays), encode(v, arrays)] for k, v in value.items()]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__} in a session")


def decode(value: Any, arrays) -> Any:
    """Inverse of :func:`encode` (*arrays*: the loaded ``.npz``)."""
    if isinstance(value, list):
        return [decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if "__array__" in value:
        return np.asarray(arrays[value["__array__"]])
    if "__tuple__" in value:
        return tuple(decode(v, arrays) for v in value["__tuple__"])
    if "__items__" in value:
        return {_hashable(decode(k, arrays)): decode(v, arrays) for k, v in value["__items__"]}
    if "__dataclass__" in value:
        module, _, name = str(value["__dataclass__"]).partition(":")
        if module not in ALLOWED_MODULES:
            raise SessionError(f"the session names {module}.{name}, which is not an engine result")
        cls = getattr(importlib.import_module(module), name, None)
        if cls is None or not dataclasses.is_dataclass(cls):
            raise SessionError(f"{module}.{name} is not known to this version of Latent")
        return cls(**{k: decode(v, arrays) for k, v in value["fields"].items()})
    return {k: decode(v, arrays) for k, v in value.items()}


def _hashable(v):
    return tuple(v) if isinstance(v, list) else v


# ---- the session file ---------------------------------------------------------------
def results_dir(session_path: str | os.PathLike) -> Path:
    """``S.json`` keeps its results in ``S.results/`` beside it."""
    p = Path(session_path)
    return p.with_name(p.stem + ".results")


def write_session(session_path: str | os.PathLike, *, input_path: str, read_options: dict, modality: str,
                  results: list[dict], selected: dict, view: dict) -> Path:
    """Write the results (``.npz`` each, atomically) and then the JSON that names them.

    *results*: ``{"task", "result", "model", "device", "seconds", "options"}`` per result.
    """
    from engine._shared.files import atomic_path, write_json_atomic

    session_path = Path(session_path).resolve()
    folder = results_dir(session_path)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for r in results:
        arrays: dict[str, np.ndarray] = {}
        meta = encode(r["result"], arrays)
        npz = folder / f"{r['task']}.npz"
        with atomic_path(npz) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        entries.append({"task": r["task"], "model": r["model"], "device": r.get("device", ""),
                        "seconds": float(r.get("seconds", 0.0)), "options": encode(r.get("options", {}), {}),
                        "file": npz.relative_to(session_path.parent).as_posix(), "result": meta})
    inp = os.path.abspath(input_path)
    try:
        rel = os.path.relpath(inp, session_path.parent)
    except ValueError:  # another drive (Windows)
        rel = None
    doc = {"format": FORMAT, "version": VERSION,
           "saved": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "input": {"path": inp, "relative": rel, "sha256": input_sha256(inp),
                     "files": len(input_files(inp)), "read_options": encode(dict(read_options), {}),
                     "modality": modality},
           "selected": selected, "results": entries, "view": view}
    return write_json_atomic(session_path, doc)


def read_session(session_path: str | os.PathLike) -> dict:
    """The session JSON, checked to be one (format and version)."""
    try:
        doc = json.loads(Path(session_path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SessionError(f"{session_path}: not a readable session file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SessionError(f"{session_path}: not a Latent session file")
    if int(doc.get("version", 0)) > VERSION:
        raise SessionError(f"{session_path}: written by a newer Latent (session version {doc['version']})")
    return doc


def load_results(doc: dict, session_path: str | os.PathLike) -> list[dict]:
    """Rebuild each result of *doc*: ``{"task", "result", "model", "device", "seconds", "options"}``."""
    base = Path(session_path).resolve().parent
    out = []
    for e in doc.get("results", []):
        npz = base / e["file"]
        try:
            with np.load(npz, allow_pickle=False) as arrays:
                loaded = {k: arrays[k] for k in arrays.files}
        except (OSError, ValueError) as exc:
            raise SessionError(f"{npz}: the saved {e['task']} result cannot be read ({exc})") from None
        out.append({"task": e["task"], "result": decode(e["result"], loaded), "model": e["model"],
                    "device": e.get("device", ""), "seconds": float(e.get("seconds", 0.0)),
                    "options": decode(e.get("options", {}), {})})
    return out
