"""Pieces shared by the histology readers: pixels to RGB8, regions, the ``mpp`` option.

Every histology reader returns ``uint8`` RGB whatever the file stores. The rules,
stated once here so that PNG, TIFF and OpenSlide agree:

* greyscale is repeated into R, G and B; MinIsWhite is inverted first;
* a palette is looked up (16-bit TIFF colour maps keep their high byte);
* 16-bit samples keep their **high byte** (``v >> 8``), as Pillow does for 48-bit PNG;
* alpha is composited onto **white** (the glass of a slide); an opaque alpha
  channel (always 255, as in the MICCAI 2015 PNGs) is therefore simply dropped;
* CMYK is converted with ``R = (255 - C)(255 - K) / 255`` and likewise for G, B;
* float, signed and 32-bit samples are refused: they are not an H&E photograph.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np

from engine.data import MAX_EAGER_PIXELS
from engine.errors import ReadError, UnsupportedFormatError

__all__ = [
    "to_rgb8",
    "composite_on_white",
    "paste_region",
    "check_region_args",
    "parse_mpp_option",
    "TileCache",
    "EAGER_PIXELS",
]

#: Images with at most this many pixels at level 0 are also held as one array
#: (``Image.array``); 16 MP is 48 MB of RGB. Larger ones are read region by region.
EAGER_PIXELS = 16 * 1024 * 1024


def _to_uint8_samples(arr: np.ndarray, path: str) -> np.ndarray:
    """Samples as uint8 by the module's stated rule (bool -> 0/255, uint16 -> high byte)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 2:
        return (arr >> 8).astype(np.uint8)
    raise UnsupportedFormatError(
        path, f"{arr.dtype} samples are not an 8- or 16-bit RGB/greyscale H&E image; "
              "export the slide as 8-bit RGB")


def composite_on_white(rgb: np.ndarray, alpha: np.ndarray, *, premultiplied: bool = False) -> np.ndarray:
    """Composite ``(..., 3)`` uint8 colours with a ``(...)`` uint8 alpha onto white.

    An alpha of 255 leaves the colours exactly unchanged.
    """
    a = alpha.astype(np.uint16)[..., None]
    c = rgb.astype(np.uint16)
    if premultiplied:
        out = c + (255 - a)
    else:
        out = (c * a + 255 * (255 - a) + 127) // 255
    return np.minimum(out, 255).astype(np.uint8)


def to_rgb8(
    arr: np.ndarray,
    path: str,
    *,
    photometric: str = "rgb",
    colormap: np.ndarray | None = None,
    alpha: str | None = "unassociated",
) -> np.ndarray:
    """Convert ``(rows, cols[, samples])`` pixels to ``(rows, cols, 3)`` uint8 RGB.

    Parameters
    ----------
    arr : numpy.ndarray
        Decoded pixels, samples last.
    path : str
        The file, for error messages.
    photometric : {"rgb", "minisblack", "miniswhite", "palette", "cmyk"}
        How the samples are to be interpreted.
    colormap : numpy.ndarray, optional
        ``(3, N)`` palette for ``photometric="palette"``.
    alpha : {"unassociated", "associated", None}
        Whether an extra sample after the colour samples is alpha (and which kind).
    """
    if arr.ndim == 2:
        arr = arr[..., None]
    if photometric == "palette":
        if colormap is None:
            raise UnsupportedFormatError(path, "palette image without a colour map")
        cmap = np.asarray(colormap)
        if cmap.dtype != np.uint8:
            cmap = (cmap.astype(np.uint32) >> 8).astype(np.uint8) if cmap.max() > 255 else cmap.astype(np.uint8)
        idx = np.clip(arr[..., 0].astype(np.intp), 0, cmap.shape[1] - 1)
        return np.ascontiguousarray(np.moveaxis(cmap[:, idx], 0, -1))
    arr = _to_uint8_samples(arr, path)
    n = arr.shape[-1]
    if photometric == "cmyk":
        if n < 4:
            raise UnsupportedFormatError(path, f"CMYK image with {n} samples per pixel")
        c = arr[..., :3].astype(np.uint16)
        k = arr[..., 3:4].astype(np.uint16)
        return ((255 - c) * (255 - k) // 255).astype(np.uint8)
    if photometric in ("minisblack", "miniswhite") or n < 3:
        grey = arr[..., 0]
        if photometric == "miniswhite":
            grey = 255 - grey
        rgb = np.repeat(grey[..., None], 3, axis=-1)
        if n >= 2 and alpha is not None:
            rgb = composite_on_white(rgb, arr[..., 1], premultiplied=alpha == "associated")
        return rgb
    rgb = arr[..., :3]
    if n >= 4 and alpha is not None:
        a = arr[..., 3]
        if not (a == 255).all():
            return composite_on_white(rgb, a, premultiplied=alpha == "associated")
    return np.ascontiguousarray(rgb)


def check_region_args(levels, level, x, y, w, h) -> tuple[int, int, int, int, int]:
    """Validate ``read_region`` arguments; return them as ints."""
    level, x, y, w, h = (int(v) for v in (level, x, y, w, h))
    if not 0 <= level < len(levels):
        raise ValueError(f"level {level} out of range: this image has {len(levels)} level(s) "
                         f"(0..{len(levels) - 1})")
    if w < 0 or h < 0:
        raise ValueError(f"region size must not be negative, got w={w}, h={h}")
    if w * h > MAX_EAGER_PIXELS:
        raise ValueError(f"region of {w}x{h} pixels is too large to read at once "
                         f"(more than {MAX_EAGER_PIXELS} pixels); read it in tiles")
    return level, x, y, w, h


def paste_region(shape_rc: tuple[int, int], x: int, y: int, w: int, h: int,
                 read_inside: Callable[[int, int, int, int], np.ndarray]) -> np.ndarray:
    """A zero-filled ``(h, w, 3)`` uint8 region with its part inside the image filled in.

    ``read_inside(x0, y0, x1, y1)`` returns the clipped block ``[y0:y1, x0:x1]``.
    """
    out = np.zeros((h, w, 3), np.uint8)
    rows, cols = shape_rc
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, cols), min(y + h, rows)
    if x1 > x0 and y1 > y0:
        out[y0 - y: y1 - y, x0 - x: x1 - x] = read_inside(x0, y0, x1, y1)
    return out


def parse_mpp_option(mpp, path: str) -> tuple[float, float] | None:
    """The user's ``mpp`` option as ``(row, col)`` microns per pixel, or None."""
    if mpp is None:
        return None
    try:
        vals = [float(v) for v in (mpp if isinstance(mpp, (tuple, list)) else (mpp, mpp))]
    except (TypeError, ValueError):
        raise ReadError(path, f"mpp must be a number of microns per pixel, got {mpp!r}") from None
    if len(vals) != 2 or not all(math.isfinite(v) and v > 0 for v in vals):
        raise ReadError(path, f"mpp must be a positive number of microns per pixel, got {mpp!r}")
    return vals[0], vals[1]


class TileCache:
    """A small thread-safe LRU of decoded RGB8 tiles (bounded in bytes)."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            tile = self._items.get(key)
            if tile is not None:
                self._items.move_to_end(key)
            return tile

    def put(self, key, tile: np.ndarray) -> None:
        if tile.nbytes > self.max_bytes // 4:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = tile
            self._bytes += tile.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
