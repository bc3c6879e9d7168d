"""TIFF, BigTIFF, OME-TIFF and pyramidal TIFF H&E images, read lazily tile by tile.

Only the tiles (or strips) that a region touches are read from disk and decoded,
through tifffile's own per-segment decoder (JPEG, LZW, deflate, ... via imagecodecs),
so neither the pyramid nor a whole level is ever held in memory. Pyramids come from
``tifffile.TiffFile.series[...].levels`` (SubIFDs, multi-page, OME, SVS layouts).
"""
from __future__ import annotations

import logging
import math
import os
import threading

import numpy as np

from engine.errors import CorruptFileError, LatentError, ReadError, UnsupportedFormatError
from engine.io.histology import mpp as M
from engine.io.histology.common import TileCache, to_rgb8
from engine.io.histology.limits import check_samples, check_segments, check_tile_shape

__all__ = ["TiffSlide"]

logger = logging.getLogger("engine")
# tifffile reports damaged structures through its logger. While a file is opened here
# those records are collected (and kept off stderr) and reported in our own error or
# in ``metadata["warnings"]``.

_PHOTOMETRIC = {0: "miniswhite", 1: "minisblack", 2: "rgb", 3: "palette", 5: "cmyk", 6: "rgb"}
_VENDORS = (("is_svs", "aperio"), ("is_philips", "philips"), ("is_scn", "leica"),
            ("is_bif", "ventana"), ("is_ndpi", "hamamatsu"), ("is_qpi", "perkinelmer"))


class _Collect(logging.Filter):
    """A logger filter that keeps tifffile's warnings and stops them from being printed."""

    def __init__(self):
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record) -> bool:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())
        logger.debug("tifffile: %s", record.getMessage())
        return False


def _rational(tag) -> float | None:
    if tag is None:
        return None
    v = tag.value
    try:
        return v[0] / v[1] if isinstance(v, tuple) else float(v)
    except (ZeroDivisionError, TypeError, IndexError):
        return None


class _Level:
    """One pyramid level: its pages (one, or three greyscale planes) and segment grid."""

    def __init__(self, series_level, path: str, level: int = 0):
        kf = series_level.keyframe
        self.keyframe = kf
        self.rows, self.cols = int(kf.imagelength), int(kf.imagewidth)
        if kf.imagedepth > 1:
            raise UnsupportedFormatError(path, "3-D (volumetric) TIFF is not a slide image")
        pages = [p for p in series_level.pages if p is not None]
        if not pages:
            raise CorruptFileError(path, "the TIFF series has no pages")
        self.pages = [pages[0]]
        self.photometric = _PHOTOMETRIC.get(int(kf.photometric), None)
        if self.photometric is None:
            raise UnsupportedFormatError(path, f"TIFF photometric {kf.photometric.name} is not RGB or greyscale")
        if int(kf.photometric) == 6 and int(kf.compression) not in (6, 7):
            raise UnsupportedFormatError(path, "YCbCr TIFF without JPEG compression is not supported")
        lead = series_level.axes[: len(series_level.shape) - len(kf.shape)]
        if (self.photometric == "minisblack" and kf.samplesperpixel == 1 and "C" in lead
                and len(pages) == math.prod(series_level.shape[: len(lead)])):
            c = lead.index("C")
            dims = series_level.shape[: len(lead)]
            if dims[c] == 3:  # three greyscale planes: show them as R, G, B
                idx = [0] * len(dims)
                self.pages = []
                for ch in range(3):
                    idx[c] = ch
                    self.pages.append(pages[int(np.ravel_multi_index(idx, dims))])
                self.photometric = "rgb"
        extras = tuple(int(e) for e in (kf.extrasamples or ()))
        self.alpha = {1: "associated", 2: "unassociated"}.get(extras[0]) if extras else None
        self.colormap = kf.colormap if self.photometric == "palette" else None
        self.planar = int(kf.planarconfig) == 2 and kf.samplesperpixel > 1
        self.spp = int(kf.samplesperpixel)
        if kf.is_tiled:
            self.seg_h, self.seg_w = int(kf.tilelength), int(kf.tilewidth)
            check_tile_shape(path, self.seg_h, self.seg_w, level)
        else:
            self.seg_h, self.seg_w = max(1, min(int(kf.rowsperstrip), self.rows)), self.cols
        bits = kf.bitspersample
        check_samples(path, self.spp, int(max(bits) if isinstance(bits, tuple) else bits), self.seg_h, self.seg_w,
                      level)
        self.ny, self.nx = math.ceil(self.rows / self.seg_h), math.ceil(self.cols / self.seg_w)
        # uncompressed strips: rows can be read straight from the file, so a huge
        # single-strip image is still read a few rows at a time
        self.raw_dtype = None
        if (not kf.is_tiled and int(kf.compression) == 1 and not self.planar and len(self.pages) == 1
                and int(kf.predictor) == 1 and int(kf.fillorder) == 1 and kf.bitspersample in (8, 16)
                and kf.dtype is not None and kf.dtype.kind == "u"):
            self.raw_dtype = np.dtype(kf.parent.byteorder + kf.dtype.char)

    def index(self, ty: int, tx: int, sample: int = 0) -> int:
        return sample * self.ny * self.nx + ty * self.nx + tx


