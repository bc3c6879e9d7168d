"""Find DICOM instances in a file, a folder or a DICOMDIR and read their headers (no pixels).

Used by :mod:`engine.io.dicom`. Headers are read with ``stop_before_pixels=True`` so a
folder of hundreds of slices is scanned in a fraction of a second; pixels are decoded
later, only for the series that is opened.
"""
from __future__ import annotations

import logging
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import CorruptFileError, ReadError, UnsupportedFormatError
from engine.io.dicom.limits import check_image_header

__all__ = ["Instance", "Scan", "scan_path", "read_header", "sop_name", "non_image_reason", "quiet_pydicom"]

logger = logging.getLogger("engine")

#: Extensions that are never DICOM: skipped without opening (annotations beside a series).
_NOT_DICOM_EXT = frozenset(
    ".xml .csv .tsv .txt .json .nrrd .nhdr .nii .gz .zip .png .jpg .jpeg .bmp .gif .tif .tiff "
    ".pdf .html .htm .md .py .mat .npy .npz .raw .mhd .mha .log .ini .db .exe .dll".split()
)
_MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"

# SOP classes (prefix match) that carry no viewable image, with what they are instead.
_NON_IMAGE = (
    ("1.2.840.10008.5.1.4.1.1.66.4", "a DICOM Segmentation object, not an image: open the CT series it refers to"),
    ("1.2.840.10008.5.1.4.1.1.66.7", "a DICOM Label Map Segmentation, not an image: open the series it refers to"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "an RT Structure Set (contours), not an image: open the CT series it refers to"),
    ("1.2.840.10008.5.1.4.1.1.481.5", "an RT Plan, not an image"),
    ("1.2.840.10008.5.1.4.1.1.88.", "a DICOM Structured Report, not an image"),
    ("1.2.840.10008.5.1.4.1.1.11.", "a Presentation State, not an image: open the series it refers to"),
    ("1.2.840.10008.5.1.4.1.1.66", "a DICOM raw-data object, not an image"),
    ("1.2.840.10008.5.1.4.1.1.66.", "a DICOM registration/surface object, not an image"),
    ("1.2.840.10008.5.1.4.1.1.104.", "an encapsulated document (PDF/CDA/model), not an image"),
    ("1.2.840.10008.5.1.4.1.1.9.", "a waveform object, not an image"),
    ("1.2.840.10008.1.3.10", "a DICOMDIR (media directory): open the DICOMDIR itself or its folder"),
)


def sop_name(sop_class: str) -> str:
    """The SOP class's name (``"CT Image Storage"``), or the UID when pydicom does not know it."""
    from pydicom.uid import UID

    return UID(sop_class).name if sop_class else "unknown SOP class"


def non_image_reason(sop_class: str) -> str | None:
    """Why an instance of *sop_class* cannot be shown as an image, or None if it can."""
    # Entries ending with "." match every UID under them; the others match exactly.
    for prefix, reason in _NON_IMAGE:
        if sop_class == prefix or (prefix.endswith(".") and sop_class.startswith(prefix)):
            return f"{reason} ({sop_name(sop_class)})"
    return None


@dataclass
class Instance:
    """One DICOM file's header (pixels not read)."""

    path: str
    ds: object  # pydicom Dataset without pixel data
    forced: bool  # read without the 128-byte preamble / 'DICM' marker
    series_uid: str
    sop_class: str
    modality: str
    description: str
    rows: int | None
    cols: int | None
    n_frames: int
    reason_not_image: str | None  # None for an image
    sop_uid: str = ""
    image_type: tuple[str, ...] = ()

    @property
    def is_image(self) -> bool:
        return self.reason_not_image is None


@dataclass
class Scan:
    """Every DICOM instance found under a path, and the files that were skipped."""

    path: str
    instances: list[Instance] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, one-line reason)
    n_files: int = 0


@contextmanager
def quiet_pydicom():
    """Turn pydicom's warnings and log lines about odd values into engine DEBUG messages.

    A damaged or unusual file then yields at most one clear error (CLI: one ``error:``
    line), not a screenful of validation chatter. The pydicom logger level is restored after.
    Like :class:`warnings.catch_warnings` it changes process-wide state for its duration, so
    a warning another thread raises meanwhile is also logged at DEBUG instead of shown.
    """
    import pydicom  # noqa: F401 - its import sets the "pydicom" logger level: do it first

    plog = logging.getLogger("pydicom")
    level = plog.level
    plog.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
    finally:
        plog.setLevel(level)
    for w in caught[:20]:
        logger.debug("pydicom: %s", w.message)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    first = first.split(" - ")[0]  # pydicom appends advice after " - "
    first = first if len(first) < 200 else first[:197] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _head(path: str, n: int = 132) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _looks_preambleless(head: bytes) -> bool:
    # A raw data set (no preamble) starts with a group 0002 or 0008 tag, little endian.
    return head[:2] in (b"\x02\x00", b"\x08\x00")


