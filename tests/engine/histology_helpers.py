"""Shared by the histology reader tests: reference crops and regions, and the module-scoped
`ref` mosaic and `tiffs` (pyramids written here in every TIFF layout the reader takes)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage


REPO = Path(__file__).resolve().parents[2]
APERIO = "Aperio Image Library v12.0.15\r\n"


def pil_rgb(path) -> np.ndarray:
    """The library read directly: Pillow, RGBA/palette/grey -> RGB by Pillow itself."""
    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB"))


def crop_ref(arr, x, y, w, h):
    """Reference crop with zero fill outside (x = column, y = row)."""
    out = np.zeros((h, w, 3), np.uint8)
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, arr.shape[0]), min(x + w, arr.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0 - y:y1 - y, x0 - x:x1 - x] = arr[y0:y1, x0:x1]
    return out


def edge_regions(rows, cols):
    """Inside, straddling each edge and corner, wholly outside, 1 px, the whole level."""
    return [(5, 7, 100, 60), (cols - 40, rows - 30, 100, 90), (-20, -10, 70, 50),
            (cols // 3, -15, 257, 300), (-3, rows // 2, 50, 129), (cols + 5, 0, 10, 10),
            (cols // 2, rows // 2, 1, 1), (0, 0, cols, rows)]


def check_regions(img, level, ref):
    rows, cols = ref.shape[:2]
    assert img.levels[level] == (rows, cols)
    for x, y, w, h in edge_regions(rows, cols):
        got = img.read_region(level, x, y, w, h)
        assert got.shape == (h, w, 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, crop_ref(ref, x, y, w, h), err_msg=f"level {level} region {(x, y, w, h)}")


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> np.ndarray:
    """A 1900 x 2700 H&E mosaic from MoNuSeg (not square, not a multiple of the tile size)."""
    data = Path(os.environ.get("LATENT_SHARED_DATA", REPO.parent / "shared" / "data"))
    tiles = [pil_rgb(p) for p in sorted((data / "histo/monuseg").glob("*.png"))[:6]]
    mosaic = np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:6], 1)], 0)
    return np.ascontiguousarray(mosaic[:1900, :2700])


def pyramid_of(ref):
    return [ref, np.ascontiguousarray(ref[::2, ::2]), np.ascontiguousarray(ref[::4, ::4])]


@pytest.fixture(scope="module")
def tiffs(ref, tmp_path_factory):
    d = tmp_path_factory.mktemp("histo")
    lv = pyramid_of(ref)
    out = {}
    out["subifd"] = d / "pyramid_subifd.tif"  # SubIFD pyramid, 3 levels, tile 256, deflate
    with tifffile.TiffWriter(out["subifd"]) as tw:
        tw.write(lv[0], tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb", subifds=2, metadata=None)
        for a in lv[1:]:
            tw.write(a, tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb", subfiletype=1, metadata=None)
    out["jpeg"] = d / "pyramid_jpeg.tiff"  # SubIFD pyramid, tile 128, JPEG (lossy)
    with tifffile.TiffWriter(out["jpeg"]) as tw:
        tw.write(lv[0], tile=(128, 128), compression="jpeg", photometric="rgb", subifds=2, metadata=None)
        for a in lv[1:]:
            tw.write(a, tile=(128, 128), compression="jpeg", photometric="rgb", subfiletype=1, metadata=None)
    out["multipage"] = d / "pyramid_pages.tif"  # levels as successive pages, LZW
    with tifffile.TiffWriter(out["multipage"]) as tw:
        for i, a in enumerate(lv):
            tw.write(a, tile=(256, 256), compression="lzw", photometric="rgb",
                     subfiletype=1 if i else 0, metadata=None)
    out["bigtiff"] = d / "planar.btf"  # BigTIFF, planar (separate) samples, tile 128
    tifffile.imwrite(out["bigtiff"], np.moveaxis(ref, -1, 0), bigtiff=True, tile=(128, 128),
                     photometric="rgb", planarconfig="separate", compression="zlib", compressionargs={"level": 1}, metadata=None)
    out["ome"] = d / "slide.ome.tif"  # OME-TIFF pyramid, PhysicalSizeX 0.25 um, Y 0.26 um
    with tifffile.TiffWriter(out["ome"], ome=True) as tw:
        tw.write(lv[0], tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb", subifds=2,
                 metadata={"axes": "YXS", "PhysicalSizeX": 0.25, "PhysicalSizeXUnit": "µm",
                           "PhysicalSizeY": 260.0, "PhysicalSizeYUnit": "nm"})
        for a in lv[1:]:
            tw.write(a, tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb", subfiletype=1)
    out["cm"] = d / "res_cm.tif"  # 20000 px/cm = 0.5 um/px; stripped, not tiled
    tifffile.imwrite(out["cm"], ref, photometric="rgb", resolution=(20000.0, 20000.0),
                     resolutionunit="CENTIMETER", rowsperstrip=64, compression="zlib", compressionargs={"level": 1}, metadata=None)
    out["dpi72"] = d / "res_72dpi.tif"
    tifffile.imwrite(out["dpi72"], ref[:300, :400], photometric="rgb", resolution=(72.0, 72.0),
                     resolutionunit="INCH", metadata=None)
    out["svs"] = d / "aperio.svs"  # Aperio layout: baseline, stripped thumbnail, reduced level
    head = f"{APERIO}{ref.shape[1]}x{ref.shape[0]} [0,0 {ref.shape[1]}x{ref.shape[0]}] (256x256)"
    with tifffile.TiffWriter(out["svs"]) as tw:
        tw.write(lv[0], tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb", metadata=None,
                 description=f"{head} ZLIB/RGB|AppMag = 20|MPP = 0.5")
        tw.write(np.ascontiguousarray(ref[::16, ::16]), photometric="rgb", compression="zlib", compressionargs={"level": 1},
                 metadata=None, description=f"{head} -> {ref.shape[1] // 16}x{ref.shape[0] // 16} - |AppMag = 20")
        tw.write(lv[2], tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb", metadata=None,
                 description=f"{head} -> {lv[2].shape[1]}x{lv[2].shape[0]} - |AppMag = 20|MPP = 0.5")
    return out