def _raw_segments(page):
    """The page's tile/strip offsets and byte counts as stored in its tags (not as tifffile fixed them)."""
    tags = getattr(page, "tags", None)
    if tags is not None:
        offs = tags.get(324) or tags.get(273)
        counts = tags.get(325) or tags.get(279)
        if offs is not None and counts is not None:
            return tuple(np.atleast_1d(offs.value)), tuple(np.atleast_1d(counts.value))
    return page.dataoffsets, page.databytecounts


def _uncompressed_need(lv: "_Level"):
    """``need(i)``: bytes segment *i* of an uncompressed level needs; None when compressed."""
    kf = lv.keyframe
    if int(kf.compression) != 1:
        return None
    bits = kf.bitspersample
    bits = int(max(bits) if isinstance(bits, tuple) else bits)
    samples = 1 if lv.planar else lv.spp
    row_bytes = (lv.seg_w * samples * bits + 7) // 8
    if kf.is_tiled:
        return lambda i: lv.seg_h * row_bytes
    per_plane = lv.ny

    def need(i: int) -> int:
        ty = i % per_plane
        return min(lv.seg_h, lv.rows - ty * lv.seg_h) * row_bytes

    return need


class TiffSlide:
    """An open TIFF whose regions are read on demand (thread-safe)."""

    def __init__(self, path: str):
        import tifffile

        self.path = path
        self._lock = threading.Lock()
        self._cache = TileCache()
        self._closed = False
        collect = _Collect()
        tlog = logging.getLogger("tifffile")
        tlog.addFilter(collect)
        try:
            try:
                self._tif = tifffile.TiffFile(path)
            except tifffile.TiffFileError as exc:
                raise CorruptFileError(path, f"not a readable TIFF ({exc})") from None
            try:
                self._open_levels(collect)
            except BaseException:
                self._tif.close()
                raise
        finally:
            tlog.removeFilter(collect)
        self.warnings = collect.messages[:5]

    # ---------------------------------------------------------------- opening
    def _open_levels(self, collect: _Collect) -> None:
        tif, path = self._tif, self.path
        series = [s for s in tif.series if s is not None and s.keyframe is not None]
        bad = [m for m in collect.messages if "offset" in m and ("invalid" in m or "out of" in m)]
        if bad:
            raise CorruptFileError(path, f"the TIFF is truncated or its page table is damaged ({bad[0]})")
        if not series:
            raise CorruptFileError(path, "the TIFF holds no image")

        def area(s):
            kf = s.keyframe
            return int(kf.imagelength) * int(kf.imagewidth)

        self.series = max(series, key=area)  # skip thumbnails / labels listed first
        self.series_index = series.index(self.series)
        self.levels = [_Level(lv, path, k) for k, lv in enumerate(self.series.levels)]
        rows0, cols0 = self.levels[0].rows, self.levels[0].cols
        if rows0 == 0 or cols0 == 0:
            raise CorruptFileError(path, "the TIFF image is 0 pixels wide or high")
        size = os.path.getsize(path)
        for i, lv in enumerate(self.levels):
            for page in lv.pages:
                offsets, counts = page.dataoffsets, page.databytecounts
                needed = lv.ny * lv.nx * (lv.spp if lv.planar else 1)
                if len(offsets) < needed or len(counts) < needed:
                    raise CorruptFileError(path, f"level {i} lists {len(offsets)} tiles/strips, "
                                                 f"its size needs {needed}; the TIFF is damaged")
                check_segments(path, *_raw_segments(page), size, _uncompressed_need(lv), i)
                end = max((o + c for o, c in zip(offsets, counts) if o and c), default=0)
                if end > size:
                    raise CorruptFileError(path, f"the TIFF is truncated: level {i} needs {end} bytes, "
                                                 f"the file has {size}")
        # decode one segment of the smallest level now, so an unsupported or broken
        # compression is reported on opening rather than at the first region
        self.read(len(self.levels) - 1, 0, 0, 1, 1)

    def level_shapes(self) -> tuple[tuple[int, int], ...]:
        return tuple((lv.rows, lv.cols) for lv in self.levels)

    def downsamples(self) -> tuple[float, ...]:
        r0, c0 = self.levels[0].rows, self.levels[0].cols
        return tuple(1.0 if i == 0 else (r0 / lv.rows + c0 / lv.cols) / 2 for i, lv in enumerate(self.levels))

    # ---------------------------------------------------------------- metadata
    def metadata(self) -> dict:
        tif, kf = self._tif, self.levels[0].keyframe
        kinds = []
        if tif.is_ome:
            kinds.append("OME-TIFF")
        elif tif.is_imagej:
            kinds.append("ImageJ TIFF")
        else:
            kinds.append("TIFF")
        if tif.is_bigtiff:
            kinds.append("BigTIFF")
        if len(self.levels) > 1:
            kinds.append("pyramidal")
        vendor = next((v for attr, v in _VENDORS if getattr(tif, attr, False)), None)
        comp = kf.compression.name.lower() if hasattr(kf.compression, "name") else str(kf.compression)
        meta = {
            "format": kinds[0] + (f" ({', '.join(kinds[1:])})" if kinds[1:] else ""),
            "reader": "tifffile",
            "compression": {"adobe_deflate": "deflate"}.get(comp, comp),
            "tile_size": [self.levels[0].seg_h, self.levels[0].seg_w] if kf.is_tiled else None,
            "vendor": vendor,
            "photometric": kf.photometric.name.lower(),
            "planar": "separate" if self.levels[0].planar else "contig",
            "bits_per_sample": int(kf.bitspersample),
        }
        if not kf.is_tiled:
            meta["rows_per_strip"] = self.levels[0].seg_h
        software = kf.tags.get(305)
        if software is not None:
            meta["software"] = str(software.value)[:200]
        if int(kf.bitspersample) == 16:
            meta["conversion"] = "16-bit samples: high byte kept (v >> 8)"
        if self.levels[0].alpha:
            meta["alpha"] = "alpha composited onto white"
        obj = None
        aperio = M.aperio_fields(kf.description)
        if aperio.get("AppMag"):
            try:
                obj = float(aperio["AppMag"])
            except ValueError:
                pass
        if obj is None and tif.is_ome:
            obj = M.objective_from_ome(tif.ome_metadata)
        meta["objective_power"] = obj
        if self.warnings:
            meta["warnings"] = list(self.warnings)
        return meta

    def mpp(self) -> tuple[tuple[float, float] | None, str]:
        """Level-0 ``(row, col)`` µm per pixel and where it came from (or why unknown)."""
        tif, kf = self._tif, self.levels[0].keyframe
        found = None
        if tif.is_ome:
            found = M.mpp_from_ome(tif.ome_metadata, self.series_index)
        found = found or M.mpp_from_aperio(kf.description)
        xres, yres = _rational(kf.tags.get(282)), _rational(kf.tags.get(283))
        if found is None and tif.is_imagej:
            found = M.mpp_from_imagej(tif.imagej_metadata, xres, yres)
        if found is None and tif.is_philips:
            found = M.mpp_from_philips(tif.pages.first.description)
        if found is not None:
            return (found[0], found[1]), found[2]
        unit_tag = kf.tags.get(296)
        unit = int(unit_tag.value) if unit_tag is not None else 2  # TIFF default: inch
        r, c, note = M.mpp_from_resolution(xres, yres, unit)
        if r is not None:
            return (r, c), note
        return None, note or "the file has no pixel size"

    # ---------------------------------------------------------------- pixels
    def _segment(self, page, lv: _Level, idx: int) -> np.ndarray | None:
        offset, count = page.dataoffsets[idx], page.databytecounts[idx]
        if not offset or not count:
            return None  # sparse/empty tile
        with self._lock:
            if self._closed:
                raise ReadError(self.path, "the file has been closed")
            fh = self._tif.filehandle
            fh.seek(offset)
            data = fh.read(count)
        if len(data) < count:
            raise CorruptFileError(self.path, f"the TIFF is truncated inside tile/strip {idx}")
        kf = lv.keyframe
        jpegtables = getattr(page, "jpegtables", None) or getattr(kf, "jpegtables", None)
        seg, _, _ = kf.decode(data, idx, jpegtables=jpegtables, jpegheader=kf.jpegheader)
        return None if seg is None else seg[0]

    def _tile(self, level: int, ty: int, tx: int) -> np.ndarray:
        key = (level, ty, tx)
        tile = self._cache.get(key)
        if tile is not None:
            return tile
        lv = self.levels[level]
        th = min(lv.seg_h, lv.rows - ty * lv.seg_h)
        tw = min(lv.seg_w, lv.cols - tx * lv.seg_w)
        try:
            if lv.planar:
                parts = [self._segment(lv.pages[0], lv, lv.index(ty, tx, s)) for s in range(lv.spp)]
            else:
                parts = [self._segment(p, lv, lv.index(ty, tx)) for p in lv.pages]
            if any(p is None for p in parts):
                tile = np.zeros((th, tw, 3), np.uint8)
            else:
                parts = [p[:th, :tw] for p in parts]
                raw = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
                if raw.shape[:2] != (th, tw):
                    raise CorruptFileError(self.path, f"tile/strip at level {level} decoded to "
                                                      f"{raw.shape[:2]}, expected {(th, tw)}")
                tile = to_rgb8(raw, self.path, photometric=lv.photometric,
                               colormap=lv.colormap, alpha=lv.alpha)
        except LatentError:
            raise
        except MemoryError:
            raise ReadError(self.path, "not enough memory to decode a tile") from None
        except NotImplementedError as exc:
            raise UnsupportedFormatError(self.path, f"cannot decode this TIFF's tiles: {exc}") from None
        except Exception as exc:  # imagecodecs/tifffile errors on damaged data
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorruptFileError(self.path, f"tile ({ty}, {tx}) of level {level} cannot be decoded "
                                              f"({type(exc).__name__}: {msg})") from None
        self._cache.put(key, tile)
        return tile

    def _raw_rows(self, lv: _Level, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """Rows ``[y0:y1]`` of an uncompressed stripped level, read without whole strips."""
        page = lv.pages[0]
        row_bytes = lv.cols * lv.spp * lv.raw_dtype.itemsize
        parts = []
        for ty in range(y0 // lv.seg_h, (y1 - 1) // lv.seg_h + 1):
            r0, r1 = max(y0, ty * lv.seg_h), min(y1, (ty + 1) * lv.seg_h)
            offset, count = page.dataoffsets[ty], page.databytecounts[ty]
            start = (r0 - ty * lv.seg_h) * row_bytes
            need = (r1 - r0) * row_bytes
            if not offset or count < start + need:
                raise CorruptFileError(self.path, f"strip {ty} is shorter than its rows need")
            with self._lock:
                if self._closed:
                    raise ReadError(self.path, "the file has been closed")
                fh = self._tif.filehandle
                fh.seek(offset + start)
                data = fh.read(need)
            if len(data) < need:
                raise CorruptFileError(self.path, f"the TIFF is truncated inside strip {ty}")
            rows = np.frombuffer(data, lv.raw_dtype).reshape(r1 - r0, lv.cols, lv.spp)[:, x0:x1]
            parts.append(to_rgb8(rows, self.path, photometric=lv.photometric,
                                 colormap=lv.colormap, alpha=lv.alpha))
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def read(self, level: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """The block ``[y0:y1, x0:x1]`` of *level* (already clipped to the level)."""
        lv = self.levels[level]
        if lv.raw_dtype is not None:
            return self._raw_rows(lv, x0, y0, x1, y1)
        out = np.empty((y1 - y0, x1 - x0, 3), np.uint8)
        for ty in range(y0 // lv.seg_h, (y1 - 1) // lv.seg_h + 1):
            for tx in range(x0 // lv.seg_w, (x1 - 1) // lv.seg_w + 1):
                tile = self._tile(level, ty, tx)
                ty0, tx0 = ty * lv.seg_h, tx * lv.seg_w
                a0, a1 = max(y0, ty0), min(y1, ty0 + tile.shape[0])
                b0, b1 = max(x0, tx0), min(x1, tx0 + tile.shape[1])
                out[a0 - y0: a1 - y0, b0 - x0: b1 - x0] = tile[a0 - ty0: a1 - ty0, b0 - tx0: b1 - tx0]
        return out

    def clear_cache(self) -> None:
        """Forget decoded tiles (after level 0 was loaded whole into ``Image.array``)."""
        self._cache.clear()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._tif.close()
        self._cache.clear()
