"""Histology reader: pixel-type conversions with known answers, damaged files, and the CLI."""
from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage

import engine.io
from engine.errors import ReadError
from engine.io.histology import read_histology
from histology_helpers import REPO, pil_rgb, ref, tiffs  # noqa: F401 (fixtures)


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
    np.testing.assert_array_equal(img.array, pil_rgb(tmp_path / "tile.jpg"))


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
