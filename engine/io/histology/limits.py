"""Sanity limits on PNG / JPEG / TIFF header fields, checked before decoding.

Every limit is a named constant defined here once; a value outside its range raises
:class:`~engine.errors.CorruptFileError` naming the file.
"""
from __future__ import annotations

import os
import struct
import zlib

from engine.errors import CorruptFileError

__all__ = ["MAX_BITS_PER_SAMPLE", "MAX_JPEG_PIXELS_PER_BYTE", "MAX_SAMPLES_PER_PIXEL", "MAX_SEGMENT_BYTES",
           "MAX_TILE_SIDE", "MAX_TIFF_IFDS", "PngRowCounter", "check_jpeg_size", "check_samples",
           "check_segments", "check_tiff_directory", "check_tile_shape"]

#: Most pixels one byte of a baseline/progressive JPEG can stand for. A flat 4:2:0 image
#: costs about 3 bytes per 16x16 block (~85 px/byte); a header claiming far more than
#: this is a damaged size or a decompression bomb (e.g. 44 KB claiming 23000 x 23000).
MAX_JPEG_PIXELS_PER_BYTE = 1000
#: Largest tile width or height accepted in a tiled TIFF (real slides use 128..4096).
MAX_TILE_SIDE = 1 << 16
#: Most samples per pixel of a TIFF level (RGB + alpha + a few extra samples; real files use 1..4).
MAX_SAMPLES_PER_PIXEL = 8
#: Most bits per sample of a TIFF level (64-bit float is the widest TIFF sample).
MAX_BITS_PER_SAMPLE = 64
#: Most bytes one decoded TIFF tile or strip may take (a 65536 x 4096 RGBA strip of 8 bits is 1 GB).
MAX_SEGMENT_BYTES = 1 << 30
#: Most image file directories (pages) walked in one TIFF.
MAX_TIFF_IFDS = 100_000
#: Bytes of one value of each TIFF field type (1..18); other types are unknown.
_TIFF_TYPE_BYTES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
                    16: 8, 17: 8, 18: 8}
