"""Turn the paths a user gives into batch inputs: files, folders (expanded by content) and globs.

Rules
-----
* A file named on the command line is always one input (a damaged or wrong file becomes
  an ``error`` row, it is not dropped).
* A folder whose own files include DICOM (``DICM`` at byte 128, the preamble-less file
  meta, or a ``DICOMDIR``) is **one** input: a series folder. Content decides, not names,
  so a folder of PNGs is never taken for DICOM.
* Any other folder is expanded: each file whose extension belongs to a reader of the
  task's modalities is one input (WFDB: one per ``.hea``; an ``.mrxs`` slide with its data
  folder is one), and sub-folders are expanded by the same rules. Hidden files are skipped;
  headerless text/NPY signals only count when ``sfreq`` is given (they cannot be read
  without it).
* A path that does not exist is read as a glob pattern (``**`` recurses).

Each input gets an output folder name that is unique within the batch and stable from one
run to the next (the input's name; on a clash, parent folder names are prepended).
"""
from __future__ import annotations

import glob
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from engine._shared.files import sha256_file, stem_of
from engine.errors import LatentError
from engine.io import READERS, sniff

__all__ = ["BatchInput", "expand_inputs", "is_dicom_folder", "input_files", "input_sha256",
           "READER_MODALITIES"]

#: The modalities each reader can produce (selects the files a task's folder expansion takes).
READER_MODALITIES: dict[str, tuple[str, ...]] = {
    "dicom": ("ct",), "histology": ("histology",), "wfdb": ("ecg", "eeg"),
    "mne": ("eeg", "ecg"), "text": ("ecg", "eeg"),
}
_GLOB_CHARS = re.compile(r"[*?\[]")
_COMPANIONS = (".dat", ".atr")  # signal/annotation files of a WFDB record: the .hea stands for them


@dataclass(frozen=True)
class BatchInput:
    """One unit of work: the path the reader opens and the folder its outputs go to.

    Attributes
    ----------
    path : str
        Absolute path handed to :func:`engine.io.read` (a file, a DICOM folder, a ``.hea``).
    name : str
        Output sub-folder name, unique within the batch.
    kind : {"file", "dicom-folder", "wfdb", "mrxs"}
    """

    path: str
    name: str
    kind: str = "file"


def is_dicom_folder(folder: str | os.PathLike) -> bool:
    """True when *folder* holds a DICOMDIR or at least one DICOM file directly (by content)."""
    for entry in _entries(Path(folder)):
        if entry.is_file():
            if entry.name.upper() == "DICOMDIR":
                return True
            try:
                if sniff(entry) == "dicom":
                    return True
            except OSError:
                continue
    return False


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise LatentError(f"{folder}: the folder cannot be listed: {exc.strerror or exc}") from None


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for double in (".ome.tiff", ".ome.tif", ".fif.gz"):
        if name.endswith(double):
            return ".tif" if "ome" in double else double
    return path.suffix.lower()


def _wanted_extensions(modalities: Iterable[str], with_text: bool) -> set[str]:
    mods = set(modalities)
    exts: set[str] = set()
    for name, spec in READERS.items():
        if name == "text" and not with_text:
            continue
        if mods & set(READER_MODALITIES.get(name, ())):
            exts.update(spec.extensions)
    return exts - set(_COMPANIONS)


def _expand_folder(folder: Path, exts: set[str], want_dicom: bool, skip: set[Path],
                   out: list[tuple[Path, str]]) -> None:
    if folder.resolve() in skip:
        return
    if is_dicom_folder(folder):
        if want_dicom:
            out.append((folder, "dicom-folder"))
        return
    entries = _entries(folder)
    mrxs_dirs = {p.with_suffix("") for p in entries if p.suffix.lower() == ".mrxs"}
    for entry in entries:
        if entry.is_dir():
            if entry not in mrxs_dirs:
                _expand_folder(entry, exts, want_dicom, skip, out)
        elif _suffix(entry) in exts:
            out.append((entry, {".hea": "wfdb", ".mrxs": "mrxs"}.get(_suffix(entry), "file")))


