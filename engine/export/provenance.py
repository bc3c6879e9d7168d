"""Provenance every export carries: model, sha256, software version, input hash, time.

Patient identifiers (name, ID, birth date) are never part of it.
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

from engine._shared.files import sha256_file, write_json_atomic

__all__ = ["provenance", "input_sha256", "write_provenance", "CHEAP_HASH_BYTES"]

#: Inputs up to this many bytes in total are hashed (more would slow every export down).
CHEAP_HASH_BYTES = 256 * 1024 * 1024


def input_sha256(paths) -> dict[str, str] | None:
    """sha256 of each input file by base name, or None when they are too large to hash cheaply."""
    files = [Path(p) for p in paths if Path(p).is_file()]
    if not files or sum(f.stat().st_size for f in files) > CHEAP_HASH_BYTES:
        return None
    return {f.name: sha256_file(f) for f in files}


def input_files(data) -> list[str]:
    """The files an Image or Signal was read from (a DICOM series: its instances)."""
    series = getattr(data, "series", ())
    uid = getattr(data, "series_uid", None)
    for s in series:
        if s.uid == uid and s.files:
            return list(s.files)
    p = Path(os.fspath(data.path))
    if p.is_file():
        return [str(p)] + [str(q) for q in p.parent.glob(p.stem + ".*") if q != p and q.suffix in (".dat",)]
    return []


def provenance(*, model: str, sha256: str, data=None, what: str = "") -> dict[str, Any]:
    """The provenance record of one export.

    Parameters
    ----------
    model, sha256 : str
        The model's name and the sha256 of its weights file.
    data : Image or Signal, optional
        The input; its files are hashed when cheap (see :data:`CHEAP_HASH_BYTES`).
    what : str
        What was exported (for example ``"anomaly map"``).
    """
    from engine import __version__

    rec: dict[str, Any] = {
        "software": "latent", "software_version": __version__,
        "model": {"name": model, "sha256": sha256},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if what:
        rec["content"] = what
    if data is not None:
        rec["input"] = {"name": Path(os.fspath(data.path).rstrip("/\\")).name, "modality": data.modality}
        h = input_sha256(input_files(data))
        if h is not None:
            rec["input"]["sha256"] = h
    return rec


def write_provenance(dest: str | os.PathLike, prov: dict[str, Any], outputs) -> Path:
    """Write *prov* plus the sha256 of every output file as JSON, atomically."""
    rec = dict(prov)
    rec["outputs"] = {Path(p).name: sha256_file(p) for p in outputs if Path(p).is_file()}
    return write_json_atomic(dest, rec)
