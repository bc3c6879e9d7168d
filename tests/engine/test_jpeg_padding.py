"""Issue 20: a JPEG whose entropy data ends before its header's last block (SOF height or width
made larger, a marker inside the scan) is refused, not decoded with libjpeg's grey padding; real
JPEGs of every common layout still read, pixel for pixel as Pillow decodes them."""
from __future__ import annotations

import io
import struct
import subprocess
import sys
from pathlib import Path

import guard_image_files as gen
import numpy as np
import pytest
from PIL import Image

from engine.errors import CorruptFileError
from engine.io import read
from engine.io.histology.jpeg_scan import check_jpeg_rows

SRC = Path(gen.SRC)
pytestmark = pytest.mark.skipif(not SRC.is_file(), reason="shared data not present")

#: name -> (rows, cols, grey, Pillow save options): baseline/progressive, restart markers,
#: 4:2:0 / 4:2:2 / 4:4:4, greyscale, sizes that are not multiples of 8 or 16.
LAYOUTS = {
    "baseline-420": (224, 224, False, {"quality": 90}),
    "baseline-420-odd": (201, 157, False, {"quality": 90}),
    "baseline-444-odd": (203, 131, False, {"quality": 90, "subsampling": 0}),
    "baseline-422": (160, 200, False, {"quality": 80, "subsampling": 1}),
    "baseline-restart": (199, 171, False, {"quality": 90, "restart_marker_blocks": 3}),
    "baseline-optimized": (208, 96, False, {"quality": 30, "optimize": True}),
    "progressive-420-odd": (201, 157, False, {"quality": 85, "progressive": True}),
    "progressive-444": (128, 136, False, {"quality": 85, "progressive": True, "subsampling": 0}),
    "progressive-restart": (150, 150, False, {"quality": 85, "progressive": True, "restart_marker_rows": 1}),
    "grey-baseline-odd": (121, 77, True, {"quality": 90}),
    "grey-progressive": (96, 100, True, {"quality": 90, "progressive": True}),
}


def _jpeg(rows, cols, grey, opts) -> bytes:
    arr = np.asarray(Image.open(SRC).convert("RGB"))[:rows, :cols]
    buf = io.BytesIO()
    Image.fromarray(arr[..., 0] if grey else arr).save(buf, "JPEG", **opts)
    return buf.getvalue()


def _sof_resize(b: bytes, *, add_rows=0, add_cols=0) -> bytes:
    out = bytearray(b)
    i = 2
    while out[i + 1] not in (0xC0, 0xC1, 0xC2):
        i += 2 + struct.unpack(">H", out[i + 2:i + 4])[0]
    h, w = struct.unpack(">HH", out[i + 5:i + 9])
    out[i + 5:i + 9] = struct.pack(">HH", h + add_rows, w + add_cols)
    return bytes(out)


def _pillow(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_valid_jpeg_reads_as_pillow_decodes_it(tmp_path, layout):
    path = tmp_path / f"{layout}.jpg"
    path.write_bytes(_jpeg(*LAYOUTS[layout]))
    rows, cols = LAYOUTS[layout][:2]
    img = read(str(path))
    assert img.shape == (rows, cols, 3)
    assert np.array_equal(img.array, _pillow(path))
    check_jpeg_rows(str(path))  # the full count, not only behind the grey-tail gate


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_enlarged_sof_height_refused(tmp_path, layout):
    path = tmp_path / f"{layout}-tall.jpg"
    path.write_bytes(_sof_resize(_jpeg(*LAYOUTS[layout]), add_rows=40))  # 40 rows: beyond any MCU padding
    assert _pillow(path)[-1].mean() == pytest.approx(128, abs=2)  # what Pillow alone returns: grey rows
    with pytest.raises(CorruptFileError, match="JPEG data ends after") as err:
        read(str(path))
    assert path.name in str(err.value)


@pytest.mark.parametrize("layout", ["baseline-420-odd", "progressive-444", "grey-baseline-odd"])
def test_enlarged_sof_width_refused(tmp_path, layout):
    path = tmp_path / f"{layout}-wide.jpg"
    path.write_bytes(_sof_resize(_jpeg(*LAYOUTS[layout]), add_cols=64))
    with pytest.raises(CorruptFileError, match="JPEG data ends after") as err:
        read(str(path))
    assert path.name in str(err.value)


def test_eoi_inside_the_scan_refused(tmp_path):
    """An EOI marker written over the middle of a baseline scan: libjpeg pads the rest grey."""
    b = bytearray(_jpeg(*LAYOUTS["baseline-420"]))
    sos = b.index(b"\xff\xda")
    mid = (sos + len(b)) // 2
    b[mid:mid + 2] = b"\xff\xd9"
    path = tmp_path / "eoi-mid.jpg"
    path.write_bytes(bytes(b))
    with pytest.raises(CorruptFileError, match="JPEG data ends after") as err:
        read(str(path))
    assert path.name in str(err.value)


def test_real_grey_corner_still_reads(tmp_path):
    """A valid image whose last block really is grey 128 passes the gate and the full count."""
    arr = np.asarray(Image.open(SRC).convert("RGB"))[:100, :100].copy()
    arr[-20:, -20:] = 128
    path = tmp_path / "grey-corner.jpg"
    Image.fromarray(arr).save(path, "JPEG", quality=95)
    img = read(str(path))
    assert img.shape == (100, 100, 3) and np.array_equal(img.array, _pillow(path))


def test_cli_info_exit_2_one_error_line(tmp_path):
    path = tmp_path / "tall.jpg"
    path.write_bytes(_sof_resize(_jpeg(*LAYOUTS["progressive-420-odd"]), add_rows=300))
    proc = subprocess.run([sys.executable, "-m", "engine", "info", str(path)], check=False, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and path.name in errors[0] and "JPEG data ends after" in errors[0], proc.stderr[-2000:]