def expand_inputs(paths: Sequence[str | os.PathLike], *, modalities: Sequence[str],
                  with_text: bool = False, exclude: Sequence[str | os.PathLike] = ()) -> list[BatchInput]:
    """Expand *paths* (files, folders, glob patterns) into batch inputs, in a stable order.

    Parameters
    ----------
    paths : sequence of path-like
        What the user named.
    modalities : sequence of str
        The task's modalities; folder expansion keeps files of readers that produce them.
    with_text : bool
        Also take headerless ``.txt``/``.csv``/``.npy`` signals from folders (needs ``sfreq``).
    exclude : sequence of path-like
        Folders never entered (the batch's own output folder).

    Raises
    ------
    engine.errors.LatentError
        When a path is neither a file, a folder nor a pattern that matches something, or
        when nothing to process was found.
    """
    want_dicom = "ct" in modalities
    exts = _wanted_extensions(modalities, with_text)
    skip = {Path(p).resolve() for p in exclude}
    found: list[tuple[Path, str]] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            _expand_folder(p, exts, want_dicom, skip, found)
        elif p.is_file():
            found.append((p, "wfdb" if _suffix(p) == ".hea" else "file"))
        elif p.with_name(p.name + ".hea").is_file():  # a WFDB record named without .hea
            found.append((p.with_name(p.name + ".hea"), "wfdb"))
        elif _GLOB_CHARS.search(str(raw)):
            matches = sorted(glob.glob(str(raw), recursive=True))
            if not matches:
                raise LatentError(f"{raw}: the pattern matches no file or folder")
            for m in matches:
                mp = Path(m)
                if mp.is_dir():
                    _expand_folder(mp, exts, want_dicom, skip, found)
                elif _suffix(mp) not in _COMPANIONS or not mp.with_suffix(".hea").exists():
                    found.append((mp, "wfdb" if _suffix(mp) == ".hea" else "file"))
        else:
            raise LatentError(f"{raw}: no such file or folder")
    unique: dict[str, str] = {}
    for path, kind in found:
        unique.setdefault(str(path.resolve()), kind)
    if not unique:
        raise LatentError(f"no inputs for this task in {', '.join(map(str, paths))} "
                          f"(looked for {', '.join(sorted(exts))}"
                          f"{' and DICOM folders' if want_dicom else ''})")
    names = unique_names(list(unique))
    return [BatchInput(path=p, name=names[p], kind=k) for p, k in unique.items()]


def unique_names(paths: Sequence[str], taken: dict[str, str] | None = None) -> dict[str, str]:
    """Output folder name per path: its stem, with parent folder names prepended on a clash.

    *taken* maps paths to names fixed by an earlier run (kept as they were).

    >>> unique_names(["/a/x/img.png", "/a/y/img.png", "/a/z.png"])
    {'/a/x/img.png': 'x_img', '/a/y/img.png': 'y_img', '/a/z.png': 'z'}
    """
    taken = dict(taken or {})
    result = {p: taken[p] for p in paths if p in taken}
    used = set(taken.values())
    todo = [p for p in paths if p not in result]
    depth = 0
    while todo:
        cand = {p: _name_at(p, depth) for p in todo}
        counts: dict[str, int] = {}
        for n in cand.values():
            counts[n] = counts.get(n, 0) + 1
        rest = []
        for p in todo:
            n = cand[p]
            if counts[n] == 1 and n not in used:
                result[p] = n
                used.add(n)
            else:
                rest.append(p)
        if len(rest) == len(todo) and depth > len(Path(rest[0]).parts):
            for p in rest:  # identical names all the way up: fall back to a short hash
                n = f"{_name_at(p, 0)}-{hashlib.sha1(p.encode()).hexdigest()[:8]}"
                result[p] = n
                used.add(n)
            rest = []
        todo, depth = rest, depth + 1
    return {p: result[p] for p in paths}


def _name_at(path: str, depth: int) -> str:
    """The stem with the *depth* nearest parent folder names in front (``x_img`` at depth 1)."""
    p = Path(path)
    parents = list(p.parent.parts[len(p.parent.parts) - depth:]) if depth else []
    return "_".join([_safe(q) for q in parents] + [_safe(stem_of(p))])


def _safe(text: str) -> str:
    return re.sub(r"[^\w.\-]+", "-", text).strip("-.") or "input"


def input_files(item: BatchInput | str) -> list[Path]:
    """The files whose bytes make up an input (hashed for ``--resume``)."""
    path = Path(item.path if isinstance(item, BatchInput) else item)
    if path.is_dir():
        return sorted(q for q in path.rglob("*") if q.is_file())
    files = [path]
    if _suffix(path) == ".hea":
        files += sorted(q for q in path.parent.glob(glob.escape(path.stem) + ".*")
                        if q != path and q.is_file())
    elif _suffix(path) == ".mrxs" and path.with_suffix("").is_dir():
        files += sorted(q for q in path.with_suffix("").rglob("*") if q.is_file())
    return files


def input_sha256(item: BatchInput | str) -> str:
    """sha256 of an input: the file's own for a single file (as ``sha256sum`` prints it),
    else of the list ``relative-name sha256`` of its files (DICOM folder, WFDB record, MRXS)."""
    files = input_files(item)
    if len(files) == 1 and files[0].is_file() and not Path(getattr(item, "path", item)).is_dir():
        return sha256_file(files[0])
    root = Path(getattr(item, "path", item))
    root = root if root.is_dir() else root.parent
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.relative_to(root).as_posix()} {sha256_file(f)}\n".encode())
    return h.hexdigest()
