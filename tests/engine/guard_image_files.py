"""Generators of damaged PNG/JPEG/TIFF files for the guard tests (issue 20), from a shared real PNG."""
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

#: The shared data folder (../shared/data beside the repository, or LATENT_SHARED_DATA) for every guard test.
DATA = Path(os.environ.get("LATENT_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
SRC = str(DATA / "histo/crchisto/img1/img1.png")


def png_tall(out):
    b = bytearray(Path(SRC).read_bytes())
    assert b[12:16] == b"IHDR"
    b[20:24] = struct.pack(">I", 65535)
    b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])) & 0xFFFFFFFF)
    Path(out).write_bytes(bytes(b))

def jpeg_huge(out):
    buf = io.BytesIO()
    Image.open(SRC).convert("RGB").save(buf, "JPEG", quality=90)
    b = bytearray(buf.getvalue())
    i = b.index(b"\xff\xc0")
    b[i + 5:i + 9] = struct.pack(">HH", 23000, 23000)
    Path(out).write_bytes(bytes(b))

def tiff_tag(out, tag, value):
    arr = np.asarray(Image.open(SRC).convert("RGB"))
    tifffile.imwrite(out, arr, tile=(64, 64), photometric="rgb", metadata=None)
    b = bytearray(Path(out).read_bytes())
    if value == "size":
        value = len(b)
    assert b[:4] == b"II*\x00"
    ifd = struct.unpack("<I", b[4:8])[0]
    n = struct.unpack("<H", b[ifd:ifd + 2])[0]
    for k in range(n):
        e = ifd + 2 + 12 * k
        if struct.unpack("<H", b[e:e + 2])[0] == tag:
            b[e + 2:e + 12] = struct.pack("<HII", 4, 1, value)
            break
    else:
        raise AssertionError("tag not found")
    Path(out).write_bytes(bytes(b))
