"""Cross-format checks of the reader registry and `python -m engine info`.

Every corrupted input (truncated, bytes flipped in the header, empty, wrong extension,
non-medical content) must give exit code 2 and one ``error:`` line naming the file,
never a traceback. Real shared files are the starting point of every corruption.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.errors import ReadError

REPO = Path(__file__).resolve().parents[2]


def run_info(argv, capsys):
    rc = main(["info", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


# --- what the registry reads -------------------------------------------------------------

GOOD = [
    # (relative path, options, modality, shape check)
    ("ct/single/CT_small.dcm", [], "ct", lambda s: s[-2:] == [128, 128]),
    ("ct/dcmqi_liver_ct3", [], "ct", lambda s: s == [3, 512, 512]),
    ("histo/crchisto/img1/img1.png", [], "histology", lambda s: s == [500, 500, 3]),
    ("histo/miccai2015_seg/image01.png", [], "histology", lambda s: s[2] == 3),
    ("ecg/mitdb/100", [], "ecg", lambda s: s == [2, 650000]),
    ("ecg/mitdb/100.hea", [], "ecg", lambda s: s == [2, 650000]),
    ("eeg/eegmmidb/S001R03.edf", [], "eeg", lambda s: s == [64, 20000]),
    ("eeg/bonn/E_S/S001.txt", ["--sfreq", "173.61"], "eeg", lambda s: s == [1, 4097]),
]


@pytest.mark.parametrize("rel,opts,modality,shape_ok", GOOD, ids=[g[0] for g in GOOD])
def test_info_json_on_shared_files(data_dir, capsys, rel, opts, modality, shape_ok):
    rc, out, err = run_info([data_dir / rel, *opts, "--json"], capsys)
    assert rc == 0, err
    d = json.loads(out)
    assert d["modality"] == modality
    assert shape_ok(d["shape"]), d["shape"]
    if modality in ("ecg", "eeg"):
        assert d["sfreq"] > 0 and len(d["channels"]) == d["shape"][0]
        assert isinstance(d["n_annotations"], int)
    else:
        assert d["spacing"] is None or all(s > 0 for s in d["spacing"])


def test_info_text_output_mentions_key_facts(data_dir, capsys):
    rc, out, _ = run_info([data_dir / "ecg/mitdb/100"], capsys)
    assert rc == 0
    assert "360 Hz" in out and "MLII" in out and "annotations" in out


def test_info_subprocess_exit_codes(data_dir, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "engine", "info", "--json", str(data_dir / "ct/single/CT_small.dcm")],
                        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["modality"] == "ct"
    missing = tmp_path / "nope.edf"
    bad = subprocess.run([sys.executable, "-m", "engine", "info", str(missing)],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:") and "nope.edf" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


# --- corrupted inputs ------------------------------------------------------------------------

def _truncate(src: Path, dst: Path, frac: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * frac)])
    return dst


def _overwrite(src: Path, dst: Path, offset: int, garbage: bytes) -> Path:
    data = bytearray(src.read_bytes())
    data[offset : offset + len(garbage)] = garbage
    dst.write_bytes(bytes(data))
    return dst


def _copy_record(data_dir: Path, rec: str, dst_dir: Path) -> Path:
    for ext in (".hea", ".dat", ".atr"):
        shutil.copy(data_dir / f"ecg/mitdb/{rec}{ext}", dst_dir / f"{rec}{ext}")
    return dst_dir / rec


def corrupted_inputs(data_dir: Path, tmp: Path) -> dict[str, Path]:
    ct = data_dir / "ct/single/CT_small.dcm"
    png = data_dir / "histo/crchisto/img1/img1.png"
    edf = data_dir / "eeg/eegmmidb/S001R03.edf"
    cases: dict[str, Path] = {}
    # truncated
    cases["truncated-dicom"] = _truncate(ct, tmp / "trunc.dcm", 0.4)
    cases["truncated-png"] = _truncate(png, tmp / "trunc.png", 0.5)
    # an EDF cut inside its first data record (one cut later is read up to its last complete record)
    cases["truncated-edf"] = _truncate(edf, tmp / "trunc.edf", (256 * 65 + 5000) / edf.stat().st_size)
    d = tmp / "wfdb_trunc"; d.mkdir()
    rec = _copy_record(data_dir, "100", d)
    _truncate(rec.with_suffix(".dat"), rec.with_suffix(".dat"), 0.3)
    cases["truncated-wfdb"] = rec
    # corrupt header bytes
    cases["header-dicom"] = _overwrite(ct, tmp / "hdr.dcm", 128, b"XXXX\xff\xff\xff\xff" * 8)
    cases["header-png"] = _overwrite(png, tmp / "hdr.png", 12, b"\x00IHDR garbage!!!")
    cases["header-edf"] = _overwrite(edf, tmp / "hdr.edf", 236, b"xx!!")  # number of data records
    d = tmp / "wfdb_hdr"; d.mkdir()
    rec = _copy_record(data_dir, "100", d)
    rec.with_suffix(".hea").write_text("100 2 360 650000\n100.dat 999 200 11 1024 995 -22131 0 MLII\n")
    cases["header-wfdb"] = rec
    # empty
    for ext in (".dcm", ".png", ".edf", ".hea", ".txt"):
        p = tmp / f"empty{ext}"; p.write_bytes(b"")
        cases[f"empty{ext}"] = p
    # wrong extension
    cases["png-as-dcm"] = Path(shutil.copy(png, tmp / "image.dcm"))
    cases["dicom-as-edf"] = Path(shutil.copy(ct, tmp / "scan.edf"))
    cases["edf-as-png"] = Path(shutil.copy(edf, tmp / "rec.png"))
    cases["png-as-tif"] = Path(shutil.copy(png, tmp / "image.tif"))
    # non-medical content
    p = tmp / "letter.txt"; p.write_text("Dear colleague,\nplease find the report attached.\n")
    cases["prose-txt"] = p
    p = tmp / "archive.zip"; p.write_bytes(b"PK\x03\x04" + bytes(200))
    cases["zip"] = p
    p = tmp / "notes.dcm"; p.write_text("this is not a DICOM file\n" * 20)
    cases["text-as-dcm"] = p
    p = tmp / "random.bin"; p.write_bytes(bytes(range(256)) * 40)
    cases["random-bin"] = p
    return cases


def test_corrupted_inputs_give_one_error_line(data_dir, tmp_path, capsys):
    failures = []
    for name, path in corrupted_inputs(data_dir, tmp_path).items():
        opts = ["--sfreq", "100"] if path.suffix == ".txt" else []
        rc, out, err = run_info([path, *opts, "--json"], capsys)
        lines = err.strip().splitlines()
        ok = (rc == 2 and len(lines) == 1 and lines[0].startswith("error:")
              and path.name in lines[0] and "Traceback" not in err and out == "")
        if not ok:
            failures.append(f"{name}: rc={rc} out={out[:80]!r} err={err[:300]!r}")
    assert not failures, "\n".join(failures)


def test_corrupted_input_via_subprocess_has_no_traceback(data_dir, tmp_path):
    bad = _overwrite(data_dir / "eeg/eegmmidb/S001R03.edf", tmp_path / "bad.edf", 236, b"xx!!")
    r = subprocess.run([sys.executable, "-m", "engine", "info", str(bad)],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 2
    assert r.stderr.startswith("error:") and "bad.edf" in r.stderr and "Traceback" not in r.stderr


def test_read_raises_read_error_naming_the_file(tmp_path):
    from engine.io import read

    p = tmp_path / "x.dcm"
    p.write_bytes(b"")
    with pytest.raises(ReadError) as exc:
        read(p)
    assert "x.dcm" in str(exc.value) and "empty" in str(exc.value)


def test_inputs_are_never_modified(data_dir, tmp_path):
    from engine._shared.files import sha256_file
    from engine.io import read

    files = [data_dir / "ct/single/CT_small.dcm", data_dir / "histo/crchisto/img1/img1.png",
             data_dir / "ecg/mitdb/100.dat", data_dir / "eeg/eegmmidb/S001R03.edf"]
    before = {f: (sha256_file(f), f.stat().st_mtime_ns) for f in files}
    for f in files:
        obj = read(f)
        if hasattr(obj, "read"):
            obj.read(0, 1000)
    assert {f: (sha256_file(f), f.stat().st_mtime_ns) for f in files} == before


def test_opened_releases_the_file_also_on_error(tmp_path):
    """engine.io.opened closes a lazily read tiled TIFF when the block raises."""
    import tifffile

    from engine.io import opened

    path = tmp_path / "tiled.tif"
    rgb = np.random.default_rng(0).integers(0, 255, (600, 700, 3), dtype=np.uint8)
    tifffile.imwrite(path, rgb, tile=(256, 256), photometric="rgb", metadata=None)
    with pytest.raises(RuntimeError, match="inside"):
        with opened(path) as img:
            source = img.closer.__self__  # the lazy tile reader behind the Image
            np.testing.assert_array_equal(img.read_region(0, 10, 20, 30, 40), rgb[20:60, 10:40])
            assert not source._closed
            raise RuntimeError("inside the block")
    assert source._closed
