"""One explicit registry of readers, chosen by magic bytes first and extension second.

Each entry names the module and function that reads the format; the module is
imported only when a file of that kind is opened, so ``import engine`` stays fast.
"""
from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from engine.errors import ReadError, UnsupportedFormatError

__all__ = ["ReaderSpec", "READERS", "sniff", "find_reader", "resolve_path"]


@dataclass(frozen=True)
class ReaderSpec:
    """A reader: the formats it handles, by extension and by content."""

    name: str
    module: str
    function: str
    extensions: tuple[str, ...]
    kinds: tuple[str, ...]  # content kinds (from :func:`sniff`) it accepts
    description: str

    def load(self):
        return getattr(importlib.import_module(self.module), self.function)


READERS: dict[str, ReaderSpec] = {
    spec.name: spec
    for spec in (
        ReaderSpec("dicom", "engine.io.dicom", "read_dicom",
                   (".dcm", ".dicom", ".ima", ".dic"), ("dicom",),
                   "DICOM CT: a file, a series folder or a DICOMDIR"),
        ReaderSpec("histology", "engine.io.histology", "read_histology",
                   (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".btf", ".tf8", ".svs", ".ndpi",
                    ".mrxs", ".scn", ".bif", ".vms", ".vmu", ".svslide"),
                   ("tiff", "png", "jpeg", "mrxs"),
                   "H&E image: PNG/JPEG/TIFF/BigTIFF/OME-TIFF/pyramidal TIFF, SVS/NDPI/MRXS (OpenSlide)"),
        ReaderSpec("wfdb", "engine.io.wfdb", "read_wfdb",
                   (".hea", ".dat", ".atr"), ("wfdb-header",),
                   "WFDB record (header + signal + annotations)"),
        ReaderSpec("mne", "engine.io.mne", "read_mne",
                   (".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".vhdr", ".set"),
                   ("edf", "bdf", "gdf", "fif", "brainvision", "matlab"),
                   "EDF/EDF+/BDF/GDF/FIF/BrainVision/EEGLAB through MNE"),
        ReaderSpec("text", "engine.io.text", "read_text",
                   (".txt", ".csv", ".tsv", ".asc", ".npy"), ("npy", "text"),
                   "headerless text/CSV/NPY signal (needs sfreq)"),
    )
}

# Magic bytes -> content kind. Order matters: the first match wins.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (128, b"DICM", "dicom"),
    (0, b"\x02\x00\x00\x00UL", "dicom"),  # preamble-less file meta (explicit VR)
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"II+\x00", "tiff"),
    (0, b"MM\x00+", "tiff"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\xffBIOSEMI", "bdf"),
    (0, b"GDF", "gdf"),
    (0, b"\x93NUMPY", "npy"),
    (0, b"MATLAB", "matlab"),
    (0, b"Brain Vision", "brainvision"),
    (0, b"BrainVision", "brainvision"),
    (0, b"\x1f\x8b", "gzip"),
    (0, b"PK\x03\x04", "zip"),
    (0, b"%PDF", "pdf"),
    (0, b"GIF8", "gif"),
    (0, b"BM", "bmp"),
    (0, b"\x7fELF", "elf"),
)
_KIND_OF_EXT = {
    ".dcm": "dicom", ".dicom": "dicom", ".ima": "dicom", ".dic": "dicom",
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg",
    ".tif": "tiff", ".tiff": "tiff", ".btf": "tiff", ".tf8": "tiff", ".svs": "tiff", ".ndpi": "tiff",
    ".scn": "tiff", ".bif": "tiff",
    ".edf": "edf", ".bdf": "bdf", ".gdf": "gdf", ".fif": "fif", ".vhdr": "brainvision",
    ".set": "matlab", ".npy": "npy", ".hea": "wfdb-header",
}
_NAMES = {
    "dicom": "DICOM", "tiff": "TIFF", "png": "PNG", "jpeg": "JPEG", "bdf": "BDF", "edf": "EDF",
    "gdf": "GDF", "npy": "NumPy .npy", "matlab": "MATLAB/EEGLAB", "brainvision": "BrainVision header",
    "gzip": "gzip archive", "zip": "ZIP archive", "pdf": "PDF document", "gif": "GIF image",
    "bmp": "BMP image", "elf": "executable", "fif": "FIF", "wfdb-header": "WFDB header",
    "text": "text", "binary": "unrecognised binary data",
}


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for double in (".fif.gz", ".ome.tiff", ".ome.tif"):
        if name.endswith(double):
            return ".fif.gz" if double == ".fif.gz" else ".tif"
    return path.suffix.lower()


def _looks_like_wfdb_header(head: bytes) -> bool:
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        return False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        # record name [/segments] nsig [fs[/counter][(base)] [nsamp ...]]
        if len(parts) < 2 or not re.fullmatch(r"[\w\-]+", parts[0].split("/")[0]):
            return False
        return parts[1].isdigit() and (len(parts) == 2 or parts[2][:1].isdigit())
    return False


