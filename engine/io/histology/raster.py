"""PNG and JPEG H&E images, read whole with Pillow (they have no tiles to read lazily).

A PNG is checked chunk by chunk first (CRC of every chunk, an IEND at the end), so a
truncated file or a flipped byte is reported as damage instead of being decoded into
wrong pixels. Images larger than :data:`engine.data.MAX_EAGER_PIXELS` are refused
before any pixel is decoded (decompression-bomb guard).
"""
from __future__ import annotations

import os
import struct
import threading
import warnings
import zlib

import numpy as np

from engine.data import MAX_EAGER_PIXELS
from engine.errors import CorruptFileError, ReadError, UnsupportedFormatError
from engine.io.histology.common import to_rgb8
from engine.io.histology.jpeg_scan import check_jpeg_rows, tail_is_grey
from engine.io.histology.limits import PngRowCounter, check_jpeg_size
from engine.io.histology.mpp import mpp_from_resolution

__all__ = ["read_raster", "scan_png"]

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_PIL_LOCK = threading.Lock()
_CHUNK_READ = 1 << 20


def scan_png(path: str) -> dict:
    """Walk a PNG's chunks, verifying each CRC; return IHDR fields and any pHYs.

    Raises
    ------
    CorruptFileError
        Truncated file, bad CRC, missing IHDR/IDAT/IEND.
    """
    info: dict = {}
    seen_idat = False
    rows = None
    with open(path, "rb") as fh:
        if fh.read(8) != _PNG_SIG:
            raise CorruptFileError(path, "not a PNG file (bad signature)")
        while True:
            head = fh.read(8)
            if len(head) < 8:
                raise CorruptFileError(path, "the PNG is truncated (no IEND chunk at the end)")
            length, ctype = struct.unpack(">I4s", head)
            name = ctype.decode("latin-1")
            if length > 0x7FFFFFFF or not ctype.isalpha():
                raise CorruptFileError(path, f"damaged PNG chunk header ({name!r}, length {length})")
            crc = zlib.crc32(ctype)
            keep = ctype in (b"IHDR", b"pHYs")
            body = b""
            left = length
            while left:
                piece = fh.read(min(left, _CHUNK_READ))
                if not piece:
                    raise CorruptFileError(path, f"the PNG is truncated inside its {name} chunk")
                crc = zlib.crc32(piece, crc)
                if ctype == b"IDAT" and rows is not None:
                    rows.feed(piece)
                if keep:
                    body += piece
                left -= len(piece)
            tail = fh.read(4)
            if len(tail) < 4:
                raise CorruptFileError(path, f"the PNG is truncated after its {name} chunk")
            if struct.unpack(">I", tail)[0] != crc & 0xFFFFFFFF:
                raise CorruptFileError(path, f"the PNG is damaged: checksum mismatch in its {name} chunk")
            if ctype == b"IHDR":
                if length != 13:
                    raise CorruptFileError(path, "damaged PNG header (IHDR)")
                w, h, depth, ctype_ = struct.unpack(">IIBB", body[:10])
                info.update(width=w, height=h, bit_depth=depth, color_type=ctype_)
                if w and h:
                    rows = PngRowCounter(path, w, h, depth, ctype_, body[12])
            elif ctype == b"pHYs" and length == 9:
                ppx, ppy, unit = struct.unpack(">IIB", body)
                info["phys"] = (ppx, ppy, unit)
            elif ctype == b"IDAT":
                seen_idat = True
            elif ctype == b"IEND":
                break
            if "width" not in info:
                raise CorruptFileError(path, "damaged PNG: the first chunk is not IHDR")
    if not seen_idat:
        raise CorruptFileError(path, "the PNG has no image data (IDAT)")
    if not info.get("width") or not info.get("height"):
        raise CorruptFileError(path, "the PNG header says the image is 0 pixels wide or high")
    rows.check()
    return info


def _refuse_if_huge(path: str, rows: int, cols: int, kind: str) -> None:
    if rows * cols > MAX_EAGER_PIXELS:
        raise ReadError(path, f"the {kind} is {cols}x{rows} pixels ({rows * cols / 1e6:.0f} MP), more "
                              f"than the {MAX_EAGER_PIXELS / 1e6:.0f} MP a {kind} may have (it must be "
                              "decoded whole); convert it to a tiled pyramidal TIFF")


def _open_pil(path: str):
    from PIL import Image as PILImage

    with _PIL_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
        old = PILImage.MAX_IMAGE_PIXELS
        # our own guard (MAX_EAGER_PIXELS) replaces Pillow's smaller default
        if old is not None and old < MAX_EAGER_PIXELS:
            PILImage.MAX_IMAGE_PIXELS = MAX_EAGER_PIXELS
        try:
            return PILImage.open(path)
        except PILImage.DecompressionBombError as exc:
            raise ReadError(path, f"the image is too large to decode whole ({exc})") from None
        finally:
            PILImage.MAX_IMAGE_PIXELS = old


