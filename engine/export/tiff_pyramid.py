"""H&E anomaly maps as tiled pyramidal OME-TIFF (tifffile) with the pixel size, for QuPath overlays."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from engine._shared.files import atomic_path
from engine.data import Image

__all__ = ["write_pyramid_tiff", "pyramid_levels", "TILE", "MIN_LEVEL_SIZE"]

#: Tile edge in pixels (a multiple of 16, as TIFF requires).
TILE = 256
#: Levels are halved until the longer side is at most this.
MIN_LEVEL_SIZE = 512


def pyramid_levels(array: np.ndarray) -> list[np.ndarray]:
    """Level 0 and its 2x block-mean reductions (float32) until the longer side is <= MIN_LEVEL_SIZE."""
    from skimage.transform import downscale_local_mean

    levels = [np.asarray(array, np.float32)]
    while max(levels[-1].shape[:2]) > MIN_LEVEL_SIZE:
        f = (2, 2) + (1,) * (levels[-1].ndim - 2)
        levels.append(downscale_local_mean(levels[-1], f).astype(np.float32))
    return levels


def write_pyramid_tiff(image: Image, array: np.ndarray, dest: str | os.PathLike, *,
                       provenance: dict | None = None, name: str = "anomaly") -> Path:
    """Write a ``(rows, cols)`` (or ``(rows, cols, 3)``) float32 map on *image*'s level-0 grid.

    Level 0 is the first page; the reductions are its SubIFDs (NewSubfileType 1), each with its own
    resolution in pixels per centimetre, so QuPath (Bio-Formats) opens the file at the slide's scale
    and can overlay it. The OME-XML carries the microns per pixel; *provenance* is stored as JSON in
    the OME description of the image (no patient data).

    Returns
    -------
    Path
        *dest*.
    """
    import tifffile

    from engine.errors import ReadError

    a = np.asarray(array)
    if tuple(a.shape[:2]) != tuple(image.shape[:2]):
        raise ReadError(image.path, f"map of shape {a.shape} does not match the image {tuple(image.shape)}")
    levels = pyramid_levels(a)
    mpp = image.mpp
    rgb = a.ndim == 3 and a.shape[-1] == 3
    meta = {"axes": "YXS" if rgb else "YX", "Name": name}
    if mpp:
        meta.update(PhysicalSizeX=mpp, PhysicalSizeXUnit="µm", PhysicalSizeY=mpp, PhysicalSizeYUnit="µm")
    if provenance:
        meta["Description"] = json.dumps(provenance)
    common = dict(tile=(TILE, TILE), compression="zlib", photometric="rgb" if rgb else "minisblack")
    dest = Path(dest)
    suffix = ".ome.tif" if dest.name.endswith(".ome.tif") else dest.suffix
    with atomic_path(dest, suffix=suffix) as tmp:
        with tifffile.TiffWriter(tmp, bigtiff=a.nbytes > (1 << 31), ome=True) as tif:
            for lvl, arr in enumerate(levels):
                f = image.shape[0] / arr.shape[0]
                res = {} if not mpp else dict(resolution=(1e4 / (mpp * f), 1e4 / (mpp * f)),
                                              resolutionunit="CENTIMETER")
                if lvl == 0:
                    tif.write(arr, subifds=len(levels) - 1, metadata=meta, **res, **common)
                else:
                    tif.write(arr, subfiletype=1, metadata=None, **res, **common)
    return dest