def _looks_like_edf(head: bytes) -> bool:
    # EDF/EDF+: version "0" padded to 8 bytes, ASCII header of 256 bytes.
    if len(head) < 256 or head[:8] != b"0       ":
        return False
    try:
        head[:256].decode("ascii")
    except UnicodeDecodeError:
        return False
    return head[184:192].strip().isdigit()


def _looks_like_fif(head: bytes) -> bool:
    # FIFF_FILE_ID tag: kind 100, type 31 (id struct), size 20, big-endian.
    return head[:12] == b"\x00\x00\x00\x64\x00\x00\x00\x1f\x00\x00\x00\x14"


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # the 4 KiB cut may split a multi-byte character
        try:
            text = head[:-4].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return printable >= 0.98 * len(text)


def sniff(path: str | os.PathLike) -> str:
    """Say what a file contains from its first bytes.

    Returns one of the content kinds (``"dicom"``, ``"tiff"``, ``"png"``, ``"jpeg"``,
    ``"edf"``, ``"bdf"``, ``"fif"``, ``"npy"``, ``"matlab"``, ``"brainvision"``,
    ``"wfdb-header"``, ``"text"``, ...), ``"empty"`` or ``"binary"``.
    """
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if not head:
        return "empty"
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if _looks_like_edf(head):
        return "edf"
    if _looks_like_fif(head):
        return "fif"
    if _looks_like_wfdb_header(head):
        return "wfdb-header"
    if _looks_like_text(head):
        return "text"
    return "binary"


def resolve_path(path: str | os.PathLike) -> Path:
    """The path as given, or a WFDB record path completed with ``.hea``."""
    p = Path(path)
    if p.exists():
        return p
    hea = p.with_name(p.name + ".hea")
    if hea.exists():
        return hea
    raise ReadError(p, "no such file or folder")


def find_reader(path: str | os.PathLike) -> ReaderSpec:
    """Choose the reader for *path* by content first, then by extension.

    A file whose extension promises one format while its content is another raises
    :class:`~engine.errors.UnsupportedFormatError` naming both.
    """
    p = resolve_path(path)
    if p.is_dir():
        return READERS["dicom"]
    if p.name.upper() == "DICOMDIR":
        return READERS["dicom"]
    suffix = _suffix(p)
    size = p.stat().st_size
    if size == 0:
        raise ReadError(p, "the file is empty (0 bytes)")
    if suffix == ".mrxs":
        return READERS["histology"]
    if suffix in (".dat", ".atr") and p.with_suffix(".hea").exists():
        return READERS["wfdb"]
    if suffix == ".event" and _suffix(p.with_suffix("")) in (".edf", ".bdf") and p.with_suffix("").is_file():
        return READERS["mne"]  # PhysioNet's X.edf.event: the events of X.edf, read with it
    if suffix == ".fif.gz":
        return READERS["mne"]
    kind = sniff(p)
    expected = _KIND_OF_EXT.get(suffix)
    by_ext = [s for s in READERS.values() if suffix in s.extensions]
    if kind in ("text", "binary"):
        # Formats without magic (text signals, raw DICOM without preamble) go by extension.
        if suffix in (".txt", ".csv", ".tsv", ".asc") and kind == "text":
            return READERS["text"]
        if expected == "dicom":
            return READERS["dicom"]  # the DICOM reader tries a preamble-less read
        if expected == "wfdb-header" and kind == "text":
            return READERS["wfdb"]  # the WFDB reader says what is wrong with the header
        if expected is not None:
            raise ReadError(p, f"the extension says {_NAMES.get(expected, expected)} but the "
                               f"content is not ({_NAMES[kind]}); the file is damaged or misnamed")
        if by_ext:
            return by_ext[0]
        raise UnsupportedFormatError(p, f"not a medical image or signal Latent reads ({_NAMES[kind]}); "
                                        f"supported: {supported_formats()}")
    if kind == "wfdb-header" and suffix not in (".hea", ""):
        if suffix in (".txt", ".csv", ".tsv", ".asc"):
            return READERS["text"]
    if expected is not None and expected != kind:
        raise UnsupportedFormatError(
            p, f"the extension says {_NAMES.get(expected, expected)} but the content is "
               f"{_NAMES.get(kind, kind)}; rename the file or check that it is the right one")
    for spec in READERS.values():
        if kind in spec.kinds:
            return spec
    raise UnsupportedFormatError(p, f"{_NAMES.get(kind, kind)} is not a format Latent reads; "
                                    f"supported: {supported_formats()}")


def supported_formats() -> str:
    return "; ".join(spec.description for spec in READERS.values())
