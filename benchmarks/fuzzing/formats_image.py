"""Format-aware mutations of image files: DICOM fields (via pydicom on a copy), PNG chunks with a
valid CRC, JPEG marker segments, TIFF IFD entries. Each returns ``(bytes, text)`` or ``None``."""
from __future__ import annotations

import io
import struct
import zlib

__all__ = ["dicom_field", "png_field", "jpeg_field", "tiff_field", "png_fix_crcs", "svs_field"]

_ABSURD_DS = ("0", "-1", "1e308", "-1e308", "nan", "inf", "-inf", "1e-308", "1e30", "1e38", "abc", "")
_DICOM_FIELDS = {
    "Rows": (0, 1, 2, 7, 4096, 65535, "+1", "/2"),
    "Columns": (0, 1, 3, 4096, 65535, "+1", "/2"),
    "NumberOfFrames": ("0", "-1", "2", "3", "1000", "99999", "1000000000", "abc"),
    "BitsAllocated": (0, 1, 7, 8, 12, 24, 32, 64, 65535),
    "BitsStored": (0, 1, 8, 17, 33, 255),
    "HighBit": (0, 7, 31, 255),
    "SamplesPerPixel": (0, 2, 3, 4, 255),
    "PixelRepresentation": (0, 1, 2),
    "PlanarConfiguration": (0, 1, 7),
    "PhotometricInterpretation": ("RGB", "PALETTE COLOR", "YBR_FULL_422", "MONOCHROME1", "", "XYZ"),
    "RescaleSlope": _ABSURD_DS,
    "RescaleIntercept": _ABSURD_DS,
    "PixelSpacing": (["0", "0"], ["-1", "-1"], ["nan", "1"], ["1e308", "1e308"], ["1"], ["inf", "0.5"],
                     ["1e-300", "1e-300"], ["abc", "1"]),
    "SliceThickness": ("0", "-1", "nan", "1e308", "abc"),
    "SpacingBetweenSlices": ("0", "-5", "nan", "1e308"),
    "ImagePositionPatient": (["nan", "0", "0"], ["1e308", "1e308", "1e308"], ["0", "0"], ["inf", "0", "0"],
                             ["0", "0", "0"]),
    "ImageOrientationPatient": (["0"] * 6, ["nan"] * 6, ["1", "0", "0", "1", "0", "0"], ["1", "0", "0", "0", "1"],
                                ["1e308", "0", "0", "0", "1e308", "0"]),
    "WindowCenter": ("nan", "0", "1e308"),
    "WindowWidth": ("nan", "0", "-1", "1e308"),
    "Modality": ("MR", "", "SEG", "OT"),
    "InstanceNumber": ("1", "-1", "abc", "99999999999"),
    "SeriesInstanceUID": ("1.2.3", "", "1.2.3.4.5.6.7.8.9"),
    "SOPClassUID": ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.2", "1.2.3", ""),
    "TransferSyntaxUID": ("1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.2",
                          "1.2.840.10008.1.2", "1.2.840.10008.1.2.1.99", "1.2.3.4", "1.2.840.10008.1.2.4.90"),
    "PixelData": ("half", "empty", "plus1", "double"),
}


