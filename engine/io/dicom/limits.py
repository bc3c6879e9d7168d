"""Sanity limits on DICOM header fields, checked before any pixel data is touched.

Every limit is a named constant defined here once. A value outside its range raises
:class:`~engine.errors.CorruptFileError` naming the file and the field.
"""
from __future__ import annotations

import math
import os

from engine.errors import CorruptFileError

__all__ = ["MAX_FRAMES", "MAX_PIXELS", "MAX_ROWS_COLS", "check_image_header", "check_positive",
           "check_rescale"]

#: Largest Rows or Columns accepted (DICOM stores them as 16-bit unsigned).
MAX_ROWS_COLS = 65535
#: Largest NumberOfFrames accepted in one instance, whatever the encoding.
MAX_FRAMES = 100_000
#: Largest number of pixels (frames x rows x cols x samples) one instance may decode to.
MAX_PIXELS = 4 * 1024 ** 3
#: BitsAllocated values that the readers decode.
_BITS = (1, 8, 16, 32, 64)
#: Smallest bytes a compressed frame can take in an encapsulated data set (its item tag + length).
_MIN_FRAGMENT_BYTES = 8


def _bad(path: str, reason: str) -> CorruptFileError:
    return CorruptFileError(path, f"{os.path.basename(path)}: {reason}")


def check_image_header(path: str, ds, n_frames: int, rows: int, cols: int, compressed: bool) -> None:
    """Refuse header dimensions the file cannot hold, before pixel access.

    Uncompressed data must fit in the file (frames x rows x cols x samples x bytes <= file
    size); compressed data is bound by :data:`MAX_PIXELS` and by one fragment per frame.
    """
    try:
        bits = int(ds.get("BitsAllocated", 16) or 16)
        spp = int(ds.get("SamplesPerPixel", 1) or 1)
    except (TypeError, ValueError):
        raise _bad(path, "BitsAllocated or SamplesPerPixel is not a number") from None
    if not 1 <= rows <= MAX_ROWS_COLS or not 1 <= cols <= MAX_ROWS_COLS:
        raise _bad(path, f"Rows x Columns {rows} x {cols} is outside 1..{MAX_ROWS_COLS}")
    if bits not in _BITS:
        raise _bad(path, f"BitsAllocated {bits} is not one of {_BITS}")
    if spp not in (1, 3, 4):
        raise _bad(path, f"SamplesPerPixel {spp} is not 1, 3 or 4")
    if not 1 <= n_frames <= MAX_FRAMES:
        raise _bad(path, f"NumberOfFrames {n_frames} is outside 1..{MAX_FRAMES}")
    pixels = n_frames * rows * cols * spp
    if pixels > MAX_PIXELS:
        raise _bad(path, f"{n_frames} frames of {rows} x {cols} x {spp} is more than "
                         f"{MAX_PIXELS} pixels")
    size = os.path.getsize(path)
    need = n_frames * _MIN_FRAGMENT_BYTES if compressed else (pixels * bits + 7) // 8
    if need > size:
        raise _bad(path, f"the file is truncated or its header is wrong: NumberOfFrames {n_frames} x Rows {rows} x Columns {cols} x "
                         f"{spp} samples x {bits} bits needs {need} bytes but the file has {size}")


def check_rescale(path: str, slope: float, intercept: float, field: str = "RescaleSlope") -> None:
    """Refuse a rescale that is not finite, a zero slope, or one that overflows float32."""
    if not (math.isfinite(slope) and math.isfinite(intercept)):
        raise _bad(path, f"{field}/RescaleIntercept {slope}/{intercept} is not finite")
    if slope == 0:
        raise _bad(path, f"{field} is 0")
    # stored values up to 2**32 must stay finite in float32 (HU are returned as float32)
    if abs(slope) * 2.0 ** 32 + abs(intercept) > 3.0e38:
        raise _bad(path, f"{field} {slope} / RescaleIntercept {intercept} overflows the value range")


def check_positive(path: str, field: str, values) -> None:
    """Refuse a spacing (PixelSpacing, SliceThickness, ...) that is present but not finite and > 0."""
    if values is None:
        return
    for v in (values if isinstance(values, (tuple, list)) else (values,)):
        if not (math.isfinite(v) and v > 0):
            raise _bad(path, f"{field} {v} is not a finite length > 0 mm")
