"""Histology reader: shared PNG sets against Pillow, TIFF pyramids / OME / BigTIFF / SVS
written here with tifffile against the arrays written, laziness, conversions, damage."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

import engine.io
from engine.errors import ReadError
from engine.io.histology import read_histology

REPO = Path(__file__).resolve().parents[2]
APERIO = "Aperio Image Library v12.0.15\r\n"


def _pil_rgb(path) -> np.ndarray:
    """The library read directly: Pillow, RGBA/palette/grey -> RGB by Pillow itself."""
    with PILImage.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _crop(arr, x, y, w, h):
    """Reference crop with zero fill outside (x = column, y = row)."""
    out = np.zeros((h, w, 3), np.uint8)
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, arr.shape[0]), min(x + w, arr.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0 - y:y1 - y, x0 - x:x1 - x] = arr[y0:y1, x0:x1]
    return out


def _regions(rows, cols):
    """Inside, straddling each edge and corner, wholly outside, 1 px, the whole level."""
    return [(5, 7, 100, 60), (cols - 40, rows - 30, 100, 90), (-20, -10, 70, 50),
            (cols // 3, -15, 257, 300), (-3, rows // 2, 50, 129), (cols + 5, 0, 10, 10),
            (cols // 2, rows // 2, 1, 1), (0, 0, cols, rows)]


def _check_regions(img, level, ref):
    rows, cols = ref.shape[:2]
    assert img.levels[level] == (rows, cols)
    for x, y, w, h in _regions(rows, cols):
        got = img.read_region(level, x, y, w, h)
        assert got.shape == (h, w, 3) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, _crop(ref, x, y, w, h), err_msg=f"level {level} region {(x, y, w, h)}")


# ----------------------------------------------------------------------------- shared data
@pytest.mark.parametrize("pattern,size", [
    ("histo/crchisto/img*/img*.png", (500, 500)),
    ("histo/monuseg/*.png", (1000, 1000)),
    ("histo/miccai2015_seg/*.png", None),
])
def test_shared_pngs_match_pillow(data_dir, pattern, size):
    files = sorted(data_dir.glob(pattern))
    assert files, f"no files for {pattern}"
    for f in files:
        img = engine.io.read(f)
        ref = _pil_rgb(f)
        assert img.modality == "histology" and img.units == "RGB8" and img.dtype == "uint8", f
        assert img.shape == ref.shape == (ref.shape[0], ref.shape[1], 3), f
        if size is not None:
            assert img.shape[:2] == size, f
        assert img.levels == (ref.shape[:2],) and img.downsamples == (1.0,)
        assert img.spacing is None and img.mpp is None, f  # the shared PNGs carry no pixel size
        assert img.metadata["mpp_source"].startswith("unknown")
        np.testing.assert_array_equal(img.array, ref, err_msg=str(f))
        np.testing.assert_array_equal(img.read_region(0, -7, 20, 64, 48), _crop(ref, -7, 20, 64, 48))
        img.close()


def test_miccai_rgba_alpha_dropped(data_dir):
    f = sorted(data_dir.glob("histo/miccai2015_seg/*.png"))[0]
    with PILImage.open(f) as im:
        assert im.mode == "RGBA"
        raw = np.asarray(im)
    img = engine.io.read(f)
    np.testing.assert_array_equal(img.array, raw[..., :3])
    assert "alpha" in img.metadata


def test_mpp_option_overrides(data_dir):
    f = data_dir / "histo/crchisto/img1/img1.png"
    img = engine.io.read(f, mpp=0.5, sfreq=100.0)  # another reader's option is ignored
    assert img.spacing == (0.5, 0.5) and img.mpp == 0.5
    assert "option" in img.metadata["mpp_source"]
    with pytest.raises(ReadError, match="img1.png.*mpp"):
        engine.io.read(f, mpp=-1)


# ----------------------------------------------------------------------------- TIFF fixtures
@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> np.ndarray:
    """A 1900 x 2700 H&E mosaic from MoNuSeg (not square, not a multiple of the tile size)."""
    data = Path(os.environ.get("LATENT_SHARED_DATA", REPO.parent / "shared" / "data"))
    tiles = [_pil_rgb(p) for p in sorted((data / "histo/monuseg").glob("*.png"))[:6]]
    mosaic = np.concatenate([np.concatenate(tiles[:3], 1), np.concatenate(tiles[3:6], 1)], 0)
    return np.ascontiguousarray(mosaic[:1900, :2700])


def _pyramid(ref):
    return [ref, np.ascontiguousarray(ref[::2, ::2]), np.ascontiguousarray(ref[::4, ::4])]


@pytest.fixture(scope="module")
def tiffs(ref, tmp_path_factory):
    d = tmp_path_factory.mktemp("histo")
    lv = _pyramid(ref)
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


@pytest.mark.parametrize("name", ["subifd", "multipage", "bigtiff", "ome", "svs"])
@pytest.mark.parametrize("eager", [False, True], ids=["lazy", "eager"])
def test_tiff_regions_equal_written_arrays(tiffs, ref, name, eager, monkeypatch):
    if not eager:  # every level, level 0 included, read tile by tile from the file
        monkeypatch.setattr("engine.io.histology.EAGER_PIXELS", 0)
    img = engine.io.read(tiffs[name])
    try:
        assert (img.array is not None) == eager and img.metadata["eager"] == eager
        assert img.modality == "histology" and img.units == "RGB8" and img.dtype == "uint8"
        assert img.shape == (1900, 2700, 3)
        n = 1 if name == "bigtiff" else 3 if name != "svs" else 2
        written = _pyramid(ref) if name != "svs" else [ref, _pyramid(ref)[2]]
        assert len(img.levels) == n
        assert img.levels == tuple(a.shape[:2] for a in written[:n])
        np.testing.assert_allclose(img.downsamples, [1.0, 2.0, 4.0][:n] if name != "svs" else [1.0, 4.0], rtol=2e-3)
        for level in range(n) if not eager else [0]:
            _check_regions(img, level, written[level])
        if eager:
            np.testing.assert_array_equal(img.array, ref)
    finally:
        img.close()


def test_tiff_metadata_and_mpp(tiffs):
    img = engine.io.read(tiffs["subifd"])
    assert img.spacing is None and img.metadata["compression"] == "deflate"
    assert img.metadata["tile_size"] == [256, 256] and img.metadata["reader"] == "tifffile"
    assert "pyramidal" in img.metadata["format"]
    img = engine.io.read(tiffs["bigtiff"])
    assert "BigTIFF" in img.metadata["format"] and img.metadata["planar"] == "separate"
    img = engine.io.read(tiffs["ome"])
    assert img.metadata["format"].startswith("OME-TIFF")
    np.testing.assert_allclose(img.spacing, (0.26, 0.25))  # (row = Y, col = X), nm converted
    assert "OME" in img.metadata["mpp_source"]
    img = engine.io.read(tiffs["cm"])
    np.testing.assert_allclose(img.spacing, (0.5, 0.5))
    assert "cm" in img.metadata["mpp_source"] and img.metadata["tile_size"] is None
    np.testing.assert_array_equal(img.read_region(0, 100, 60, 300, 200), img.array[60:260, 100:400])
    img = engine.io.read(tiffs["dpi72"])
    assert img.spacing is None and "72 dpi" in img.metadata["mpp_source"]
    img = engine.io.read(tiffs["dpi72"], mpp=(0.3, 0.31))
    assert img.spacing == (0.3, 0.31)


def test_aperio_svs_through_openslide(tiffs, ref, tmp_path):
    img = engine.io.read(tiffs["svs"])
    assert img.metadata["reader"] == "openslide" and img.metadata["vendor"] == "aperio"
    assert img.spacing == (0.5, 0.5) and img.metadata["objective_power"] == 20.0
    assert img.metadata["tile_size"] == [256, 256]
    img.close()
    with pytest.raises(ReadError, match="closed"):
        img.read_region(1, 0, 0, 10, 10)
    # the same bytes named .tif: recognised as Aperio, same pixels and mpp
    tif = tmp_path / "aperio.tif"
    tif.write_bytes(tiffs["svs"].read_bytes())
    img2 = engine.io.read(tif)
    assert img2.spacing == (0.5, 0.5)
    np.testing.assert_array_equal(img2.read_region(0, 2600, 1850, 200, 100), _crop(ref, 2600, 1850, 200, 100))


def test_openslide_non_integer_downsample(tmp_path, ref):
    """1001 x 1203 over 251 x 301: OpenSlide's downsample is 3.99..., not 4.

    OpenSlide then places level pixels at a sub-pixel offset and resamples them
    (bilinear), so level 1 is close to, not equal to, the stored level; level 0 is exact.
    A one-pixel shift would give a mean difference above 20 grey levels.
    """
    base = np.ascontiguousarray(ref[:1001, :1203])
    low = np.ascontiguousarray(base[::4, ::4])
    p = tmp_path / "odd.svs"
    with tifffile.TiffWriter(p) as tw:
        tw.write(base, tile=(256, 256), photometric="rgb", metadata=None,
                 description=f"{APERIO}1203x1001 (256x256) RAW|AppMag = 40|MPP = 0.25")
        tw.write(np.ascontiguousarray(base[::16, ::16]), photometric="rgb", metadata=None,
                 description=f"{APERIO}1203x1001 -> 76x63")
        tw.write(low, tile=(256, 256), photometric="rgb", metadata=None,
                 description=f"{APERIO}1203x1001 -> 301x251|MPP = 0.25")
    img = engine.io.read(p, mpp=None)
    assert img.metadata["reader"] == "openslide" and img.spacing == (0.25, 0.25)
    assert img.levels == ((1001, 1203), (251, 301)) and 3.99 < img.downsamples[1] < 4.0
    _check_regions(img, 0, base)
    got = img.read_region(1, 40, 30, 200, 180).astype(int)
    assert np.abs(got - low[30:210, 40:240]).mean() < 8
    np.testing.assert_array_equal(img.read_region(1, 290, 240, 30, 30)[11:, 11:], 0)  # outside: zero


def test_jpeg_tiles_match_tifffile(tiffs):
    img = engine.io.read(tiffs["jpeg"])
    assert img.metadata["compression"] == "jpeg" and img.metadata["tile_size"] == [128, 128]
    with tifffile.TiffFile(tiffs["jpeg"]) as tf:  # the library read directly
        levels = [lv.asarray() for lv in tf.series[0].levels]
    assert len(levels) == 3
    for i, a in enumerate(levels):
        _check_regions(img, i, a)


def test_jpeg_strips_with_shared_tables(tmp_path, ref, monkeypatch):
    """libtiff (through Pillow) writes abbreviated JPEG strips plus one JPEGTables tag."""
    monkeypatch.setattr("engine.io.histology.EAGER_PIXELS", 0)
    p = tmp_path / "libtiff_jpeg.tif"
    PILImage.fromarray(ref[:700, :900]).save(p, compression="jpeg", quality=80)
    with tifffile.TiffFile(p) as tf:
        assert tf.pages[0].jpegtables is not None and not tf.pages[0].is_tiled
        expected = tf.pages[0].asarray()
    img = engine.io.read(p)
    assert img.metadata["compression"] == "jpeg" and "rows_per_strip" in img.metadata
    _check_regions(img, 0, expected)


def test_region_reader_threads(tiffs, ref):
    img = engine.io.read(tiffs["multipage"])
    boxes = [(x, y, 300, 200) for x in range(0, 2700, 450) for y in range(0, 1900, 380)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: img.read_region(1, *b), boxes))
    for b, g in zip(boxes, got):
        np.testing.assert_array_equal(g, _crop(ref[::2, ::2], *b))
    with pytest.raises(ValueError, match="level 3 out of range"):
        img.read_region(3, 0, 0, 4, 4)


def test_large_tiff_is_read_lazily(tmp_path, ref):
    """8000 x 8000 x 3 (192 MB) level: opening and one region must stay far below that."""
    import imagecodecs

    tile = np.ascontiguousarray(ref[:256, :256])
    enc = imagecodecs.jpeg8_encode(tile, level=75)
    dec = imagecodecs.jpeg8_decode(enc)
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, data=(enc for _ in range(32 * 32)), shape=(8000, 8000, 3), dtype="uint8",
                     tile=(256, 256), compression="jpeg", photometric="rgb", metadata=None)
    level_bytes = 8000 * 8000 * 3
    tracemalloc.start()
    try:
        img = engine.io.read(path)
        _, peak_open = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        region = img.read_region(0, 3000, 2900, 512, 700)
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert img.array is None and img.metadata["eager"] is False
    assert img.shape == (8000, 8000, 3)
    assert peak_open < level_bytes / 20, peak_open
    assert peak_read < level_bytes / 20, peak_read
    np.testing.assert_array_equal(region, np.tile(dec, (32, 32, 1))[2900:3600, 3000:3512])
    np.testing.assert_array_equal(img.read_region(0, 7900, 7950, 200, 100)[50:, 100:], 0)
    img.close()


# ----------------------------------------------------------------------------- conversions
def test_png_conversions_known_answers(tmp_path):
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    PILImage.fromarray(grey, "L").save(tmp_path / "grey.png")
    np.testing.assert_array_equal(engine.io.read(tmp_path / "grey.png").array, np.stack([grey] * 3, -1))
    g16 = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 257 + 3)
    PILImage.fromarray(g16).save(tmp_path / "grey16.png")
    img = engine.io.read(tmp_path / "grey16.png")
    np.testing.assert_array_equal(img.array[..., 1], (g16 >> 8).astype(np.uint8))  # high byte rule
    assert "high byte" in img.metadata["conversion"]
    pal = PILImage.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    pal.putpalette([10, 20, 30, 200, 100, 50, 1, 2, 3] + [0] * 759)
    pal.save(tmp_path / "pal.png")
    np.testing.assert_array_equal(engine.io.read(tmp_path / "pal.png").array,
                                  [[[10, 20, 30], [200, 100, 50]], [[1, 2, 3], [200, 100, 50]]])
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., :3] = 100
    rgba[..., 3] = [[255, 0], [128, 255]]
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    got = engine.io.read(tmp_path / "alpha.png").array
    np.testing.assert_array_equal(got[:, :, 0], [[100, 255], [177, 100]])  # (100*128 + 255*127) / 255 = 177.2


def test_png_phys_and_jpeg(tmp_path, ref):
    tile = ref[:64, :80]
    PILImage.fromarray(tile).save(tmp_path / "phys.png", dpi=(25400 / 0.5, 25400 / 0.5))
    img = engine.io.read(tmp_path / "phys.png")
    np.testing.assert_allclose(img.spacing, (0.5, 0.5), rtol=1e-5)
    assert "pHYs" in img.metadata["mpp_source"]
    PILImage.fromarray(tile).save(tmp_path / "phys72.png", dpi=(72, 72))
    img = engine.io.read(tmp_path / "phys72.png")
    assert img.spacing is None and "default" in img.metadata["mpp_source"]
    PILImage.fromarray(tile).save(tmp_path / "tile.jpg", quality=90)
    img = engine.io.read(tmp_path / "tile.jpg")
    assert img.metadata["format"] == "JPEG" and img.shape == (64, 80, 3)
    np.testing.assert_array_equal(img.array, _pil_rgb(tmp_path / "tile.jpg"))


def test_tiff_conversions(tmp_path, ref):
    a = np.ascontiguousarray(ref[:300, :400])
    tifffile.imwrite(tmp_path / "grey.tif", a[..., 1], tile=(128, 128), photometric="minisblack", metadata=None)
    np.testing.assert_array_equal(engine.io.read(tmp_path / "grey.tif").read_region(0, 0, 0, 400, 300),
                                  np.repeat(a[..., 1:2], 3, -1))
    tifffile.imwrite(tmp_path / "rgb16.tif", a.astype(np.uint16) * 257, tile=(128, 128), photometric="rgb",
                     metadata=None)
    np.testing.assert_array_equal(engine.io.read(tmp_path / "rgb16.tif").array, a)
    rgba = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], -1)
    rgba[:10, :, 3] = 0
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, tile=(128, 128), photometric="rgb",
                     extrasamples=["unassalpha"], metadata=None)
    got = engine.io.read(tmp_path / "rgba.tif").array
    np.testing.assert_array_equal(got[10:], a[10:])
    assert (got[:10] == 255).all()
    tifffile.imwrite(tmp_path / "mw.tif", a[..., 0], photometric="miniswhite", metadata=None)
    np.testing.assert_array_equal(engine.io.read(tmp_path / "mw.tif").array[..., 2], 255 - a[..., 0])
    idx = (a[..., 0] % 3).astype(np.uint8)
    cmap = np.zeros((3, 256), np.uint16)
    cmap[:, :3] = [[65535, 0, 30000], [0, 65535, 30000], [0, 0, 30000]]
    tifffile.imwrite(tmp_path / "pal.tif", idx, photometric="palette", colormap=cmap, metadata=None)
    lut = np.array([[255, 0, 0], [0, 255, 0], [117, 117, 117]], np.uint8)  # 30000 >> 8 = 117
    np.testing.assert_array_equal(engine.io.read(tmp_path / "pal.tif").array, lut[idx])
    # three greyscale OME channel pages shown as R, G, B; ImageJ pixel size in its own unit
    tifffile.imwrite(tmp_path / "cyx.ome.tif", np.moveaxis(a, -1, 0), photometric="minisblack",
                     tile=(128, 128), metadata={"axes": "CYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
    img = engine.io.read(tmp_path / "cyx.ome.tif")
    assert img.spacing == (0.5, 0.5)
    np.testing.assert_array_equal(img.array, a)
    tifffile.imwrite(tmp_path / "ij.tif", a, imagej=True, photometric="rgb", resolution=(1 / 0.3, 1 / 0.3),
                     metadata={"unit": "um"})
    img = engine.io.read(tmp_path / "ij.tif")
    np.testing.assert_allclose(img.spacing, (0.3, 0.3))
    assert "ImageJ" in img.metadata["mpp_source"]
    tifffile.imwrite(tmp_path / "float.tif", a.astype(np.float32), photometric="rgb", metadata=None)
    with pytest.raises(ReadError, match="float.tif.*float32"):
        engine.io.read(tmp_path / "float.tif")


# ----------------------------------------------------------------------------- damage
def _flip(data: bytes, start: int, n: int = 64) -> bytes:
    b = bytearray(data)
    for i in range(start, start + n):
        b[i] ^= 0x5A
    return bytes(b)


def test_damaged_files_raise_read_error(data_dir, tiffs, tmp_path):
    png = (data_dir / "histo/monuseg/TCGA-2Z-A9J9-01A-01-TS1.png").read_bytes()
    svs = tiffs["svs"].read_bytes()
    tif = tiffs["cm"].read_bytes()  # deflate strips: damaged data is detectable
    with tifffile.TiffFile(tiffs["cm"]) as tf:
        strip = tf.pages[0].dataoffsets[5]
    bigpng = b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
        for t, d in [(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)),
                     (b"IDAT", zlib.compress(b"\x00" * 1000)), (b"IEND", b"")])
    cases = {
        "truncated.png": png[: len(png) // 2],
        "flipped.png": _flip(png, len(png) // 2),
        "empty.png": b"",
        "notes.png": b"patient notes, not an image\n" * 20,
        "renamed_png.tif": png,
        "truncated.tif": tif[: len(tif) // 3],
        "flipped.tif": _flip(tif, strip + 20),
        "header_flipped.tif": tif[:4] + b"\xff\xff\xff\x7f" + tif[8:],
        "truncated.svs": svs[: len(svs) // 2],
        "bomb.png": bigpng,
        "random.tif": b"II*\x00" + bytes(range(256)) * 8,
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ReadError) as exc:
            img = engine.io.read(p)
            img.read_region(0, 0, 0, *img.shape[1::-1])  # lazily opened: the pixels must fail
        assert name in str(exc.value), (name, str(exc.value))
        assert "\n" not in str(exc.value)
    # the reader itself (not only the registry) names the file for non-image content
    with pytest.raises(ReadError, match="notes.png"):
        read_histology(tmp_path / "notes.png")


def test_damaged_tile_in_lazy_level_is_read_error(tmp_path, ref, monkeypatch):
    """A bad tile found only when a region is read later is a ReadError, too."""
    monkeypatch.setattr("engine.io.histology.EAGER_PIXELS", 0)  # as if it were a whole slide
    big = np.ascontiguousarray(ref[:1024, :1280])
    p = tmp_path / "lazy.tif"
    tifffile.imwrite(p, big, tile=(256, 256), compression="zlib", compressionargs={"level": 1}, photometric="rgb", metadata=None)
    with tifffile.TiffFile(p) as tf:
        off = tf.pages[0].dataoffsets[-1]  # the bottom-right tile
    p.write_bytes(_flip(p.read_bytes(), off + 30))
    img = engine.io.read(p)
    assert img.array is None
    np.testing.assert_array_equal(img.read_region(0, 0, 0, 300, 300), big[:300, :300])
    with pytest.raises(ReadError, match="lazy.tif.*tile"):
        img.read_region(0, 1200, 1000, 100, 100)
    img.close()


# ----------------------------------------------------------------------------- CLI
def _info(path, *extra):
    return subprocess.run([sys.executable, "-m", "engine", "info", "--json", *extra, str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def test_cli_info_json(data_dir, tiffs):
    r = _info(data_dir / "histo/crchisto/img1/img1.png")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["modality"] == "histology" and d["shape"] == [500, 500, 3] and d["spacing"] is None
    r = _info(tiffs["ome"])
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["modality"] == "histology" and d["shape"] == [1900, 2700, 3]
    assert d["levels"] == [[1900, 2700], [950, 1350], [475, 675]]
    np.testing.assert_allclose(d["spacing"], [0.26, 0.25])


def test_cli_damaged_exit_2(tmp_path, data_dir):
    p = tmp_path / "cut.png"
    p.write_bytes((data_dir / "histo/monuseg/TCGA-2Z-A9J9-01A-01-TS1.png").read_bytes()[:5000])
    r = _info(p)
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "cut.png" in lines[0], r.stderr


def test_uncompressed_single_strip_read_by_rows(tmp_path, ref, monkeypatch):
    """One 1900-row strip: a region reads only its own rows, not the whole strip."""
    monkeypatch.setattr("engine.io.histology.EAGER_PIXELS", 0)
    p = tmp_path / "one_strip.tif"
    tifffile.imwrite(p, ref, photometric="rgb", rowsperstrip=ref.shape[0], metadata=None)
    be = tmp_path / "rgb16_be.tif"
    tifffile.imwrite(be, ref[:200, :300].astype(">u2") * 257, photometric="rgb", byteorder=">", metadata=None)
    img = engine.io.read(p)
    tracemalloc.start()
    try:
        got = img.read_region(0, 2650, 1000, 100, 120)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < ref.nbytes / 10, peak  # 120 of 1900 rows, about 1 MB of 15 MB
    np.testing.assert_array_equal(got, _crop(ref, 2650, 1000, 100, 120))
    _check_regions(img, 0, ref)
    _check_regions(engine.io.read(be), 0, ref[:200, :300])