def _value(old, new):
    if isinstance(new, str) and new[:1] in "+/" and isinstance(old, int):
        return old + 1 if new == "+1" else max(old // 2, 0)
    return new


def dicom_field(data: bytes, rng) -> tuple[bytes, str] | None:
    import pydicom
    from pydicom.config import settings

    settings.reading_validation_mode = settings.writing_validation_mode = 0  # IGNORE
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception:
        return None
    kw = rng.choice(sorted(_DICOM_FIELDS))
    new = rng.choice(_DICOM_FIELDS[kw])
    try:
        if kw == "TransferSyntaxUID":
            ds.file_meta.TransferSyntaxUID = new
        elif kw == "PixelData":
            px = ds.PixelData
            ds.PixelData = {"half": px[:len(px) // 2 & ~1], "empty": b"", "plus1": px + b"\x00\x00",
                            "double": px + px}[new]
        else:
            elems = [e for e in ds.iterall() if e.keyword == kw]
            if elems:
                e = rng.choice(elems)
                e.value = _value(e.value, new)
            else:
                setattr(ds, kw, _value(0, new))
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=False)
    except Exception as exc:  # pydicom refuses to write some values: say so, and fall back
        return None if rng.random() < 0.5 else (data, f"dicom {kw}={new!r} not writable ({type(exc).__name__})")
    return buf.getvalue(), f"dicom {kw} = {new!r}"


def _png_chunks(b: bytes):
    out, i = [], 8
    while i + 8 <= len(b):
        n = struct.unpack(">I", b[i:i + 4])[0]
        out.append((i, n, b[i + 4:i + 8]))
        i += 12 + n
    return out


def _fix_crc(b: bytearray, at: int) -> None:
    n = struct.unpack(">I", b[at:at + 4])[0]
    b[at + 8 + n:at + 12 + n] = struct.pack(">I", zlib.crc32(bytes(b[at + 4:at + 8 + n])) & 0xFFFFFFFF)


def png_field(data: bytes, rng) -> tuple[bytes, str] | None:
    b = bytearray(data)
    chunks = _png_chunks(b)
    if not chunks or chunks[0][2] != b"IHDR":
        return None
    kind = rng.choice(("ihdr", "ihdr", "ihdr", "length", "idat", "drop", "crc"))
    at = chunks[0][0]
    if kind == "ihdr":
        w, h = struct.unpack(">II", b[at + 8:at + 16])
        field = rng.choice(("width", "height", "depth", "color", "compression", "filter", "interlace"))
        if field in ("width", "height"):
            old = w if field == "width" else h
            v = rng.choice((0, 1, 2, 65535, 2**31 - 1, 2**32 - 1, old * 2, old + 1, old - 1, 100000))
            b[at + (8 if field == "width" else 12):at + (12 if field == "width" else 16)] = struct.pack(">I", v)
        else:
            off = {"depth": 16, "color": 17, "compression": 18, "filter": 19, "interlace": 20}[field]
            pools = {"depth": (0, 1, 2, 3, 4, 16, 255), "color": (0, 1, 3, 4, 6, 7, 255)}
            v = rng.choice(pools.get(field, (0, 1, 2, 255)))
            b[at + off] = v
        _fix_crc(b, at)
        return bytes(b), f"png IHDR {field} = {v} (CRC fixed)"
    c_at, n, typ = rng.choice(chunks)
    if kind == "length":
        v = rng.choice((0, 1, n + 1, max(n - 1, 0), 2**31 - 1, 2**32 - 1, len(b)))
        b[c_at:c_at + 4] = struct.pack(">I", v)
        return bytes(b), f"png {typ.decode('latin-1')} @{c_at} length = {v}"
    if kind == "idat":
        idats = [c for c in chunks if c[2] == b"IDAT"]
        if not idats:
            return None
        c_at, n, _ = rng.choice(idats)
        k = rng.randrange(max(n, 1))
        b[c_at + 8 + k] ^= 1 << rng.randrange(8)
        _fix_crc(b, c_at)
        return bytes(b), f"png IDAT @{c_at} byte {k} flipped (CRC fixed)"
    if kind == "drop" and typ != b"IHDR":
        return bytes(b[:c_at] + b[c_at + 12 + n:]), f"png {typ.decode('latin-1')} @{c_at} removed"
    b[c_at + 8 + n:c_at + 12 + n] = b"\x00\x00\x00\x00"
    return bytes(b), f"png {typ.decode('latin-1')} @{c_at} CRC zeroed"


def _jpeg_segments(b: bytes):
    out, i = [], 2
    while i + 4 <= len(b) and b[i] == 0xFF:
        m = b[i + 1]
        n = struct.unpack(">H", b[i + 2:i + 4])[0]
        out.append((i, m, n))
        if m == 0xDA:
            break
        i += 2 + n
    return out


def jpeg_field(data: bytes, rng) -> tuple[bytes, str] | None:
    b = bytearray(data)
    segs = _jpeg_segments(b)
    sof = [s for s in segs if s[1] in (0xC0, 0xC1, 0xC2)]
    if not sof:
        return None
    i, _, _ = sof[0]
    kind = rng.choice(("dims", "dims", "dims", "precision", "ncomp", "sampling", "table", "length"))
    if kind == "dims":
        field = rng.choice(("height", "width"))
        off = i + (5 if field == "height" else 7)
        old = struct.unpack(">H", b[off:off + 2])[0]
        v = rng.choice((0, 1, 65535, 23000, 40000, old * 2 & 0xFFFF, old + 8, max(old - 8, 0)))
        b[off:off + 2] = struct.pack(">H", v)
        return bytes(b), f"jpeg SOF {field} = {v}"
    if kind == "precision":
        v = rng.choice((0, 12, 16, 255))
        b[i + 4] = v
        return bytes(b), f"jpeg SOF precision = {v}"
    if kind == "ncomp":
        v = rng.choice((0, 1, 2, 4, 255))
        b[i + 9] = v
        return bytes(b), f"jpeg SOF components = {v}"
    if kind in ("sampling", "table"):
        c = rng.randrange(b[i + 9] or 1)
        off = i + 10 + 3 * c + (1 if kind == "sampling" else 2)
        v = rng.choice((0x00, 0x44, 0xFF, 0x11, 0x22, 0x41) if kind == "sampling" else (3, 4, 255))
        b[off] = v
        return bytes(b), f"jpeg SOF component {c} {kind} = {v:#x}"
    at, m, n = rng.choice(segs)
    v = rng.choice((0, 1, 2, 0xFFFF, n + 1, max(n - 1, 0), n + 100))
    b[at + 2:at + 4] = struct.pack(">H", v)
    return bytes(b), f"jpeg marker {m:#x} @{at} length = {v}"


_TIFF_SCALAR = {256: "ImageWidth", 257: "ImageLength", 258: "BitsPerSample", 259: "Compression",
                262: "Photometric", 277: "SamplesPerPixel", 278: "RowsPerStrip", 284: "PlanarConfig",
                317: "Predictor", 322: "TileWidth", 323: "TileLength", 339: "SampleFormat"}
_TIFF_ARRAYS = {273: "StripOffsets", 279: "StripByteCounts", 324: "TileOffsets", 325: "TileByteCounts"}
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 16: 8}