def _pil_to_rgb8(im, path: str, meta: dict) -> np.ndarray:
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in ("RGBA", "RGBa", "LA", "La"):
        arr = np.asarray(im)
        meta["alpha"] = ("opaque alpha channel dropped" if (arr[..., -1] == 255).all()
                         else "alpha composited onto white")
        return to_rgb8(arr, path, photometric="rgb" if mode[:3] == "RGB" else "minisblack",
                       alpha="associated" if mode in ("RGBa", "La") else "unassociated")
    if mode == "L":
        return to_rgb8(np.asarray(im), path, photometric="minisblack")
    if mode == "1":
        return to_rgb8(np.asarray(im.convert("L")), path, photometric="minisblack")
    if mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        return _pil_to_rgb8(im.convert("RGBA" if has_alpha else "RGB"), path, meta)
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im)
        if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFF):
            raise UnsupportedFormatError(path, "32-bit integer pixels are not an H&E image")
        meta["conversion"] = "16-bit greyscale: high byte kept (v >> 8)"
        return to_rgb8(arr.astype(np.uint16), path, photometric="minisblack")
    if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        meta["conversion"] = f"{mode} converted to RGB by Pillow"
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    raise UnsupportedFormatError(path, f"Pillow mode {mode!r} ({'float' if mode == 'F' else 'unusual'} "
                                       "pixels) is not an RGB or greyscale H&E image")


def _check_jpeg_tail(im, path: str, rows: int, cols: int) -> None:
    """libjpeg fills blocks its entropy data lacks with grey 128 and only warns; when the
    last 8x8 block is grey (necessary for that), count the blocks the scans really hold."""
    if im.mode in ("RGB", "L"):
        x0, y0 = ((cols - 1) // 8) * 8, ((rows - 1) // 8) * 8
        if not tail_is_grey(np.asarray(im.crop((x0, y0, cols, rows)))):
            return
    check_jpeg_rows(path)


def read_raster(path: str, kind: str) -> tuple[np.ndarray, dict, tuple | None, str | None]:
    """Decode a PNG or JPEG whole.

    Returns
    -------
    rgb : ndarray ``(rows, cols, 3)`` uint8
    metadata : dict
    mpp : ``(row, col)`` µm per pixel or None
    mpp_note : where the mpp came from, or why the file's resolution was ignored
    """
    from PIL import ImageFile, ImageOps, UnidentifiedImageError

    name = os.path.basename(path)
    meta: dict = {"format": kind.upper(), "reader": "pillow",
                  "compression": "deflate" if kind == "png" else "jpeg", "tile_size": None}
    mpp, note = None, "the file has no pixel size"
    if kind == "png":
        info = scan_png(path)
        _refuse_if_huge(path, info["height"], info["width"], "PNG")
        meta["bit_depth"] = info["bit_depth"]
        if info["bit_depth"] == 16:
            meta["conversion"] = "16-bit samples: high byte kept (v >> 8)"
        if "phys" in info:
            ppx, ppy, unit = info["phys"]
            if unit == 1:
                r, c, note = mpp_from_resolution(ppx, ppy, "metre", what="PNG pHYs")
                mpp = None if r is None else (r, c)
            else:
                note = "PNG pHYs ignored: aspect ratio only, no unit"
    try:
        im = _open_pil(path)
    except UnidentifiedImageError:
        raise CorruptFileError(path, f"{name} is not a readable {kind.upper()} image") from None
    with im:
        expected = ("PNG",) if kind == "png" else ("JPEG", "MPO")
        if im.format not in expected:
            raise UnsupportedFormatError(path, f"content is {im.format}, not {kind.upper()}")
        cols, rows = im.size
        if rows == 0 or cols == 0:
            raise CorruptFileError(path, "the image is 0 pixels wide or high")
        _refuse_if_huge(path, rows, cols, kind.upper())
        if kind == "jpeg":
            check_jpeg_size(path, rows, cols)
        if im.info.get("Software"):
            meta["software"] = str(im.info["Software"])[:200]
        if kind == "jpeg":
            unit = {1: "inch", 2: "cm"}.get(im.info.get("jfif_unit"))
            density = im.info.get("jfif_density")
            if unit and density:
                r, c, note = mpp_from_resolution(density[0], density[1], unit, what="JPEG JFIF density")
                mpp = None if r is None else (r, c)
            orientation = im.getexif().get(0x0112, 1)
            if orientation not in (1, None):
                meta["exif_orientation_applied"] = int(orientation)
        try:
            old_truncated, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
            try:  # a truncated file is an error, never zero-padded
                im.load()
            finally:
                ImageFile.LOAD_TRUNCATED_IMAGES = old_truncated
            if kind == "jpeg":
                _check_jpeg_tail(im, path, rows, cols)
            if kind == "jpeg" and meta.get("exif_orientation_applied"):
                im = ImageOps.exif_transpose(im)
            rgb = _pil_to_rgb8(im, path, meta)
        except (OSError, SyntaxError, ValueError, zlib.error) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorruptFileError(path, f"the {kind.upper()} is truncated or damaged ({msg})") from None
    return rgb, meta, mpp, note
