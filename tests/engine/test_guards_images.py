"""Issue 20 (PNG/JPEG/TIFF part): header dimensions are checked against the data."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import engine.io as eio
from engine.errors import CorruptFileError
from tests.engine import guard_image_files as gen
from tests.engine.dicom_helpers import REPO

pytestmark = pytest.mark.skipif(not os.path.exists(gen.SRC), reason="shared histology PNG missing")

CASES = {
    "tall.png": (gen.png_tall, r"tall\.png.*truncated"),
    "huge.jpg": (gen.jpeg_huge, r"huge\.jpg.*23000"),
    "tilewidth.tif": (lambda p: gen.tiff_tag(p, 322, 2 ** 32 - 1), r"tilewidth\.tif"),
    "tileheight.tif": (lambda p: gen.tiff_tag(p, 323, "size"), r"tileheight\.tif"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_absurd_header_is_refused(tmp_path, name):
    make, pattern = CASES[name]
    bad = tmp_path / name
    make(bad)
    with pytest.raises(CorruptFileError, match=pattern):
        img = eio.read(bad)
        img.array  # noqa: B018 - the data access that used to zero-pad / decode 5 GB


def test_untouched_png_still_reads():
    assert eio.read(gen.SRC).array.ndim == 3


@pytest.mark.parametrize("name", ["tall.png", "huge.jpg", "tilewidth.tif"])
def test_cli_info_exits_2_with_one_error_line(tmp_path, name):
    bad = tmp_path / name
    CASES[name][0](bad)
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "engine", "info", str(bad)], check=False,
                          capture_output=True, text=True, timeout=30, cwd=REPO, env=env)
    errors = [ln for ln in proc.stderr.splitlines() + proc.stdout.splitlines() if ln.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1 and name in errors[0]
