"""Vendor whole-slide formats (SVS, NDPI, MRXS, SCN, BIF, VMS, Philips TIFF) through OpenSlide.

OpenSlide's ``read_region`` takes the top-left corner in **level-0** pixels and returns
un-premultiplied RGBA; transparent parts (no tissue scanned) are composited onto white.
Pixels outside the level are zero, as in every other histology reader.

Known limitation (OpenSlide's, not fixable from outside): when a level's downsample
is not an integer (an Aperio level of ``floor(w0 / 4)`` columns has 3.99... or
4.000...), OpenSlide maps level coordinates to a sub-pixel position and resamples the
level (bilinear), so such levels are close to but not bit-identical with the stored
pixels. Level 0 and levels with integer downsamples are exact.
"""
from __future__ import annotations

import math
import threading

import numpy as np

from engine.errors import CorruptFileError, ReadError, UnsupportedFormatError
from engine.io.histology.common import composite_on_white

__all__ = ["OpenSlideSlide", "detect_vendor"]


def detect_vendor(path: str) -> str | None:
    """OpenSlide's name for the file's format (``"aperio"``, ``"generic-tiff"``, ...), or None."""
    try:
        import openslide

        return openslide.OpenSlide.detect_format(path)
    except Exception:  # a damaged file: the reader that opens it will say what is wrong
        return None


def _float(props, key) -> float | None:
    try:
        v = float(props[key])
    except (KeyError, TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None  # "MPP = inf" in a damaged description is no size


def _tiff_compression(path: str) -> str | None:
    """Compression of level 0 when the slide is a TIFF (SVS, NDPI, SCN, BIF, ...), else None."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            comp = tif.pages.first.compression
        name = comp.name.lower() if hasattr(comp, "name") else str(comp)
        return {"adobe_deflate": "deflate", "aperio_jp2000_ycbc": "jpeg2000",
                "aperio_jp2000_rgb": "jpeg2000"}.get(name, name)
    except Exception:  # not a TIFF (MRXS, VMS): OpenSlide does not say
        return None


class OpenSlideSlide:
    """An OpenSlide handle with level-coordinate regions (thread-safe)."""

    def __init__(self, path: str):
        import openslide

        self.path = path
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._slide = openslide.OpenSlide(path)
        except openslide.OpenSlideUnsupportedFormatError:
            raise UnsupportedFormatError(path, "OpenSlide does not recognise this slide format") from None
        except (openslide.OpenSlideError, OSError, ValueError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorruptFileError(path, f"OpenSlide cannot open the slide ({msg})") from None
        dims = self._slide.level_dimensions
        if not dims or dims[0][0] <= 0 or dims[0][1] <= 0:
            self._slide.close()
            raise CorruptFileError(path, "the slide has no pixels")
        self._shapes = tuple((int(h), int(w)) for w, h in dims)
        self._ds = tuple(float(d) for d in self._slide.level_downsamples)
        # read one pixel of the smallest level now: broken tiles fail on opening
        self.read(len(self._shapes) - 1, 0, 0, 1, 1)

    def level_shapes(self) -> tuple[tuple[int, int], ...]:
        return self._shapes

    def downsamples(self) -> tuple[float, ...]:
        return self._ds

    def metadata(self) -> dict:
        p = self._slide.properties
        meta = {
            "format": f"{p.get('openslide.vendor', 'slide')} slide (OpenSlide)",
            "reader": "openslide",
            "vendor": p.get("openslide.vendor"),
            "compression": None,
            "tile_size": None,
            "objective_power": _float(p, "openslide.objective-power"),
        }
        tw, th = p.get("openslide.level[0].tile-width"), p.get("openslide.level[0].tile-height")
        if tw and th:
            meta["tile_size"] = [int(th), int(tw)]
        meta["compression"] = _tiff_compression(self.path)
        bounds = [p.get(f"openslide.bounds-{k}") for k in ("x", "y", "width", "height")]
        if all(bounds):
            meta["bounds_xywh"] = [int(b) for b in bounds]
        assoc = list(self._slide.associated_images.keys()) if hasattr(self._slide, "associated_images") else []
        if assoc:
            meta["associated_images"] = assoc
        return meta

    def mpp(self) -> tuple[tuple[float, float] | None, str]:
        p = self._slide.properties
        mx, my = _float(p, "openslide.mpp-x"), _float(p, "openslide.mpp-y")
        if mx and my:
            return (my, mx), "OpenSlide openslide.mpp-y/x (vendor metadata)"
        if mx or my:
            return (mx or my, mx or my), "OpenSlide openslide.mpp-x/y (one axis given)"
        return None, "the slide has no pixel size (no openslide.mpp-x/y)"

    def read(self, level: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The block ``[y0:y1, x0:x1]`` of *level* (already clipped to the level)."""
        import openslide

        ds = self._ds[level]
        loc = (int(round(x0 * ds)), int(round(y0 * ds)))
        with self._lock:
            if self._closed:
                raise ReadError(self.path, "the slide has been closed")
        try:
            rgba = np.asarray(self._slide.read_region(loc, level, (x1 - x0, y1 - y0)))
        except openslide.OpenSlideError as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorruptFileError(self.path, f"OpenSlide cannot read level {level} at "
                                              f"({x0}, {y0}): {msg}") from None
        except MemoryError:
            raise ReadError(self.path, "not enough memory to read the region") from None
        return composite_on_white(rgba[..., :3], rgba[..., 3])

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._slide.close()