def read_header(path: str, *, strict: bool) -> Instance | None:
    """Read one file's DICOM header.

    Parameters
    ----------
    path : str
    strict : bool
        True for a file the user opened directly: anything that is not a readable DICOM
        header raises :class:`~engine.errors.ReadError`. False while scanning a folder:
        non-DICOM files return None and damaged DICOM files raise ``CorruptFileError``
        (the caller records and skips them).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    name = os.path.basename(path)
    try:
        head = _head(path)
    except OSError as exc:
        raise ReadError(path, f"cannot open the file ({exc.strerror or exc})") from None
    if not head:
        if strict:
            raise ReadError(path, "the file is empty (0 bytes)")
        return None
    has_marker = head[128:132] == b"DICM"
    if not has_marker and not strict and not _looks_preambleless(head):
        return None  # while scanning, only files that start like a raw data set are tried
    not_dicom = "not a DICOM file (no 'DICM' marker, and not readable as a raw DICOM data set)"
    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=not has_marker)
            info = _instance_fields(ds, path)
    except ReadError:
        raise
    except (InvalidDicomError, Exception) as exc:  # noqa: BLE001 - any parser failure is a damaged file
        if not has_marker:
            if strict:
                raise UnsupportedFormatError(path, not_dicom) from None
            return None
        raise CorruptFileError(path, f"the DICOM header of {name} is damaged ({_one_line(exc)})") from None
    if info is None:
        if not has_marker:
            if strict:
                raise UnsupportedFormatError(path, not_dicom)
            return None
        raise CorruptFileError(path, f"the DICOM header of {name} is damaged or incomplete "
                                     "(no SOP Class UID and no image attributes)")
    return Instance(path=path, ds=ds, forced=not has_marker, **info)


#: Transfer syntaxes whose pixel data is stored raw (its size is bound by the file size).
_UNCOMPRESSED_TS = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")


def _instance_fields(ds, path: str) -> dict | None:
    meta = getattr(ds, "file_meta", None)
    sop = str(ds.get("SOPClassUID", "") or (meta.get("MediaStorageSOPClassUID", "") if meta else "") or "")
    rows, cols = ds.get("Rows"), ds.get("Columns")
    if not sop and (rows is None or cols is None):
        return None
    reason = non_image_reason(sop) if sop else None
    if reason is None and (rows is None or cols is None or "BitsAllocated" not in ds):
        name = sop_name(sop)
        if "Image" in name or not sop:  # an image class without its image attributes
            raise CorruptFileError(path, f"the DICOM header of {os.path.basename(path)} is incomplete "
                                         f"({name} without Rows/Columns/Bits Allocated): "
                                         "the file is truncated or damaged")
        reason = f"a {name} object without image pixels"
    try:
        n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        n_frames = 1
    if reason is None:
        ts = str(meta.get("TransferSyntaxUID", "") if meta is not None else "") or "1.2.840.10008.1.2"
        compressed = ts not in _UNCOMPRESSED_TS
        check_image_header(path, ds, n_frames, int(rows), int(cols), compressed)
    return dict(
        series_uid=str(ds.get("SeriesInstanceUID", "") or "(no SeriesInstanceUID)"),
        sop_class=sop,
        modality=str(ds.get("Modality", "") or "").strip().upper() or "OT",
        description=str(ds.get("SeriesDescription", "") or "").strip(),
        rows=None if rows is None else int(rows),
        cols=None if cols is None else int(cols),
        n_frames=max(n_frames, 1),
        reason_not_image=reason,
        sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
        image_type=tuple(str(v).strip().upper() for v in (ds.get("ImageType") or ())),
    )


def _walk_files(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith(".") or Path(fn).suffix.lower() in _NOT_DICOM_EXT:
                continue
            out.append(os.path.join(dirpath, fn))
    return out


def _dicomdir_files(path: str) -> list[str]:
    """The files a DICOMDIR refers to (through pydicom's FileSet)."""
    import pydicom
    from pydicom.fileset import FileSet

    try:
        with quiet_pydicom():
            ds = pydicom.dcmread(path)
            if "DirectoryRecordSequence" not in ds:
                raise ValueError("no Directory Record Sequence")
            listed = sum(1 for rec in ds.DirectoryRecordSequence if rec.get("ReferencedFileID"))
            fs = FileSet(ds)  # leaves out the files it cannot find
            files = [os.fspath(inst.path) for inst in fs if os.path.isfile(inst.path)]
    except ReadError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CorruptFileError(path, f"the DICOMDIR cannot be read ({_one_line(exc)})") from None
    if len(files) < listed:
        raise CorruptFileError(path, f"{listed - len(files)} of the {listed} files the DICOMDIR lists are missing")
    return files


def is_dicomdir(path: str) -> bool:
    p = Path(path)
    if p.name.upper() == "DICOMDIR":
        return True
    try:
        head = _head(path, 2048)
    except OSError:
        return False
    return head[128:132] == b"DICM" and _MEDIA_STORAGE_DIRECTORY.encode() in head


def scan_path(path: str | os.PathLike) -> Scan:
    """Read the headers of every DICOM instance in a file, folder (recursively) or DICOMDIR."""
    p = Path(path)
    if not p.exists():
        raise ReadError(p, "no such file or folder")
    scan = Scan(path=os.fspath(p))
    if p.is_file() and not is_dicomdir(os.fspath(p)):
        inst = read_header(os.fspath(p), strict=True)
        scan.instances.append(inst)
        scan.n_files = 1
        return scan
    if p.is_file():
        # A DICOMDIR: the files its records list. When it is unreadable or lists files that
        # are not there (e.g. upper/lower case changed on copying), scan its folder instead.
        try:
            files = _dicomdir_files(os.fspath(p))
        except ReadError as exc:
            logger.warning("%s; scanning the folder %s instead", exc, p.parent)
            scan.skipped.append((os.fspath(p), exc.reason))
            files = _walk_files(p.parent)
    else:
        files = _walk_files(p)
    scan.n_files = len(files)
    for f in files:
        try:
            inst = read_header(f, strict=False)
        except ReadError as exc:
            logger.warning("skipping %s", exc)
            scan.skipped.append((f, exc.reason))
            continue
        if inst is None or inst.sop_class == _MEDIA_STORAGE_DIRECTORY:
            continue
        scan.instances.append(inst)
    return scan
