"""Issue 20, signal readers: damaged files are refused with CorruptFileError naming the file,
within seconds, by the reader and by the CLI (exit 2, one ``error:`` line)."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from guard_image_files import DATA

from engine.errors import CorruptFileError
from engine.io import read

MITDB = DATA / "ecg/mitdb"
EDF = DATA / "eeg/eegmmidb/S001R04.edf"
pytestmark = pytest.mark.skipif(not (MITDB / "100.hea").is_file() or not EDF.is_file(),
                                reason="shared data not present")

# A 54-byte .atr written by wfdb.wrann (a '"' note "## time resolution: 360" at sample 0, then a
# note "## damaged") with one byte changed ('3' -> 'x'): wfdb.rdann's definition parser then
# never advances and loops forever (wfdb 4.x, annotation.interpret_defintion_annotations).
LOOPING_ATR = bytes.fromhex("005817fc23232074696d65207265736f6c7574696f6e3a207836300000ecffffffff"
                            "010000580afc23232064616d616765640a040000")


def _record(tmp_path: Path) -> Path:
    for ext in ("hea", "dat"):
        shutil.copy(MITDB / f"100.{ext}", tmp_path / f"100.{ext}")
    return tmp_path / "100.hea"


def _looping_atr(tmp_path):
    hea = _record(tmp_path)
    (tmp_path / "100.atr").write_bytes(LOOPING_ATR)
    return hea, tmp_path / "100.atr"


def _long_header_line(tmp_path):
    hea = _record(tmp_path)
    hea.write_text(hea.read_text() + "# " + "9" * 100_000 + "\n")
    return hea, hea


def _edf_field(tmp_path, field_offset, value: bytes, name="bad.edf"):
    dst = tmp_path / name
    raw = bytearray(EDF.read_bytes())
    ns = int(raw[252:256].decode().strip())
    at = 256 + ns * field_offset
    raw[at:at + 8] = value.ljust(8)
    dst.write_bytes(bytes(raw))
    return dst, dst


def _edf_phys_huge(tmp_path):
    return _edf_field(tmp_path, 104, b"1e308")


def _edf_phys_equal(tmp_path):
    raw = EDF.read_bytes()
    ns = int(raw[252:256].decode().strip())
    pmax = raw[256 + ns * 112:256 + ns * 112 + 8]
    return _edf_field(tmp_path, 104, pmax.strip())


def _edf_phys_nan(tmp_path):
    return _edf_field(tmp_path, 104, b"nan")


def _edf_dig_inverted(tmp_path):
    return _edf_field(tmp_path, 120, b"40000")


CASES = {"looping_atr": _looping_atr, "long_header_line": _long_header_line,
         "edf_phys_huge": _edf_phys_huge, "edf_phys_equal": _edf_phys_equal,
         "edf_phys_nan": _edf_phys_nan, "edf_dig_inverted": _edf_dig_inverted}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reader_refuses_within_seconds(tmp_path, case):
    path, named = CASES[case](tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(CorruptFileError) as err:
        sig = read(str(path))
        sig.data  # noqa: B018 - a lazy reader must fail here at the latest
    assert named.name in str(err.value)
    assert time.perf_counter() - t0 < 20


def test_missing_second_signal_name_is_made_consistent(tmp_path):
    """A damaged second signal line without its description: 2 channels, 2 names, 2 rows."""
    hea = _record(tmp_path)
    lines = hea.read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:7])
    hea.write_text("\n".join(lines) + "\n")
    sig = read(str(hea))
    assert len(sig.channels) == 2 == sig.data.shape[0]
    assert sig.channels[1] == "ch2"


def test_channel_count_mismatch_refused(tmp_path):
    hea = _record(tmp_path)
    lines = hea.read_text().splitlines()
    lines[0] = lines[0].replace("100 2 ", "100 3 ", 1)
    hea.write_text("\n".join(lines) + "\n")
    with pytest.raises(CorruptFileError, match="100.hea"):
        read(str(hea))


def _fif(tmp_path: Path, name: str, offset: int, value: int) -> tuple[Path, Path]:
    """A 2-s FIF recording (from the shared EDF) with one 32-bit big-endian field of its second tag
    (at byte 36: kind, type, size, next) overwritten."""
    import mne

    raw = mne.io.read_raw_edf(EDF, preload=True, verbose="error").crop(0, 2)
    fif = tmp_path / "rec_raw.fif"
    if not fif.exists():
        raw.save(fif, verbose="error")
    b = bytearray(fif.read_bytes())
    b[offset:offset + 4] = value.to_bytes(4, "big", signed=True)
    bad = tmp_path / name
    bad.write_bytes(bytes(b))
    return bad, bad


def _fif_tag_size_negative(tmp_path):
    return _fif(tmp_path, "size_raw.fif", 44, -16)  # size of the second tag


def _fif_tag_points_at_itself(tmp_path):
    return _fif(tmp_path, "self_raw.fif", 48, 36)  # "next" of the second tag = its own offset


CASES.update({"fif_tag_size_negative": _fif_tag_size_negative, "fif_tag_points_at_itself": _fif_tag_points_at_itself})


def test_fif_damaged_tag_refused(tmp_path):
    pytest.importorskip("mne")
    bad, _ = _fif_tag_size_negative(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(CorruptFileError, match="size_raw.fif"):
        read(str(bad))
    assert time.perf_counter() - t0 < 20
    sig = read(str(tmp_path / "rec_raw.fif"))  # the intact file still reads
    assert np.isfinite(sig.data).all()


@pytest.mark.parametrize("case", ["looping_atr", "long_header_line", "edf_phys_huge"])
@pytest.mark.parametrize("command", ["info", "denoise", "score-beats"])
def test_cli_exit_2_one_error_line(tmp_path, case, command):
    path, named = CASES[case](tmp_path)
    args = [sys.executable, "-m", "engine", command, str(path)]
    if command != "info":
        args += ["--out", str(tmp_path / "out")]
    proc = subprocess.run(args, check=False, capture_output=True, text=True, timeout=30,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and named.name in errors[0], proc.stderr[-2000:]
