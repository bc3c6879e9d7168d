"""DICOM reader, damaged and unsupported input: every failure is a ReadError naming the file,
and the CLI reports it in one line."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pydicom
import pytest

import engine.io
from engine.errors import CorruptFileError, ReadError, UnsupportedFormatError
from engine.io.dicom import read_dicom

from dicom_helpers import LIDC, LUNG_DX, REPO, copy_slices, corrupt_copy


@pytest.mark.parametrize("kind, error, words", [
    ("truncated", CorruptFileError, "truncated"),
    ("truncated-header", CorruptFileError, "truncated"),
    ("flipped-header", CorruptFileError, "damaged"),
    ("empty", ReadError, "empty"),
    ("png", UnsupportedFormatError, ""),
])
def test_damaged_file_raises_read_error_naming_it(data_dir, tmp_path, kind, error, words):
    bad = corrupt_copy(kind, data_dir / LIDC / "000026.dcm", tmp_path / f"bad_{kind}.dcm")
    for reader in (read_dicom, engine.io.read):
        with pytest.raises(ReadError) as err:
            reader(bad)
        msg = str(err.value)
        assert bad.name in msg and "\n" not in msg and "Traceback" not in msg
        assert words in msg
    assert isinstance(err.value, error) or kind == "png"  # the registry names PNG itself
    with pytest.raises(error):
        read_dicom(bad)


def test_random_damage_never_escapes_as_a_library_error(data_dir, tmp_path, recwarn):
    # Flipped bytes and cuts anywhere in a real file: either a correct-shaped image
    # (the damage hit a value that does not matter) or a ReadError, nothing else.
    rng = np.random.default_rng(7)
    raw = (data_dir / "ct/single/CT_small.dcm").read_bytes()
    n_errors = 0
    for i in range(45):
        b = bytearray(raw)
        if i % 3 == 0:
            b = b[: int(rng.integers(1, len(b)))]
        else:
            at = rng.integers(128, 3000, size=int(rng.integers(1, 9)))
            for j in at:
                b[j] ^= int(rng.integers(1, 256))
        bad = tmp_path / f"fuzz{i}.dcm"
        bad.write_bytes(bytes(b))
        try:
            img = read_dicom(bad)
        except ReadError as exc:
            n_errors += 1
            assert bad.name in str(exc) and "\n" not in str(exc)
        else:
            assert img.array.ndim == 3 and img.array.dtype == np.float32
    assert n_errors >= 15  # the cuts alone are 15 damaged files
    assert not [w for w in recwarn if "pydicom" in str(w.filename)]  # no chatter for the CLI


def test_damaged_slice_in_a_series_is_skipped_and_named(data_dir, tmp_path):
    """Like Weasis and Slicer: the readable slices load, the truncated one is listed with the reason."""
    files = copy_slices(data_dir, ["000026.dcm", "000011.dcm", "000062.dcm"], tmp_path / "s")
    whole = read_dicom(tmp_path / "s")
    corrupt_copy("truncated", files[1], files[1])
    img = read_dicom(tmp_path / "s")
    assert img.shape[0] == 2 and img.metadata["skipped_files"] == 1
    (entry,) = img.metadata["skipped"]
    assert entry["file"] == "000011.dcm" and "truncated" in entry["reason"]
    bad_uid = pydicom.dcmread(data_dir / LIDC / "000011.dcm", stop_before_pixels=True).SOPInstanceUID
    assert bad_uid not in img.metadata["sop_instance_uids"]
    for k, uid in enumerate(img.metadata["sop_instance_uids"]):
        assert np.array_equal(img.array[k], whole.array[whole.metadata["sop_instance_uids"].index(uid)])
    # every slice damaged: nothing to show, the first damage is the error
    for f in files:
        corrupt_copy("truncated", data_dir / LIDC / f.name, f)
    with pytest.raises(CorruptFileError, match=r"\.dcm.*truncated"):
        read_dicom(tmp_path / "s")
    # a damaged header is skipped while scanning, and counted
    for f in files:
        f.write_bytes((data_dir / LIDC / f.name).read_bytes())
    corrupt_copy("flipped-header", data_dir / LIDC / "000096.dcm", tmp_path / "s" / "000096.dcm")
    img = read_dicom(tmp_path / "s")
    assert img.shape[0] == 3 and img.metadata["skipped_files"] == 1
    assert img.metadata["skipped"][0]["file"] == "000096.dcm"


def test_inconsistent_slice_sizes(data_dir, tmp_path):
    files = copy_slices(data_dir, ["000026.dcm", "000011.dcm", "000062.dcm"], tmp_path)
    ds = pydicom.dcmread(files[2])
    ds.PixelData = np.ascontiguousarray(ds.pixel_array[::2, ::2]).tobytes()
    ds.Rows, ds.Columns = 256, 256
    ds.save_as(files[2])
    with pytest.raises(ReadError, match="different sizes.*512x512 in 2.*256x256 in 1"):
        read_dicom(tmp_path)


@pytest.mark.parametrize("ts", ["1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.110"])
def test_unsupported_compression(data_dir, tmp_path, ts):
    from pydicom.uid import RLELossless

    ds = pydicom.dcmread(data_dir / "ct/single/CT_small.dcm")
    ds.compress(RLELossless)
    mpeg2 = "1.2.840.10008.1.2.4.100"
    ds.file_meta.TransferSyntaxUID = mpeg2  # a syntax pydicom knows but cannot decode
    out = tmp_path / "odd.dcm"
    ds.save_as(out)
    # JPEG XL (….4.110) is unknown to pydicom 3.0, which refuses to write it: patch the bytes
    raw = out.read_bytes()
    assert raw.count(mpeg2.encode()) == 1
    out.write_bytes(raw.replace(mpeg2.encode(), ts.encode()))
    for reader in (read_dicom, engine.io.read):
        with pytest.raises(UnsupportedFormatError, match=r"odd\.dcm.*" + ts.replace(".", r"\.")):
            reader(out)


def test_missing_decoder_plugin_says_what_to_install():
    # pylibjpeg and pyjpegls (highdicom pulls it in) made unimportable before pydicom loads:
    # JPEG-LS then has no decoder at all
    code = ("import sys; sys.modules['pylibjpeg'] = None; sys.modules['jpeg_ls'] = None\n"
            "from pydicom.data import get_testdata_file\n"
            "from engine.io.dicom import read_dicom\n"
            "from engine.errors import UnsupportedFormatError\n"
            "try:\n    read_dicom(get_testdata_file('MR_small_jpeg_ls_lossless.dcm'))\n"
            "except UnsupportedFormatError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    msg = proc.stdout.strip()
    assert "MR_small_jpeg_ls_lossless.dcm" in msg and "JPEG-LS Lossless" in msg
    assert "install pylibjpeg with pylibjpeg-libjpeg" in msg


def test_folder_without_dicom(data_dir, tmp_path):
    shutil.copy(data_dir / LUNG_DX / "slices.csv", tmp_path / "slices.csv")
    (tmp_path / "notes").write_text("not dicom\n")
    with pytest.raises(ReadError, match="no DICOM files found"):
        engine.io.read(tmp_path)


def test_cli_info_json(data_dir):
    proc = subprocess.run([sys.executable, "-m", "engine", "info", "--json", str(data_dir / LUNG_DX / "CT")],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["modality"] == "ct" and d["shape"] == [30, 512, 512]
    assert d["spacing"] == pytest.approx([8.0, 0.646484375, 0.646484375]) and d["units"] == "HU"


def test_cli_error_on_damaged_file(data_dir, tmp_path):
    bad = corrupt_copy("truncated", data_dir / LIDC / "000026.dcm", tmp_path / "cut.dcm")
    proc = subprocess.run([sys.executable, "-m", "engine", "info", "--json", str(bad)],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "cut.dcm" in lines[0]
