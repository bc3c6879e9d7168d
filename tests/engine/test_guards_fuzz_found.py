"""Issue 20: defects the reader fuzz harness (benchmarks/fuzz_readers.py) found, each on a file
generated from a shared real file: refused with CorruptFileError naming the file, by the reader
and by ``python -m engine info`` (exit 2, one ``error:`` line)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import guard_image_files as gen
import numpy as np
import pytest

from engine.errors import CorruptFileError
from engine.io import read

DATA = gen.DATA
MITDB = DATA / "ecg/mitdb"
EDF = DATA / "eeg/eegmmidb/S001R04.edf"
BONN = DATA / "eeg/bonn/B_O/O001.txt"
pytestmark = pytest.mark.skipif(not (MITDB / "100.hea").is_file() or not EDF.is_file() or not BONN.is_file(),
                                reason="shared data not present")


def _record(tmp_path: Path) -> Path:
    for ext in ("hea", "dat", "atr"):
        shutil.copy(MITDB / f"100.{ext}", tmp_path / f"100.{ext}")
    return tmp_path / "100.hea"


def _wfdb_gain(tmp_path, gain="1e-45"):
    hea = _record(tmp_path)
    lines = hea.read_text().split("\n")
    parts = lines[2].split()
    parts[2] = gain  # signal 2's gain (ADU/mV): every sample becomes +-inf in float32
    lines[2] = " ".join(parts)
    hea.write_text("\n".join(lines))
    return hea


def _edf_duration(tmp_path, value=b"-8388608"):
    raw = bytearray(EDF.read_bytes())
    raw[244:252] = value.ljust(8)
    out = tmp_path / "dur.edf"
    out.write_bytes(bytes(raw))
    return out


def _edf_samples_per_record(tmp_path, signal=49, value=b"32767"):
    """Fuzz seed 2027 edf #1270: one of the 64 EEG signals (160 per record) claims 32767 samples
    per record; read as it stands, every channel is served at 32767 Hz, ~50x what the file stores."""
    raw = bytearray(EDF.read_bytes())
    ns = int(raw[252:256])
    off = 256 + ns * 216 + 8 * (signal - 1)
    raw[off:off + 8] = value.ljust(8)
    out = tmp_path / "spr.edf"
    out.write_bytes(bytes(raw))
    return out


def _bdf_duration(tmp_path):
    """A BDF (24-bit) made from the shared EDF's header and first records, record duration 0."""
    raw = EDF.read_bytes()
    ns = int(raw[252:256])
    hdr = 256 * (ns + 1)
    spr = [int(raw[256 + ns * 216 + 8 * i:256 + ns * 216 + 8 * (i + 1)]) for i in range(ns)]
    rec = 2 * sum(spr)
    head = bytearray(raw[:hdr])
    head[0:8] = b"\xffBIOSEMI"
    head[192:236] = b"24BIT".ljust(44)
    head[236:244] = b"2".ljust(8)
    head[244:252] = b"0".ljust(8)
    body = b"".join(int.from_bytes(raw[hdr + 2 * k:hdr + 2 * k + 2], "little", signed=True)
                    .to_bytes(3, "little", signed=True) for k in range(2 * rec // 2))
    out = tmp_path / "dur.bdf"
    out.write_bytes(bytes(head) + body)
    return out


def _text_value(tmp_path, value):
    lines = BONN.read_text().splitlines()
    lines[1000] = value
    out = tmp_path / "O001.txt"
    out.write_text("\n".join(lines) + "\n")
    return out


def _text_long_line(tmp_path):
    lines = BONN.read_text().splitlines()
    lines.insert(3000, "9" * 1_000_000)
    out = tmp_path / "O001.txt"
    out.write_text("\n".join(lines) + "\n")
    return out


def _text_wide(tmp_path):
    out = tmp_path / "wide.csv"
    out.write_text("\n".join([",".join(["1"] * 100_000)] * 3) + "\n")
    return out


def _tiff(tmp_path, tag, value):
    out = tmp_path / "bad.tif"
    gen.tiff_tag(out, tag, value)
    return out


def _tiff_bytecount(tmp_path, k, value, out=None):
    """A tiled uncompressed TIFF of a shared PNG with TileByteCounts[k] (every one for k=None) set to
    *value* (tifffile reads a short count of uncompressed data as the full tile, i.e. the next tile's bytes)."""
    import struct

    if out is None:
        out = _tiff(tmp_path, 277, 3)  # SamplesPerPixel rewritten to its own value: the file as tifffile wrote it
    b = bytearray(out.read_bytes())
    ifd = struct.unpack("<I", b[4:8])[0]
    for e in range(ifd + 2, ifd + 2 + 12 * struct.unpack("<H", b[ifd:ifd + 2])[0], 12):
        tag, typ, count, at = struct.unpack("<HHII", b[e:e + 12])
        if tag == 325:
            width = 2 if typ == 3 else 4
            for j in range(count) if k is None else (k,):
                b[at + j * width:at + (j + 1) * width] = value.to_bytes(width, "little")
            if k is None:  # every tile empty: the offsets too
                for e2 in range(ifd + 2, ifd + 2 + 12 * struct.unpack("<H", b[ifd:ifd + 2])[0], 12):
                    if struct.unpack("<H", b[e2:e2 + 2])[0] == 324:
                        at2 = struct.unpack("<I", b[e2 + 8:e2 + 12])[0]
                        b[at2:at2 + 4 * count] = bytes(4 * count)
            out.write_bytes(bytes(b))
            return out
    raise AssertionError("no TileByteCounts")


APERIO = ("Aperio Image Library v11.2.1 \r\n500x500 [0,0 500x500] (128x128) JPEG/RGB Q=70"
          "|AppMag = 20|MPP = 0.4990")


def _svs(tmp_path, mpp=b"0.4990", name="slide.svs"):
    """An Aperio-described tiled JPEG TIFF of a shared PNG (OpenSlide reads it as an Aperio slide)."""
    import tifffile
    from PIL import Image as PILImage

    arr = np.asarray(PILImage.open(gen.SRC).convert("RGB"))
    out = tmp_path / name
    tifffile.imwrite(out, arr, tile=(128, 128), photometric="rgb", compression="jpeg",
                     description=APERIO.replace("0.4990", mpp.decode()), metadata=None)
    return out


def _svs_tag_count(tmp_path):
    """The slide's ImageDescription (tag 270) count set to ~4.2e9 values beyond the file's end.

    Without the directory walk this file passed as ok (exit 0). The fuzz case that found it
    (seed 1, svs #45: damaged tag counts) made libtiff ask GLib for 4.26 GB, which aborts the
    process (SIGABRT) when the allocation fails."""
    import struct

    out = _svs(tmp_path, name="count.svs")
    b = bytearray(out.read_bytes())
    ifd = struct.unpack("<I", b[4:8])[0]
    for e in range(ifd + 2, ifd + 2 + 12 * struct.unpack("<H", b[ifd:ifd + 2])[0], 12):
        if struct.unpack("<H", b[e:e + 2])[0] == 270:
            b[e + 4:e + 8] = struct.pack("<I", 0xFE000000)
            out.write_bytes(bytes(b))
            return out
    raise AssertionError("no ImageDescription")


CASES = {
    "svs_no_tile_holds_data": (lambda t: _tiff_bytecount(t, None, 0, _svs(t, name="sparse.svs")), "none holds data"),
    "tiff_tile_bytecount_0": (lambda t: _tiff_bytecount(t, 6, 0), "offset .* and 0 bytes"),
    "tiff_tile_bytecount_short": (lambda t: _tiff_bytecount(t, 6, 100), "holds 100 bytes"),
    "tiff_samples_per_pixel_2e31": (lambda t: _tiff(t, 277, 2**31), "SamplesPerPixel"),
    "tiff_bits_per_sample_999": (lambda t: _tiff(t, 258, 999), "BitsPerSample"),
    "wfdb_gain_1e-45": (_wfdb_gain, "beyond the float32 range"),
    "wfdb_baseline_1e50": (lambda t: _wfdb_gain(t, "200(" + "1" + "0" * 50 + ")"), "beyond the float32 range"),
    "edf_negative_duration": (_edf_duration, "duration"),
    "edf_nan_duration": (lambda t: _edf_duration(t, b"nan"), "duration"),
    "bdf_zero_duration": (_bdf_duration, "duration"),
    "edf_samples_per_record_32767": (_edf_samples_per_record, "samples per record.*x the samples the file stores"),
    "text_inf": (lambda t: _text_value(t, "inf"), "line 1001"),
    "text_nan": (lambda t: _text_value(t, "nan"), "line 1001"),
    "text_beyond_float32": (lambda t: _text_value(t, "1e39"), "line 1001"),
    "text_1mb_line": (_text_long_line, "line 3001"),
    "text_100k_columns": (_text_wide, "columns"),
}
SFREQ = {"text_inf": 173.61, "text_nan": 173.61, "text_beyond_float32": 173.61, "text_1mb_line": 173.61,
         "text_100k_columns": 173.61}


@pytest.mark.parametrize("case", sorted(CASES))
def test_reader_refuses(tmp_path, case):
    make, reason = CASES[case]
    path = make(tmp_path)
    opts = {"sfreq": SFREQ[case]} if case in SFREQ else {}
    with pytest.raises(CorruptFileError, match=reason) as err:
        data = read(str(path), **opts)
        if hasattr(data, "read_region"):
            data.read_region(0, 0, 0, 64, 64)
        else:
            data.read(0, data.n_samples)
    assert path.name in str(err.value)


def _mixed_rate_edf(path, rates, seconds=10):
    import edfio

    rng = np.random.default_rng(0)
    signals = [edfio.EdfSignal(rng.normal(0, 20, int(r * seconds)), sampling_frequency=r, label=f"EEG C{i}",
                               physical_dimension="uV", physical_range=(-500, 500)) for i, r in enumerate(rates)]
    edfio.Edf(signals).write(path)
    return path


def test_mixed_rate_edf_limit_from_a_real_writer(tmp_path):
    """edfio-written mixed-rate EDFs: 2x inflation (one of three signals at 4x the rate) reads at the
    highest rate; 16.6x (one of 18 at 200x) is refused with the reason; the limit is 16x."""
    sig = read(str(_mixed_rate_edf(tmp_path / "mixed.edf", [160, 160, 640])))
    assert sig.sfreq == 640.0 and len(sig.channels) == 3 and sig.n_samples == 6400
    assert np.isfinite(sig.read(0, 6400)).all()
    with pytest.raises(CorruptFileError, match=r"signal 18 .* 2000 samples per record.* 17x"):
        read(str(_mixed_rate_edf(tmp_path / "inflated.edf", [10] * 17 + [2000])))


@pytest.mark.parametrize("case", ["tiff_samples_per_pixel_2e31", "wfdb_gain_1e-45", "edf_negative_duration",
                                  "text_inf", "text_1mb_line"])
def test_cli_info_exit_2_one_error_line(tmp_path, case):
    path = CASES[case][0](tmp_path)
    args = [sys.executable, "-m", "engine", "info", str(path)]
    if case in SFREQ:
        args += ["--sfreq", str(SFREQ[case])]
    proc = subprocess.run(args, check=False, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and path.name in errors[0], proc.stderr[-2000:]


def test_wfdb_invalid_sample_is_documented_nan(tmp_path):
    """The MIT format-212 invalid-sample code (-2048) reads as NaN, said in the metadata; the rest is finite."""
    hea = _record(tmp_path)
    dat = tmp_path / "100.dat"
    b = bytearray(dat.read_bytes())
    frame = 1000  # one frame = 2 samples = 3 bytes in format 212
    b[3 * frame] = 0x00
    b[3 * frame + 1] = (b[3 * frame + 1] & 0xF0) | 0x08  # signal 1 digital value -2048
    dat.write_bytes(bytes(b))
    sig = read(str(hea))
    x = sig.read(frame - 2, frame + 3)
    assert np.isnan(x[0, 2]) and np.isfinite(x[1]).all() and np.isfinite(np.delete(x[0], 2)).all()
    assert "NaN" in sig.metadata["invalid_samples"]


def test_intact_files_still_read(tmp_path):
    assert np.isfinite(read(str(_record(tmp_path))).read(0, 5000)).all()
    assert read(str(BONN), sfreq=173.61).data.shape == (1, 4097)
    assert read(str(EDF)).sfreq == 160.0
    ok = tmp_path / "ok.tif"
    gen.tiff_tag(ok, 277, 3)  # the value tifffile wrote: unchanged
    assert read(str(ok)).read_region(0, 0, 0, 64, 64).shape == (64, 64, 3)


def test_svs_infinite_mpp_is_unknown_not_inf(tmp_path):
    img = read(str(_svs(tmp_path, b"inf   ")))
    assert img.metadata.get("vendor") == "aperio"
    assert img.spacing is None
    good = read(str(_svs(tmp_path, name="good.svs")))
    assert good.spacing == pytest.approx((0.499, 0.499))


def test_tiff_tag_count_beyond_file_refused_before_libtiff(tmp_path):
    """Run in a subprocess: a regression could abort the process (SIGABRT), which would end pytest."""
    path = _svs_tag_count(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "engine", "info", str(path)], check=False, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and path.name in errors[0] and "tag 270" in errors[0], proc.stderr[-2000:]


def test_tile_bytecount_beyond_file_refused_before_openslide(tmp_path):
    """TileByteCounts[5] = 2**32 - 1 in an Aperio slide: libtiff (OpenSlide) asks GLib for 4 GB for the
    tile. Under the fuzz worker's 3 GB limit that aborted the process (fuzz seed 2, svs #397); without
    a limit it allocates 4 GB and then reports a read error. Now refused before OpenSlide opens it.
    In a subprocess, as a regression may abort it."""
    path = _tiff_bytecount(tmp_path, 5, 2**32 - 1, _svs(tmp_path, name="bytecount.svs"))
    proc = subprocess.run([sys.executable, "-m", "engine", "info", str(path)], check=False, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and path.name in errors[0] and "tile/strip 5" in errors[0], proc.stderr[-2000:]


def _svs_tile_length(tmp_path, value):
    import struct

    out = _svs(tmp_path, name="tilelength.svs")
    b = bytearray(out.read_bytes())
    ifd = struct.unpack("<I", b[4:8])[0]
    for e in range(ifd + 2, ifd + 2 + 12 * struct.unpack("<H", b[ifd:ifd + 2])[0], 12):
        if struct.unpack("<H", b[e:e + 2])[0] == 323:
            b[e + 2:e + 12] = struct.pack("<HII", 4, 1, value)
            out.write_bytes(bytes(b))
            return out
    raise AssertionError("no TileLength")


@pytest.mark.parametrize("value", [128 + 2**29, 128 + 2**27, 2**16 + 16])
def test_svs_huge_tile_length_refused_before_openslide(tmp_path, value):
    """TileLength 2**29 + 128 in an Aperio slide (fuzz seed 2026, svs #6383: one flipped bit): OpenSlide
    asks GLib for a 4 x 128 x TileLength-byte tile (275 GB) and GLib aborts the process, also for
    ``info``. Now refused by the directory walk before OpenSlide opens it. In a subprocess."""
    path = _svs_tile_length(tmp_path, value)
    proc = subprocess.run([sys.executable, "-m", "engine", "info", str(path)], check=False, capture_output=True,
                          text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and path.name in errors[0] and f"tile length {value}" in errors[0], proc.stderr[-2000:]
