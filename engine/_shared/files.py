"""Output files: atomic writes, JSON, hashing, output stems."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterator

__all__ = ["atomic_path", "write_json_atomic", "sha256_file", "stem_of", "PART_PATTERN"]

#: Name of :func:`atomic_path`'s temporary file: ``.<stem>.latent-part-<pid>-<8 chars>.part<suffix>``.
PART_PATTERN = re.compile(r"^\.(?P<stem>.*)\.latent-part-(?P<pid>\d+)-(?P<tag>[a-z0-9_]{8})\.part(\..*)?$")


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to *dest*; on success rename it onto *dest*.

    A crash or an exception leaves *dest* untouched (the previous file, or nothing). The
    temporary file is fsynced before the rename and the folder after it, so after a power
    loss *dest* is the old file or the complete new one.
    Write libraries that insist on an extension get the same suffix as *dest*.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    sfx = dest.suffix if suffix is None else suffix
    # the pid in the name lets the next run into this folder remove what a killed one left
    # (engine._shared.output_set.recover_output_sets; PART_PATTERN)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.latent-part-{os.getpid()}-", suffix=".part" + sfx,
                               dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp makes the file private (0600); outputs get the usual permissions under the umask
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        _fsync_file(tmp_path)
        os.replace(tmp_path, dest)
        _fsync_dir(dest.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync_file(path: Path) -> None:
    """Flush *path*'s data to disk so the rename never publishes an empty or partial file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (the rename) to disk; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(dest: str | os.PathLike, obj: Any) -> Path:
    """Write *obj* as indented JSON to *dest* atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", encoding="utf-8")
    return Path(dest)


def _json_default(o: Any):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def sha256_file(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def stem_of(path: str | os.PathLike) -> str:
    """The input's file or folder name without extension (``a/b/scan.ome.tif`` -> ``scan``)."""
    name = Path(os.fspath(path).rstrip("/\\")).name
    for double in (".ome.tiff", ".ome.tif", ".fif.gz", ".nii.gz"):
        if name.lower().endswith(double):
            return name[: -len(double)]
    return Path(name).stem if "." in name else name