#: StripOffsets/StripByteCounts and TileOffsets/TileByteCounts.
_SEGMENT_TAGS = (273, 279, 324, 325)
_SEGMENT_DTYPES = {3: "u2", 4: "u4", 16: "u8"}
_TILE_WIDTH, _TILE_LENGTH = 322, 323
#: Decompress IDAT in pieces of at most this many bytes (no bomb is ever held whole).
_PIECE = 1 << 22
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _png_raw_bytes(width: int, height: int, depth: int, color: int, interlace: int) -> int:
    bits = _PNG_CHANNELS.get(color, 4) * depth

    def size(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlace:
        return size(width, height)
    return sum(size((width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy)
               for x0, y0, dx, dy in _ADAM7)


class PngRowCounter:
    """Counts the decompressed IDAT bytes of a PNG against what its IHDR promises.

    Feed every IDAT piece to :meth:`feed`, then call :meth:`check`: fewer bytes than the
    header's rows need is a truncated image (Pillow would pad it with zero rows).
    """

    def __init__(self, path: str, width: int, height: int, depth: int, color: int, interlace: int):
        self.path = path
        self.expected = _png_raw_bytes(width, height, depth, color, interlace)
        self.got = 0
        self._z = zlib.decompressobj()
        self._height = height

    def feed(self, data: bytes) -> None:
        if self.got >= self.expected or self._z.eof:
            return
        try:
            out = self._z.decompress(data, _PIECE)
            self.got += len(out)
            while self._z.unconsumed_tail and self.got < self.expected:
                out = self._z.decompress(self._z.unconsumed_tail, _PIECE)
                self.got += len(out)
        except zlib.error as exc:
            raise CorruptFileError(self.path, f"{os.path.basename(self.path)}: the PNG image data is "
                                              f"damaged ({exc})") from None

    def check(self) -> None:
        if self.got < self.expected:
            raise CorruptFileError(
                self.path, f"{os.path.basename(self.path)}: the PNG is truncated: its header says "
                           f"{self._height} rows ({self.expected} bytes of image data) but the data "
                           f"holds {self.got} bytes")


def check_jpeg_size(path: str, rows: int, cols: int) -> None:
    """Refuse a JPEG whose header claims more pixels than its bytes can encode."""
    size = os.path.getsize(path)
    if rows * cols > MAX_JPEG_PIXELS_PER_BYTE * max(size, 1):
        raise CorruptFileError(path, f"{os.path.basename(path)}: the JPEG header claims {cols} x {rows} "
                                     f"pixels but the file has only {size} bytes (a damaged header or "
                                     "a decompression bomb)")


def check_tile_shape(path: str, tile_rows: int, tile_cols: int, level: int = 0) -> None:
    """Refuse TIFF tiles of absurd size (e.g. width 2**32-1 or height = the file size)."""
    for what, n in (("height", tile_rows), ("width", tile_cols)):
        if not 1 <= n <= MAX_TILE_SIDE:
            raise CorruptFileError(path, f"{os.path.basename(path)}: the TIFF tile {what} {n} of level "
                                         f"{level} is outside 1..{MAX_TILE_SIDE}")


def check_samples(path: str, spp: int, bits: int, seg_rows: int, seg_cols: int, level: int = 0) -> None:
    """Refuse absurd SamplesPerPixel / BitsPerSample, and tiles/strips that decode to more than
    :data:`MAX_SEGMENT_BYTES`, before any tile is decoded (e.g. SamplesPerPixel 2**31)."""
    name = os.path.basename(path)
    if not 1 <= spp <= MAX_SAMPLES_PER_PIXEL:
        raise CorruptFileError(path, f"{name}: the TIFF SamplesPerPixel {spp} of level {level} is outside "
                                     f"1..{MAX_SAMPLES_PER_PIXEL}")
    if not 1 <= bits <= MAX_BITS_PER_SAMPLE:
        raise CorruptFileError(path, f"{name}: the TIFF BitsPerSample {bits} of level {level} is outside "
                                     f"1..{MAX_BITS_PER_SAMPLE}")
    need = seg_rows * seg_cols * spp * ((bits + 7) // 8)
    if need > MAX_SEGMENT_BYTES:
        raise CorruptFileError(path, f"{name}: a TIFF tile/strip of level {level} ({seg_rows} x {seg_cols} x "
                                     f"{spp} samples of {bits} bits) would decode to {need} bytes, more than "
                                     f"{MAX_SEGMENT_BYTES}")


def check_segments(path: str, offsets, counts, size: int, need, level: int = 0) -> None:
    """Every tile/strip lies inside the file, and an uncompressed one holds the bytes its rows need.

    *offsets*/*counts* are the raw tag values (tifffile quietly enlarges short byte counts of
    uncompressed data, which reads neighbouring bytes as pixels). ``need(i)`` is the bytes
    segment *i* needs uncompressed, or None for compressed data. Offset 0 with count 0 is a
    sparse (empty) tile and allowed; one of them 0 without the other is damage.
    """
    name = os.path.basename(path)
    for i, (o, c) in enumerate(zip(offsets, counts)):
        if not o and not c:
            continue
        if not o or not c:
            raise CorruptFileError(path, f"{name}: TIFF tile/strip {i} of level {level} has offset {o} and "
                                         f"{c} bytes: the page table is damaged")
        if o + c > size:
            raise CorruptFileError(path, f"{name}: TIFF tile/strip {i} of level {level} lies at {o} + {c} bytes, "
                                         f"beyond the end of the file ({size} bytes)")
        if need is not None and c < need(i):
            raise CorruptFileError(path, f"{name}: uncompressed TIFF tile/strip {i} of level {level} holds {c} "
                                         f"bytes, its pixels need {need(i)}")


def check_tiff_directory(path: str) -> None:
    """Walk every TIFF directory before libtiff (OpenSlide) sees the file.

    libtiff allocates a tag's ``count x type size`` bytes before reading them; GLib aborts
    the whole process when such an allocation fails (a 4 GB count from one flipped byte).
    So every entry whose values lie outside the entry must lie inside the file, and the
    directory chain must stay inside the file without a loop. NDPI (non-standard 64-bit
    offsets in a classic TIFF) is not walked.
    """
    name = os.path.basename(path)
    if path.lower().endswith(".ndpi"):
        return
    size = os.path.getsize(path)

    def bad(reason: str) -> CorruptFileError:
        return CorruptFileError(path, f"{name}: the TIFF directory is damaged: {reason}")

    with open(path, "rb") as fh:
        head = fh.read(16)
        if head[:2] not in (b"II", b"MM"):
            return
        e = "<" if head[:2] == b"II" else ">"
        version = struct.unpack(e + "H", head[2:4])[0]
        if version == 42:
            big, offset = False, struct.unpack(e + "I", head[4:8])[0]
        elif version == 43 and len(head) >= 16:
            big, offset = True, struct.unpack(e + "Q", head[8:16])[0]
        else:
            return
        count_fmt, entry, inline = (e + "Q", 20, 8) if big else (e + "H", 12, 4)
        seen = set()
        while offset:
            if offset in seen:
                raise bad(f"the directory chain loops back to offset {offset}")
            if len(seen) >= MAX_TIFF_IFDS:
                raise bad(f"more than {MAX_TIFF_IFDS} directories")
            seen.add(offset)
            width = 8 if big else 2
            if offset + width > size:
                raise bad(f"a directory at offset {offset} lies beyond the end of the file ({size} bytes)")
            fh.seek(offset)
            n = struct.unpack(count_fmt, fh.read(width))[0]
            nxt_width = 8 if big else 4
            if offset + width + n * entry + nxt_width > size:
                raise bad(f"the directory at offset {offset} lists {n} entries, beyond the end of the file")
            raw = fh.read(n * entry + nxt_width)
            arrays, tile = {}, {}
            for k in range(n):
                ent = raw[k * entry:(k + 1) * entry]
                tag, typ = struct.unpack(e + "HH", ent[:4])
                if big:
                    count, value = struct.unpack(e + "QQ", ent[4:20])
                else:
                    count, value = struct.unpack(e + "II", ent[4:12])
                nbytes = count * _TIFF_TYPE_BYTES.get(typ, 1)
                if nbytes > inline and value + nbytes > size:
                    raise bad(f"tag {tag} claims {count} values ({nbytes} bytes) at offset {value}, beyond "
                              f"the end of the file ({size} bytes)")
                if tag in _SEGMENT_TAGS and typ in _SEGMENT_DTYPES:
                    arrays[tag] = (typ, count, value, nbytes, ent)
                if tag in (_TILE_WIDTH, _TILE_LENGTH) and count == 1 and typ in _SEGMENT_DTYPES:
                    fmt = e + {3: "H", 4: "I", 16: "Q"}[typ]  # the value sits in the entry itself
                    at = 12 if big else 8
                    tile[tag] = struct.unpack(fmt, ent[at:at + struct.calcsize(fmt)])[0]
            _check_tile_tags(tile, offset, bad)
            _check_segment_tags(fh, e, big, arrays, size, offset, bad)
            offset = struct.unpack(e + ("Q" if big else "I"), raw[n * entry:n * entry + nxt_width])[0]


def _check_tile_tags(tile: dict, ifd: int, bad) -> None:
    """TileWidth/TileLength of one directory: libtiff/OpenSlide allocate a whole RGBA tile
    (``4 x width x length`` bytes) and GLib aborts the process when that fails."""
    if not tile:
        return
    w, h = tile.get(_TILE_WIDTH, 1), tile.get(_TILE_LENGTH, 1)
    for what, v in (("width", w), ("length", h)):
        if not 1 <= v <= MAX_TILE_SIDE:
            raise bad(f"the tile {what} {v} of the directory at offset {ifd} is outside 1..{MAX_TILE_SIDE}")
    if 4 * w * h > MAX_SEGMENT_BYTES:
        raise bad(f"a {w} x {h} tile of the directory at offset {ifd} decodes to {4 * w * h} bytes, more than "
                  f"{MAX_SEGMENT_BYTES}")


def _check_segment_tags(fh, e: str, big: bool, arrays: dict, size: int, ifd: int, bad) -> None:
    """Tile/strip offsets + byte counts of one directory inside the file, and not all empty.

    libtiff (through OpenSlide) allocates a tile's byte count before reading it; a count of
    2**32 - 1 makes GLib abort the process.
    """
    import numpy as np

    def values(tag):
        typ, count, value, nbytes, ent = arrays[tag]
        dtype = np.dtype(e + _SEGMENT_DTYPES[typ])
        if nbytes <= (8 if big else 4):
            return np.frombuffer(ent[12 if big else 8:][:nbytes], dtype)
        fh.seek(value)
        return np.frombuffer(fh.read(nbytes), dtype)

    for off_tag, count_tag in ((273, 279), (324, 325)):
        if off_tag not in arrays or count_tag not in arrays:
            continue
        offs, counts = values(off_tag), values(count_tag)
        n = min(len(offs), len(counts))
        offs, counts = offs[:n].astype(np.uint64), counts[:n].astype(np.uint64)
        used = (offs != 0) | (counts != 0)
        if n and not used.any():
            raise bad(f"the directory at offset {ifd} lists {n} tiles/strips and none holds data")
        end = offs + counts
        over = np.flatnonzero(used & (end > size))
        if over.size:
            i = int(over[0])
            raise bad(f"tile/strip {i} of the directory at offset {ifd} lies at {int(offs[i])} + "
                      f"{int(counts[i])} bytes, beyond the end of the file ({size} bytes)")
