"""Histology reader: the shared PNGs against Pillow, and every TIFF layout written here read back
region by region (lazy and eager, OpenSlide, JPEG, threads, memory). (Conversions, damaged input
and the CLI: test_io_histology_damaged.py.)"""
from __future__ import annotations

import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

import engine.io
from engine.errors import ReadError
from histology_helpers import APERIO, check_regions, crop_ref, pil_rgb, pyramid_of, ref, tiffs  # noqa: F401 (fixtures)


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
        ref = pil_rgb(f)
        assert img.modality == "histology" and img.units == "RGB8" and img.dtype == "uint8", f
        assert img.shape == ref.shape == (ref.shape[0], ref.shape[1], 3), f
        if size is not None:
            assert img.shape[:2] == size, f
        assert img.levels == (ref.shape[:2],) and img.downsamples == (1.0,)
        assert img.spacing is None and img.mpp is None, f  # the shared PNGs carry no pixel size
        assert img.metadata["mpp_source"].startswith("unknown")
        np.testing.assert_array_equal(img.array, ref, err_msg=str(f))
        np.testing.assert_array_equal(img.read_region(0, -7, 20, 64, 48), crop_ref(ref, -7, 20, 64, 48))
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
        written = pyramid_of(ref) if name != "svs" else [ref, pyramid_of(ref)[2]]
        assert len(img.levels) == n
        assert img.levels == tuple(a.shape[:2] for a in written[:n])
        np.testing.assert_allclose(img.downsamples, [1.0, 2.0, 4.0][:n] if name != "svs" else [1.0, 4.0], rtol=2e-3)
        for level in range(n) if not eager else [0]:
            check_regions(img, level, written[level])
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
    np.testing.assert_array_equal(img2.read_region(0, 2600, 1850, 200, 100), crop_ref(ref, 2600, 1850, 200, 100))


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
    check_regions(img, 0, base)
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
        check_regions(img, i, a)


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
    check_regions(img, 0, expected)


def test_region_reader_threads(tiffs, ref):
    img = engine.io.read(tiffs["multipage"])
    boxes = [(x, y, 300, 200) for x in range(0, 2700, 450) for y in range(0, 1900, 380)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: img.read_region(1, *b), boxes))
    for b, g in zip(boxes, got):
        np.testing.assert_array_equal(g, crop_ref(ref[::2, ::2], *b))
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
    np.testing.assert_array_equal(got, crop_ref(ref, 2650, 1000, 100, 120))
    check_regions(img, 0, ref)
    check_regions(engine.io.read(be), 0, ref[:200, :300])
