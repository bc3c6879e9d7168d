"""The fuzz harness's own verdicts: a hang is killed with its grandchildren, the oracle flags
invalid "ok" data, and a case is rebuilt byte for byte from (seed, family, index)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

from fuzzing.oracle import access_and_check  # noqa: E402
from fuzzing.runner import make_case, preload  # noqa: E402
from fuzzing.seeds import DATA, build_seeds  # noqa: E402
from fuzzing.worker import finish_case, start_case  # noqa: E402

from engine.data import Signal  # noqa: E402

MITDB = DATA / "ecg/mitdb"
pytestmark = pytest.mark.skipif(not (MITDB / "100.hea").is_file(), reason="shared data not present")

# the looping 54-byte .atr of tests/engine/test_guards_signals.py: wfdb.rdann never returns on it,
# so the reader's own bounded worker (10 s) is still running when the harness's limit is reached
LOOPING_ATR = bytes.fromhex("005817fc23232074696d65207265736f6c7574696f6e3a207836300000ecffffffff"
                            "010000580afc23232064616d616765640a040000")


def test_hang_is_reported_and_the_worker_group_killed(tmp_path):
    preload()
    for ext in ("hea", "dat"):
        shutil.copy(MITDB / f"100.{ext}", tmp_path / f"100.{ext}")
    (tmp_path / "100.atr").write_bytes(LOOPING_ATR)
    files = {n: str(tmp_path / n) for n in ("100.hea", "100.dat", "100.atr")}
    proc, recv, t0 = start_case(str(tmp_path / "100.hea"), "wfdb", {}, files, mem_mb=3072)
    ready = recv.poll(2.0)
    kind, detail, _, _ = finish_case(proc, recv, t0, 2.0, timed_out=not ready)
    assert kind == "hang", (kind, detail)
    assert _live_members(proc.pid) == []  # the reader's own guarded grandchild was killed too


def _live_members(pgid: int) -> list[int]:
    """Processes of group *pgid* that are not zombies (SIGKILL is immediate; reaping by init is not)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                out.append(int(d.name))
    return out


def test_intact_record_is_ok(tmp_path):
    preload()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(MITDB / f"100.{ext}", tmp_path / f"100.{ext}")
    files = {n: str(tmp_path / n) for n in ("100.hea", "100.dat", "100.atr")}
    proc, recv, t0 = start_case(str(tmp_path / "100.hea"), "wfdb", {}, files, mem_mb=3072)
    assert recv.poll(60)
    kind, detail, _, _ = finish_case(proc, recv, t0, 60)
    assert kind == "ok", detail


def _sig(x, **meta):
    return Signal.from_array(np.asarray(x, np.float32), sfreq=100.0, modality="eeg", metadata=meta)


def test_oracle_flags_non_finite_and_oversized(tmp_path):
    f = tmp_path / "x.txt"
    f.write_bytes(b"0" * 10_000)
    files = {"x.txt": f}
    x = np.zeros((2, 2000))
    assert access_and_check(_sig(x), "text", files)[0] is None
    x[1, 1500] = np.inf
    assert "non-finite" in access_and_check(_sig(x), "text", files)[0]
    x[1, 1500] = np.nan
    assert "non-finite" in access_and_check(_sig(x), "text", files)[0]  # NaN only where documented
    x[1, 1500] = np.inf
    assert "non-finite" in access_and_check(_sig(x, invalid_samples="NaN"), "wfdb", files)[0]
    big = np.zeros((3, 4000))  # 12000 samples from a 10000-byte file
    assert "bytes" in access_and_check(_sig(big), "text", files)[0]


def test_oracle_accepts_nan_only_at_stored_invalid_codes(tmp_path):
    """WFDB invalid samples read as NaN pass only where the signal file stores the format's code."""
    import engine.io

    for ext in ("hea", "dat"):
        shutil.copy(MITDB / f"100.{ext}", tmp_path / f"100.{ext}")
    dat = bytearray((tmp_path / "100.dat").read_bytes())
    frame = 400  # format 212, two signals: 3 bytes a frame; signal 1 = byte 0 + low nibble of byte 1
    dat[3 * frame] = 0x00
    dat[3 * frame + 1] = (dat[3 * frame + 1] & 0xF0) | 0x08  # -2048: the invalid-sample code
    (tmp_path / "100.dat").write_bytes(bytes(dat))
    files = {n: tmp_path / n for n in ("100.hea", "100.dat")}
    sig = engine.io.read(str(tmp_path / "100.hea"))
    x = sig.read(0, 1000)
    assert np.isnan(x[0, frame]) and np.isnan(x).sum() == 1
    problem, note = access_and_check(sig, "wfdb", files)
    assert problem is None and "NaN" in note
    moved = x.copy()
    moved[0, frame], moved[1, 10] = 0.0, np.nan  # a NaN the file does not store
    fake = Signal.from_array(np.concatenate([moved, sig.read(1000, sig.n_samples)], 1), sfreq=sig.sfreq,
                             modality="ecg", metadata=sig.metadata)
    problem, _ = access_and_check(fake, "wfdb", files)
    assert problem and "invalid-sample codes" in problem


def test_case_is_rebuilt_exactly(tmp_path):
    seeds = build_seeds(tmp_path / "seeds")
    for family in ("png", "wfdb", "text"):
        a = make_case(seeds, family, 7, 3, tmp_path / "a")
        b = make_case(seeds, family, 7, 3, tmp_path / "b")
        assert a[0].mutations == b[0].mutations
        for name in a[3]:
            assert Path(a[3][name]).read_bytes() == Path(b[3][name]).read_bytes()


def test_oracle_flags_grey_padded_jpeg(tmp_path, monkeypatch):
    """Independently of the reader's entropy count: a flat grey-128 bottom band is libjpeg's padding."""
    import io
    import struct

    from PIL import Image as PILImage

    import engine.io.histology.raster as raster
    from engine.io import read

    src = DATA / "histo/crchisto/img1/img1.png"
    if not src.is_file():
        pytest.skip("shared data not present")
    buf = io.BytesIO()
    PILImage.open(src).convert("RGB").save(buf, "JPEG", quality=90)
    ok = tmp_path / "ok.jpg"
    ok.write_bytes(buf.getvalue())
    b = bytearray(buf.getvalue())
    i = b.index(b"\xff\xc0")
    h = struct.unpack(">H", b[i + 5:i + 7])[0]
    b[i + 5:i + 7] = struct.pack(">H", h + 64)
    tall = tmp_path / "tall.jpg"
    tall.write_bytes(bytes(b))
    monkeypatch.setattr(raster, "_check_jpeg_tail", lambda *a: None)  # the reader before its fix
    assert access_and_check(read(str(ok)), "jpeg", {"ok.jpg": ok})[0] is None
    problem = access_and_check(read(str(tall)), "jpeg", {"tall.jpg": tall})[0]
    assert problem is not None and "grey" in problem