def _tiff_entries(b: bytes):
    ifd = struct.unpack("<I", b[4:8])[0]
    n = struct.unpack("<H", b[ifd:ifd + 2])[0]
    out = []
    for k in range(n):
        e = ifd + 2 + 12 * k
        tag, typ, count, value = struct.unpack("<HHII", b[e:e + 12])
        out.append((e, tag, typ, count, value))
    return ifd, n, out


def tiff_field(data: bytes, rng) -> tuple[bytes, str] | None:
    b = bytearray(data)
    if b[:4] != b"II*\x00":
        return None
    try:
        ifd, n, entries = _tiff_entries(b)
    except struct.error:
        return None
    size = len(b)
    kind = rng.choice(("scalar", "scalar", "scalar", "array", "array", "type", "count", "ifd"))
    if kind == "scalar":
        cands = [e for e in entries if e[1] in _TIFF_SCALAR]
        e, tag, typ, count, value = rng.choice(cands)
        old = value & 0xFFFF if typ == 3 else value
        v = rng.choice((0, 1, 2, 7, 16, 2**32 - 1, 2**31, 65535, size, old * 2, old + 1, 5, 7, 50000, 34712))
        b[e + 2:e + 12] = struct.pack("<HII", 4, 1, v)
        return bytes(b), f"tiff {_TIFF_SCALAR[tag]} = {v}"
    if kind == "array":
        cands = [e for e in entries if e[1] in _TIFF_ARRAYS]
        if not cands:
            return None
        e, tag, typ, count, value = rng.choice(cands)
        width = _TYPE_SIZE.get(typ, 4)
        fmt = "<H" if width == 2 else "<I"
        k = rng.randrange(count)
        at = e + 8 if count * width <= 4 else value
        at += k * width
        old = struct.unpack(fmt, b[at:at + width])[0]
        v = rng.choice((0, size, size - 10, 2**32 - 1, old + 1, old * 2, old + 4096, max(old - 1, 0)))
        b[at:at + width] = struct.pack(fmt, v & (0xFFFF if width == 2 else 0xFFFFFFFF))
        return bytes(b), f"tiff {_TIFF_ARRAYS[tag]}[{k}] = {v}"
    e, tag, typ, count, value = rng.choice(entries)
    if kind == "type":
        v = rng.choice((0, 1, 2, 3, 5, 7, 12, 13, 99))
        b[e + 2:e + 4] = struct.pack("<H", v)
        return bytes(b), f"tiff tag {tag} type = {v}"
    if kind == "count":
        v = rng.choice((0, 2, count + 1, 2**31, 2**32 - 1, max(count - 1, 0)))
        b[e + 4:e + 8] = struct.pack("<I", v)
        return bytes(b), f"tiff tag {tag} count = {v}"
    what = rng.choice(("first", "entries", "next"))
    if what == "first":
        v = rng.choice((0, 1, size, size - 2, 2**32 - 1))
        b[4:8] = struct.pack("<I", v)
    elif what == "entries":
        v = rng.choice((0, 1, 65535, n + 1))
        b[ifd:ifd + 2] = struct.pack("<H", v)
    else:
        at = ifd + 2 + 12 * n
        v = rng.choice((ifd, 8, size, 2**32 - 1))
        b[at:at + 4] = struct.pack("<I", v)
    return bytes(b), f"tiff IFD {what} = {v}"


