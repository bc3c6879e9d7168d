"""Issue 20 (DICOM part): absurd header fields are refused before any pixel access."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pydicom
import pytest

from engine.errors import CorruptFileError
from engine.io.dicom import read_dicom
from tests.engine.dicom_helpers import LIDC, REPO

SRC = "000011.dcm"


def _edited(data_dir, tmp_path, name, **fields):
    ds = pydicom.dcmread(data_dir / LIDC / SRC)
    for key, value in fields.items():
        setattr(ds, key, value)
    out = tmp_path / name
    ds.save_as(out)
    return out


def test_number_of_frames_1e9_is_refused_fast(data_dir, tmp_path):
    bad = _edited(data_dir, tmp_path, "frames.dcm", NumberOfFrames=10 ** 9)
    t0 = time.perf_counter()
    with pytest.raises(CorruptFileError, match=r"frames\.dcm.*NumberOfFrames"):
        read_dicom(bad)
    assert time.perf_counter() - t0 < 5  # no per-frame objects were built


@pytest.mark.parametrize("slope", ["1e308", "-1e308", "0"])
def test_absurd_rescale_slope_is_refused(data_dir, tmp_path, slope):
    bad = _edited(data_dir, tmp_path, "slope.dcm", RescaleSlope=slope)
    with pytest.raises(CorruptFileError, match=r"slope\.dcm.*RescaleSlope"):
        read_dicom(bad)


@pytest.mark.parametrize("spacing", [[0, 0], [-1, -1], [0.7, 0]])
def test_pixel_spacing_zero_or_negative_is_refused(data_dir, tmp_path, spacing):
    bad = _edited(data_dir, tmp_path, "spacing.dcm", PixelSpacing=spacing)
    with pytest.raises(CorruptFileError, match=r"spacing\.dcm.*PixelSpacing"):
        read_dicom(bad)


def test_slice_thickness_negative_is_refused(data_dir, tmp_path):
    bad = _edited(data_dir, tmp_path, "thick.dcm", SliceThickness=-1)
    with pytest.raises(CorruptFileError, match=r"thick\.dcm.*SliceThickness"):
        read_dicom(bad)


def test_rows_larger_than_the_file_holds_is_refused(data_dir, tmp_path):
    bad = _edited(data_dir, tmp_path, "rows.dcm", Rows=60000)
    with pytest.raises(CorruptFileError, match=r"rows\.dcm.*(Rows|bytes)"):
        read_dicom(bad)


def test_untouched_file_still_reads(data_dir, tmp_path):
    ok = _edited(data_dir, tmp_path, "ok.dcm")
    assert read_dicom(ok).shape == (1, 512, 512)


@pytest.mark.parametrize("fields", [{"NumberOfFrames": 10 ** 9}, {"RescaleSlope": "1e308"},
                                    {"PixelSpacing": [0, 0]}])
def test_cli_info_exits_2_with_one_error_line(data_dir, tmp_path, fields):
    bad = _edited(data_dir, tmp_path, "cli.dcm", **fields)
    env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "engine", "info", str(bad)], check=False,
                          capture_output=True,
                          text=True, timeout=30, cwd=REPO, env=env)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() + proc.stdout.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "cli.dcm" in errors[0]
