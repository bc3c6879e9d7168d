"""Checks on an "ok" result: the data is really read, finite, and no larger than the files can hold.

The checks are independent of the readers' own guards: they re-parse the mutated
file's header here (PNG IHDR/IDAT, JPEG SOF, TIFF IFD 0) and compare. :func:`access_and_check`
returns ``(problem or None, note)``; the note says when non-finite values were accepted
because the metadata documents them (WFDB invalid samples read as NaN).
"""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["access_and_check"]

#: Most samples one byte of a signal file can hold (WFDB formats 8/80: 1 byte per sample).
_SAMPLES_PER_BYTE = 1.0
#: Most pixels one byte of a DICOM file can hold uncompressed (BitsAllocated 1).
_DICOM_PIXELS_PER_BYTE = 8
#: Most pixels per byte of a JPEG (far above any real photograph or slide tile).
_JPEG_PIXELS_PER_BYTE = 2000
#: Largest distance from 128 of the luma of libjpeg's grey padding after YCbCr -> RGB -> luma.
_GREY_PAD_TOLERANCE = 2.0
#: Most pixels per compressed TIFF byte (zlib's ratio limit is ~1032:1 per byte of output).
_TIFF_PIXELS_PER_BYTE = 1100


def _png_check(b: bytes, shape) -> str | None:
    i, idat, ihdr = 8, [], None
    while i + 8 <= len(b):
        n = struct.unpack(">I", b[i:i + 4])[0]
        typ = b[i + 4:i + 8]
        if typ == b"IHDR":
            ihdr = b[i + 8:i + 8 + 13]
        elif typ == b"IDAT":
            idat.append(b[i + 8:i + 8 + n])
        i += 12 + n
    if ihdr is None or len(ihdr) < 13:
        return "ok without an IHDR"
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if (h, w) != tuple(shape[:2]):
        return f"shape {shape[:2]} but IHDR says {h} x {w}"
    if interlace:
        return None  # row count check for Adam7 is in the reader's guard; dims checked above
    ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(color, 4)
    need = h * (1 + (w * ch * depth + 7) // 8)
    z = zlib.decompressobj()
    got = 0
    try:
        for part in idat:
            got += len(z.decompress(part, need + 1 - got)) if got <= need else 0
            if got > need:
                break
    except zlib.error:
        return "ok but the IDAT stream does not decompress"
    if got < need:
        return f"ok but IDAT holds {got} bytes of rows, the {h} x {w} image needs {need}"
    return None


def _grey_tail(arr) -> str | None:
    """libjpeg fills the blocks its entropy data lacks with zero coefficients (luma exactly 128)
    and only warns; a bottom band of flat grey across the whole width is that padding."""
    if arr is None or arr.ndim != 3:
        return None
    band = arr[-min(8, arr.shape[0]):].astype(np.float64)
    luma = band[..., 0] * 0.299 + band[..., 1] * 0.587 + band[..., 2] * 0.114
    if np.abs(luma - 128.0).max() <= _GREY_PAD_TOLERANCE:
        return f"ok but its last {band.shape[0]} rows are flat grey 128 (libjpeg's padding of missing data)"
    return None


def _jpeg_check(b: bytes, shape, arr=None) -> str | None:
    i = 2
    while i + 9 <= len(b) and b[i] == 0xFF:
        m, n = b[i + 1], struct.unpack(">H", b[i + 2:i + 4])[0]
        if m in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", b[i + 5:i + 9])
            if (h, w) != tuple(shape[:2]):
                return f"shape {shape[:2]} but SOF says {h} x {w}"
            break
        if m == 0xDA:
            break
        i += 2 + n
    if shape[0] * shape[1] > _JPEG_PIXELS_PER_BYTE * len(b):
        return f"{shape[0]} x {shape[1]} pixels from {len(b)} bytes"
    return _grey_tail(arr)


#: TIFF integer field types: (bytes, struct format).
_TIFF_INT_TYPES = {1: (1, "<B"), 6: (1, "<b"), 3: (2, "<H"), 8: (2, "<h"), 4: (4, "<I"), 9: (4, "<i"),
                   13: (4, "<I"), 16: (8, "<Q"), 17: (8, "<q"), 18: (8, "<Q")}


def _tiff_check(b: bytes, shape) -> str | None:
    if b[:4] != b"II*\x00":
        return None  # not the classic little-endian layout the seeds use: nothing to compare
    try:
        ifd = struct.unpack("<I", b[4:8])[0]
        n = struct.unpack("<H", b[ifd:ifd + 2])[0]
        tags = {}
        for k in range(n):
            tag, typ, count, value = struct.unpack("<HHII", b[ifd + 2 + 12 * k:ifd + 14 + 12 * k])
            if typ not in _TIFF_INT_TYPES:  # tifffile skips or does not use other types for these tags
                continue
            width, fmt = _TIFF_INT_TYPES[typ]
            if count * width <= 4:
                vals = [struct.unpack(fmt, struct.pack("<I", value)[j * width:(j + 1) * width])[0]
                        for j in range(count)]  # values of <= 4 bytes sit in the entry itself
            elif count < 1_000_000 and value + count * width <= len(b):
                vals = [struct.unpack(fmt, b[value + j * width:value + (j + 1) * width])[0] for j in range(count)]
            else:
                vals = None
            tags.setdefault(tag, vals)  # a repeated tag: tifffile keeps the first one
    except (struct.error, KeyError):
        return None
    w, h = (tags.get(256) or [0])[0], (tags.get(257) or [0])[0]
    if (h, w) != tuple(shape[:2]):
        return f"shape {shape[:2]} but IFD 0 says {h} x {w}"
    offs, counts = tags.get(324) or tags.get(273), tags.get(325) or tags.get(279)
    if not offs or not counts:
        return None
    counts = counts[:len(offs)]  # values past the tile/strip count are never used
    for o, c in zip(offs, counts):
        if o + c > len(b):
            return f"ok with a strip/tile at {o} + {c} bytes beyond the file's {len(b)} bytes"
    spp = (tags.get(277) or [1])[0]
    bps = tags.get(258) or [1]  # the TIFF default BitsPerSample
    bits = sum(bps[:spp]) if len(bps) > 1 else bps[0] * spp  # extra values beyond spp are ignored
    total = sum(counts)
    if (tags.get(259) or [1])[0] == 1:
        if 322 in tags and 323 in tags:
            tw, tl = tags[322][0], tags[323][0]
            need_one = tw * tl * bits // 8
            if any(c < need_one for c in counts):
                return f"ok with an uncompressed tile shorter than {need_one} bytes"
        elif total * 8 < h * w * bits:
            return f"ok with {total} bytes of strips for {h} x {w} x {bits} bits"
    elif h * w > _TIFF_PIXELS_PER_BYTE * max(total, 1):
        return f"{h} x {w} pixels from {total} compressed bytes"
    return None


def _check_image(img, family: str, files: dict[str, Path]) -> str | None:
    shape = tuple(img.shape)
    total = sum(p.stat().st_size for p in files.values())
    if family in ("dicom", "dicom-folder"):  # CT, or another DICOM modality read the same way
        arr = img.array
        if arr is None or tuple(arr.shape) != shape or len(shape) != 3:
            return f"CT pixels {None if arr is None else arr.shape} do not match shape {shape}"
        if not np.isfinite(arr).all():
            return f"{int(np.size(arr) - np.isfinite(arr).sum())} non-finite HU values"
        if math.prod(shape) > _DICOM_PIXELS_PER_BYTE * total:
            return f"{shape} voxels from {total} bytes"
        sp = img.spacing or ()
        if len(sp) != 3 or not all(math.isfinite(v) and v > 0 for v in sp):
            return f"spacing {sp} is not 3 finite lengths > 0"
        for name, v in (("origin", img.origin), ("direction", img.direction)):
            if v is not None and not all(math.isfinite(x) for x in v):
                return f"{name} {v} is not finite"
        return None
    h, w = shape[:2]
    if h < 1 or w < 1 or len(shape) != 3 or shape[2] != 3:
        return f"histology shape {shape}"
    if img.levels and tuple(img.levels[0]) != (h, w):
        return f"level 0 {img.levels[0]} is not the shape {shape}"
    for x, y, rw, rh in ((0, 0, min(w, 256), min(h, 256)), (max(w - 64, 0), max(h - 64, 0), 64, 64)):
        reg = img.read_region(0, x, y, rw, rh)
        if reg.shape[:2] != (rh, rw) or reg.dtype != np.uint8:
            return f"region {rw}x{rh} at ({x}, {y}) came back {reg.shape} {reg.dtype}"
    if img.spacing is not None and not all(math.isfinite(v) and v > 0 for v in img.spacing):
        return f"microns per pixel {img.spacing} is not finite and > 0"
    if len(img.levels) != len(img.downsamples) or not all(math.isfinite(d) and d >= 1 for d in img.downsamples):
        return f"levels {img.levels} with downsamples {img.downsamples}"
    if img.array is not None and tuple(img.array.shape[:2]) != (h, w):
        return f"array {img.array.shape} is not the shape {shape}"
    data = next(iter(files.values())).read_bytes()
    if family == "png":
        return _png_check(data, shape)
    if family == "jpeg":
        return _jpeg_check(data, shape, img.array)
    if family in ("tiff", "svs"):
        return _tiff_check(data, shape)
    return None


def _edf_size_check(n: int, nch: int, files: dict[str, Path]) -> str | None:
    """EDF/BDF re-parsed here: at most the header's data channels, each at most the highest
    samples-per-record x the complete records the file holds, and the whole no more than
    ``MAX_EDF_RATE_INFLATION`` (the reader's stated limit for mixed rates) x the samples stored."""
    from engine.io.mne import MAX_EDF_RATE_INFLATION

    f = next(p for p in files.values() if p.suffix.lower() in (".edf", ".bdf"))
    b = f.read_bytes()
    try:
        ns = int(b[252:256].decode("ascii").strip())
        labels = [b[256 + 16 * i:256 + 16 * (i + 1)].decode("ascii", "replace").strip() for i in range(ns)]
        off = 256 + ns * 216
        spr = [int(b[off + 8 * i:off + 8 * (i + 1)].decode("ascii").strip()) for i in range(ns)]
    except (UnicodeDecodeError, ValueError):
        return "read ok, but the EDF header's numbers do not parse"
    width = 3 if b[:1] == b"\xff" else 2
    # the annotation (TAL) signals are named exactly so (MNE matches the label case-sensitively)
    data = [k for lab, k in zip(labels, spr) if lab not in ("EDF Annotations", "BDF Annotations")] or spr
    # what the bytes hold: a header announcing fewer records than the file holds is read to the file's
    # end (MNE infers the count from the size, as for "-1", and warns), one announcing more is truncated
    records = (len(b) - 256 * (ns + 1)) // max(1, sum(spr) * width)
    if nch > len(data):
        return f"{nch} channels from a header with {len(data)} data signals"
    if n > max(data) * records:
        return f"{n} samples per channel; the file holds {records} records of at most {max(data)}"
    if n * nch > MAX_EDF_RATE_INFLATION * sum(data) * records:
        return f"{nch} x {n} samples from {sum(data) * records} stored"
    return None


def _wfdb_nan_check(x: np.ndarray, start: int, files: dict[str, Path]) -> str | None:
    """A NaN sample of a WFDB read is allowed only where the file stores the format's invalid-sample
    code: checked on wfdb's own *digital* read of the same window (the reader decodes the signal
    file itself), so a NaN made by a scale factor, an overflow or a decoding error is caught."""
    import wfdb
    from wfdb.io._signal import _digi_nan

    hea = next((p for p in files.values() if p.suffix == ".hea"), None)
    if hea is None:
        return "NaN samples but no WFDB header among the case files"
    base = str(hea.with_suffix(""))
    header = wfdb.rdheader(base)
    if isinstance(header, wfdb.MultiRecord):
        return None  # segment gaps are NaN too; the seeds are single-segment records
    rec = wfdb.rdrecord(base, sampfrom=int(start), sampto=int(start + x.shape[1]), physical=False,
                        return_res=32)
    codes = np.asarray(_digi_nan(list(header.fmt)), np.int64)
    invalid = rec.d_signal.T.astype(np.int64) == codes[:, None]
    if invalid.shape != x.shape or not np.array_equal(np.isnan(x), invalid):
        wrong = int((np.isnan(x) != invalid).sum()) if invalid.shape == x.shape else -1
        return (f"{int(np.isnan(x).sum())} NaN samples in read({start}, {start + x.shape[1]}) where the file stores "
                f"{int(invalid.sum())} invalid-sample codes ({wrong} positions differ)")
    return None


def _check_signal(sig, family: str, files: dict[str, Path]) -> tuple[str | None, str]:
    n, nch = int(sig.n_samples), len(sig.channels)
    if not (math.isfinite(sig.sfreq) and sig.sfreq > 0):
        return f"sampling rate {sig.sfreq}", ""
    if n < 1 or nch < 1 or len(sig.units) != nch:
        return f"{nch} channels x {n} samples, {len(sig.units)} units", ""
    total = sum(p.stat().st_size for p in files.values())
    if family in ("edf", "bdf"):
        problem = _edf_size_check(n, nch, files)
        if problem:
            return problem, ""
    elif n * nch > _SAMPLES_PER_BYTE * total:
        return f"{nch} x {n} samples from {total} bytes", ""
    k = min(n, 1000)
    nan_ok = family == "wfdb" and "NaN" in str(sig.metadata.get("invalid_samples", ""))
    note = ""
    for start in (0, (n - k) // 2, n - k):
        x = sig.read(start, start + k)
        if x.shape != (nch, k):
            return f"read({start}, {start + k}) gave {x.shape}, expected {(nch, k)}", ""
        if not np.isfinite(x).all():
            if nan_ok and not np.isinf(x).any():
                problem = _wfdb_nan_check(x, start, files)
                if problem:
                    return problem, ""
                note = "NaN samples (documented: WFDB invalid samples, each one checked against the stored code)"
            else:
                bad = int(x.size - np.isfinite(x).sum())
                return f"{bad} non-finite samples in read({start}, {start + k})", ""
    for a in sig.annotations[:5000]:
        if not (math.isfinite(a.onset) and math.isfinite(a.duration)):
            return f"annotation at a non-finite time {a.onset}/{a.duration}", ""
    return None, note


def access_and_check(data, family: str, files: dict[str, Path]) -> tuple[str | None, str]:
    """Read real data from *data* (Image or Signal) and return ``(problem, note)``."""
    from engine.data import Image

    if isinstance(data, Image):
        return _check_image(data, family, files), ""
    return _check_signal(data, family, files)