def png_fix_crcs(data: bytes, rng) -> tuple[bytes, str] | None:
    """Half the time, recompute every chunk CRC so that byte damage reaches the decoder."""
    if rng.random() < 0.5 or data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    b = bytearray(data)
    fixed = 0
    for at, n, _ in _png_chunks(b):
        if at + 12 + n <= len(b):
            _fix_crc(b, at)
            fixed += 1
    return bytes(b), f"png {fixed} CRCs recomputed"


_APERIO_FIELDS = (b"MPP = 0.4990", b"AppMag = 20", b"500x500 [0,0 500x500] (128x128)")
_APERIO_VALUES = {
    b"MPP = 0.4990": (b"MPP = 0", b"MPP = -1", b"MPP = nan", b"MPP = inf", b"MPP = 1e308", b"MPP = abc",
                      b"MPP = 1e-300"),
    b"AppMag = 20": (b"AppMag = 0", b"AppMag = -40", b"AppMag = nan", b"AppMag = 1e308", b"AppMag = x"),
    b"500x500 [0,0 500x500] (128x128)": (b"0x0 [0,0 0x0] (0x0)", b"99999999x99999999 [0,0 1x1] (1x1)",
                                         b"500x500 [0,0 500x500] (4294967295x1)"),
}


def svs_field(data: bytes, rng) -> tuple[bytes, str] | None:
    """An Aperio description field (in place; the tag's length changes with it) or a TIFF entry."""
    if rng.random() < 0.5:
        return tiff_field(data, rng)
    old = rng.choice(_APERIO_FIELDS)
    new = rng.choice(_APERIO_VALUES[old])
    i = data.find(old)
    if i < 0:
        return None
    # same length keeps every offset valid: pad with spaces or cut
    new = new[:len(old)].ljust(len(old))
    return data[:i] + new + data[i + len(old):], f"aperio {old.decode()!r} -> {new.decode().strip()!r}"
