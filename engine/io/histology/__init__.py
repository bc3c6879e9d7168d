"""H&E images: PNG/JPEG tiles, (pyramidal/Big/OME-)TIFF and vendor whole slides.

>>> from engine.io.histology import OPENSLIDE_EXTENSIONS
>>> ".svs" in OPENSLIDE_EXTENSIONS
True

One entry point, :func:`read_histology`, returns an :class:`engine.data.Image` with
``modality="histology"``, ``units="RGB8"`` and ``shape=(rows, cols, 3)`` at level 0.
Pixels are always read through ``Image.read_region(level, x, y, w, h)`` (x = column,
y = row in that level's pixels; zero outside the image); small images are also held
whole in ``Image.array``. Which library reads what:

* PNG / JPEG: Pillow, whole (see :mod:`engine.io.histology.raster`);
* TIFF / BigTIFF / OME-TIFF / pyramidal TIFF: tifffile, lazily tile by tile
  (:mod:`engine.io.histology.tiff`);
* SVS / NDPI / MRXS / SCN / BIF / VMS / VMU / SVSLIDE, and TIFFs that OpenSlide
  recognises as a vendor format (Aperio, Philips, Leica, Ventana, Hamamatsu):
  OpenSlide (:mod:`engine.io.histology.slide`).

How pixels become RGB8 is stated in :mod:`engine.io.histology.common`; where the
microns-per-pixel value came from is stated in ``metadata["mpp_source"]``.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from engine.data import Image
from engine.errors import CorruptFileError, LatentError, ReadError, UnsupportedFormatError
from engine.io.histology.common import (
    EAGER_PIXELS,
    check_region_args,
    parse_mpp_option,
    paste_region,
)
from engine.io.histology.limits import check_tiff_directory

__all__ = ["read_histology", "OPENSLIDE_EXTENSIONS"]

logger = logging.getLogger("engine")

#: Extensions opened with OpenSlide (a TIFF among them falls back to tifffile if OpenSlide refuses it).
OPENSLIDE_EXTENSIONS = (".svs", ".ndpi", ".mrxs", ".scn", ".bif", ".vms", ".vmu", ".svslide")
#: OpenSlide format names for which a ``.tif``/``.tiff`` is read with OpenSlide.
_VENDOR_TIFF = ("aperio", "philips", "leica", "ventana", "hamamatsu")


def _open_tiff_or_slide(path: str, kind: str, ext: str):
    """Open the lazy source for a TIFF-like or vendor file; return ``(source, note)``."""
    from engine.io.histology.slide import OpenSlideSlide, detect_vendor
    from engine.io.histology.tiff import TiffSlide

    if ext == ".mrxs" and not Path(path).with_suffix("").is_dir():
        raise ReadError(path, f"the MRXS slide's data folder '{Path(path).with_suffix('').name}' is not "
                              "next to the .mrxs file; copy the folder together with it")
    use_openslide = ext in OPENSLIDE_EXTENSIONS
    if kind == "tiff":
        check_tiff_directory(path)  # before libtiff: a damaged tag count makes GLib abort the process
    if not use_openslide and kind == "tiff":
        use_openslide = detect_vendor(path) in _VENDOR_TIFF
    if not use_openslide:
        return TiffSlide(path), None
    try:
        return OpenSlideSlide(path), None
    except ReadError as exc:
        if kind != "tiff":
            raise
        try:  # a plain TIFF named .svs, or a layout OpenSlide refuses: tifffile may still read it
            src = TiffSlide(path)
        except CorruptFileError as damage:
            # OpenSlide only says "not recognised"; tifffile says what is damaged
            raise (damage if isinstance(exc, UnsupportedFormatError) else exc) from None
        except ReadError:
            raise exc from None
        return src, f"OpenSlide could not open it ({exc.reason}); read with tifffile"


def _region_reader(path: str, shapes, src, array):
    def read_region(level: int, x: int, y: int, w: int, h: int) -> np.ndarray:
        level, x, y, w, h = check_region_args(shapes, level, x, y, w, h)
        if level == 0 and array is not None:
            return paste_region(shapes[0], x, y, w, h, lambda x0, y0, x1, y1: array[y0:y1, x0:x1])
        try:
            return paste_region(shapes[level], x, y, w, h,
                                lambda x0, y0, x1, y1: src.read(level, x0, y0, x1, y1))
        except LatentError:
            raise
        except MemoryError:
            raise ReadError(path, "not enough memory to read the region") from None
        except Exception as exc:  # a library error on a damaged tile: one line, file named
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CorruptFileError(path, f"level {level} region ({x}, {y}, {w}x{h}) cannot be read: {msg}") from None

    return read_region


def read_histology(path: str | os.PathLike, *, mpp=None, **_) -> Image:
    """Read an H&E image or whole slide.

    Parameters
    ----------
    path : str or os.PathLike
        PNG, JPEG, TIFF/BigTIFF/OME-TIFF (pyramidal or not), or a vendor whole slide.
    mpp : float or (float, float), optional
        Microns per pixel at level 0 (``(row, col)`` if not square); overrides the file.
    **_
        Options of other readers (``sfreq``, ``modality``, ...), ignored.

    Returns
    -------
    engine.data.Image
        ``spacing`` is ``(mpp_row, mpp_col)`` in µm at level 0, or None when unknown.
        Call ``close()`` (or ``Image.closer``) to release the file.

    Raises
    ------
    engine.errors.ReadError
        Empty, truncated, damaged or unsupported files, with the file name and why.
    """
    from engine.io.registry import sniff

    path = os.fspath(path)
    p = Path(path)
    if not p.exists():
        raise ReadError(path, "no such file")
    if p.is_dir():
        raise ReadError(path, "is a folder, not an H&E image file")
    ext = p.suffix.lower()
    if ext != ".mrxs" and p.stat().st_size == 0:  # .mrxs is an index next to its data folder
        raise ReadError(path, "the file is empty (0 bytes)")
    kind = sniff(path) if p.stat().st_size else "empty"
    override = parse_mpp_option(mpp, path)
    src = None
    try:
        if kind in ("png", "jpeg") and ext not in OPENSLIDE_EXTENSIONS:
            from engine.io.histology.raster import read_raster

            array, meta, file_mpp, note = read_raster(path, kind)
            shapes, downsamples = ((array.shape[0], array.shape[1]),), (1.0,)
            meta.update(vendor=None, objective_power=None)
        elif kind == "tiff" or ext in OPENSLIDE_EXTENSIONS:
            src, fallback = _open_tiff_or_slide(path, kind, ext)
            shapes, downsamples = src.level_shapes(), src.downsamples()
            meta = src.metadata()
            if fallback:
                meta["note"] = fallback
            file_mpp, note = src.mpp()
            rows, cols = shapes[0]
            array = None
            if rows * cols <= EAGER_PIXELS:
                array = src.read(0, 0, 0, cols, rows)
                getattr(src, "clear_cache", lambda: None)()  # level 0 now lives in the array
        else:
            raise UnsupportedFormatError(
                path, f"not an H&E image Latent reads (content: {kind}); expected PNG, JPEG, TIFF or a "
                      f"whole slide ({', '.join(OPENSLIDE_EXTENSIONS)})")
    except LatentError:
        if src is not None:
            src.close()
        raise
    except MemoryError:
        if src is not None:
            src.close()
        raise ReadError(path, "not enough memory to read this image") from None
    except Exception as exc:  # a library error on a damaged file: one line, file named
        if src is not None:
            src.close()
        logger.debug("histology reader failed on %s", path, exc_info=True)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CorruptFileError(path, f"cannot be read as an H&E image ({type(exc).__name__}: {msg})") from None

    if override is not None:
        spacing = override
        meta["mpp_source"] = "mpp option (overrides the file)"
        if file_mpp is not None:
            meta["file_mpp"] = [float(v) for v in file_mpp]
    elif file_mpp is not None:
        spacing = (float(file_mpp[0]), float(file_mpp[1]))
        meta["mpp_source"] = note
    else:
        spacing = None
        meta["mpp_source"] = f"unknown: {note}"
    meta["eager"] = array is not None
    logger.debug("read %s: %s, levels %s, mpp %s", path, meta.get("format"), shapes, spacing)
    return Image(
        modality="histology",
        shape=(int(shapes[0][0]), int(shapes[0][1]), 3),
        spacing=spacing,
        units="RGB8",
        path=path,
        dtype="uint8",
        array=array,
        levels=tuple((int(r), int(c)) for r, c in shapes),
        downsamples=tuple(float(d) for d in downsamples),
        metadata=meta,
        region_reader=_region_reader(path, shapes, src, array),
        closer=src.close if src is not None else (lambda: None),
    )
