"""``manifest.csv``: one row per input of a batch, rewritten atomically as each input finishes.

Columns: ``input`` (absolute path), ``sha256`` (of the input's bytes, see
:func:`engine.batch.inputs.input_sha256`), ``status`` (``ok``, ``error`` or ``skipped``),
``message`` (the error text, or why it was skipped), ``outputs`` (paths relative to the
batch folder, ``;``-separated), ``seconds`` (wall time on the worker) and ``device``.
"""
from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Iterable

from engine._shared.files import atomic_path
from engine.errors import LatentError

__all__ = ["ManifestRow", "MANIFEST_NAME", "COLUMNS", "STATUSES", "read_manifest", "write_manifest"]

MANIFEST_NAME = "manifest.csv"
STATUSES = ("ok", "error", "skipped")


@dataclass(frozen=True)
class ManifestRow:
    """The outcome of one input."""

    input: str
    sha256: str
    status: str
    message: str = ""
    outputs: tuple[str, ...] = ()  # relative to the batch folder
    seconds: float = 0.0
    device: str = ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["outputs"] = list(self.outputs)
        return d


COLUMNS = tuple(f.name for f in fields(ManifestRow))


def read_manifest(path: str | os.PathLike) -> dict[str, ManifestRow]:
    """Rows of an existing manifest by input path; ``{}`` when there is none.

    Raises
    ------
    engine.errors.LatentError
        When the file exists but is not a batch manifest (it is left untouched).
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise ValueError(f"columns {reader.fieldnames} instead of {list(COLUMNS)}")
            rows = {}
            for r in reader:
                if r["status"] not in STATUSES:
                    raise ValueError(f"unknown status {r['status']!r}")
                rows[r["input"]] = ManifestRow(
                    input=r["input"], sha256=r["sha256"], status=r["status"], message=r["message"],
                    outputs=tuple(o for o in r["outputs"].split(";") if o),
                    seconds=float(r["seconds"] or 0), device=r["device"])
    except (OSError, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise LatentError(f"{path}: not a Latent batch manifest ({exc}); choose another --out "
                          f"folder or move the file away") from None
    return rows


def write_manifest(path: str | os.PathLike, rows: Iterable[ManifestRow]) -> Path:
    """Write *rows* (sorted by input) to *path* atomically: readers never see half a file."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(COLUMNS)
            for r in sorted(rows, key=lambda r: r.input):
                w.writerow([r.input, r.sha256, r.status, " ".join(r.message.split()),
                            ";".join(r.outputs), f"{r.seconds:.3f}", r.device])
    return path
