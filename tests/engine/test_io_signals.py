"""Signal readers (WFDB, MNE formats, headerless text/NPY) against the libraries read directly.

Every reader goes through one shared check, :func:`check_signal`: shape, rate, names,
units, values, lazy windows equal to slices of the full read, annotations.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data import Signal
from engine.errors import ReadError
from engine.io import read

REPO = Path(__file__).resolve().parents[2]
BEATS = set("NLRBAaJSVrFejnE/fQ?")
MITDB = ("100", "101", "103", "105", "106", "109", "111", "113", "115", "116", "118", "119")


def check_signal(sig: Signal, ref: np.ndarray, *, sfreq: float, channels, units, modality: str,
                 atol: float, n_annotations: int | None = None, first_sample: int | None = None) -> None:
    """The shared round-trip check: *sig* equals *ref* ``(channels, samples)`` read by the library."""
    assert isinstance(sig, Signal)
    assert sig.modality == modality
    assert sig.shape == ref.shape, (sig.shape, ref.shape)
    assert sig.sfreq == pytest.approx(sfreq, rel=1e-9)
    assert tuple(sig.channels) == tuple(channels)
    assert tuple(sig.units) == ((units,) * len(channels) if isinstance(units, str) else tuple(units))
    full = sig.data
    assert full.dtype == np.float32 and full.shape == ref.shape
    np.testing.assert_allclose(full, ref, atol=atol, rtol=0)
    n = sig.n_samples
    for start, stop in ((0, 1), (0, 257), (n // 2 - 100, n // 2 + 1234), (n - 300, n), (n - 5, n + 50)):
        win = sig.read(start, stop)
        assert win.dtype == np.float32
        np.testing.assert_array_equal(win, full[:, max(start, 0):min(stop, n)])
    assert sig.read(10, 10).shape == (len(channels), 0)
    if n_annotations is not None:
        assert len(sig.annotations) == n_annotations
    if first_sample is not None:
        first = sig.annotations[0]
        assert first.sample == first_sample
        assert first.onset == pytest.approx(first_sample / sfreq, abs=1.5 / sfreq)


# --- WFDB -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rec100(data_dir):
    import wfdb

    base = str(data_dir / "ecg/mitdb/100")
    return wfdb.rdrecord(base), wfdb.rdann(base, "atr")


@pytest.mark.parametrize("suffix", ["", ".hea", ".dat", ".atr"])
def test_mitdb_100_every_path_form(data_dir, rec100, suffix):
    rec, ann = rec100
    sig = read(str(data_dir / "ecg/mitdb/100") + suffix)
    assert sig.sample_reader is not None and sig._data is None  # read lazily
    check_signal(sig, rec.p_signal.T, sfreq=360, channels=("MLII", "V5"), units="mV", modality="ecg",
                 atol=1e-6, n_annotations=len(ann.sample), first_sample=int(ann.sample[0]))
    assert sig.shape == (2, 650000)
    beats = [a for a in sig.annotations if a.description in BEATS]
    assert len(beats) == 2273
    assert [a.sample for a in sig.annotations] == [int(s) for s in ann.sample]
    assert [a.description for a in sig.annotations] == list(ann.symbol)
    assert sig.annotations[0].aux == "(N"  # NUL padding of aux_note stripped
    md = sig.metadata
    assert md["record"] == "100" and md["fmt"] == ["212", "212"] and md["adc_gain"] == [200.0, 200.0]
    assert md["baseline"] == [1024, 1024] and md["annotators"] == ["atr"]
    assert any("69 M" in c for c in md["comments"]) and any("Aldomet" in c for c in md["comments"])


@pytest.mark.parametrize("rec", MITDB)
def test_every_mitdb_record_header_window_annotations(data_dir, rec):
    import wfdb

    base = str(data_dir / "ecg/mitdb" / rec)
    hdr = wfdb.rdheader(base)
    sig = read(base)
    assert sig.modality == "ecg" and sig.channels[0] == "MLII"
    assert sig.shape == (hdr.n_sig, hdr.sig_len) and sig.sfreq == hdr.fs
    win = wfdb.rdrecord(base, sampfrom=123_456, sampto=130_000).p_signal.T
    np.testing.assert_allclose(sig.read(123_456, 130_000), win, atol=1e-6)
    ann = wfdb.rdann(base, "atr")
    assert len(sig.annotations) == len(ann.sample)
    assert sig.annotations[-1].sample == int(ann.sample[-1])


@pytest.mark.parametrize("rec", ["118e00", "118e_6", "bw", "ma"])
def test_nstdb_records(data_dir, rec):
    import wfdb

    base = data_dir / "ecg/nstdb" / rec
    ref = wfdb.rdrecord(str(base)).p_signal.T
    has_atr = base.with_suffix(".atr").exists()
    sig = read(str(base))
    names = ("MLII", "V1") if has_atr else ("noise1", "noise2")
    check_signal(sig, ref, sfreq=360, channels=names, units="mV", modality="ecg", atol=1e-6,
                 n_annotations=len(wfdb.rdann(str(base), "atr").sample) if has_atr else 0)
    if has_atr:
        assert "nst" in " ".join(sig.metadata["comments"])
    else:  # gain 0 in the header: flagged as uncalibrated
        assert sig.metadata["uncalibrated_channels"] == ["noise1", "noise2"]
        assert sig.metadata["annotators"] == []


def test_wfdb_modality_override_converts_to_microvolts(data_dir, rec100):
    rec, _ = rec100
    sig = read(str(data_dir / "ecg/mitdb/100"), modality="eeg")
    assert sig.modality == "eeg" and sig.units == ("uV", "uV")
    np.testing.assert_allclose(sig.read(0, 5000), rec.p_signal[:5000].T * 1000, atol=1e-3)


def test_wfdb_multi_segment_record(tmp_path):
    import wfdb

    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    for name, x in (("seg1", a), ("seg2", b)):
        wfdb.wrsamp(name, fs=100, units=["mV", "mV"], sig_name=["I", "II"], p_signal=x, fmt=["16", "16"],
                    adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(tmp_path))
    (tmp_path / "multi.hea").write_text("multi/2 2 100 500\nseg1 300\nseg2 200\n")
    sig = read(tmp_path / "multi")
    assert sig.metadata["segments"] == ["seg1", "seg2"]
    check_signal(sig, np.vstack([a, b]).T.astype(np.float32), sfreq=100, channels=("I", "II"), units="mV",
                 modality="ecg", atol=6e-4)


# --- MNE formats ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mmi(data_dir):
    import mne

    path = data_dir / "eeg/eegmmidb/S001R03.edf"
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    return path, raw


@pytest.mark.parametrize("run", ["S001R03", "S001R04"])
def test_eegmmidb_edf(data_dir, run):
    import mne

    path = data_dir / f"eeg/eegmmidb/{run}.edf"
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    sig = read(path)
    check_signal(sig, raw.get_data() * 1e6, sfreq=160, channels=raw.ch_names, units="uV", modality="eeg",
                 atol=1e-3, n_annotations=30, first_sample=0)
    assert sig.shape == (64, 20000)
    assert {a.description for a in sig.annotations} == {"T0", "T1", "T2"}
    assert all(4.0 <= a.duration <= 4.3 for a in sig.annotations)
    onsets = raw.annotations.onset - raw.first_time
    np.testing.assert_allclose([a.onset for a in sig.annotations], onsets)
    assert sig.channels[0] == "Fc5." and sig.metadata["clean_names"][0] == "FC5"
    assert "meas_date" in sig.metadata and sig.metadata["channel_types"] == {"eeg": 64}
    assert 20 < np.nanstd(sig.read(0, 1600)) < 200  # µV scale, not volts


@pytest.mark.parametrize("fmt", ["fif", "fif.gz", "vhdr", "set", "edf", "bdf"])
def test_mne_formats_round_trip(mmi, tmp_path, fmt):
    import mne

    src, raw = mmi
    ref = raw.get_data() * 1e6
    if fmt.startswith("fif"):
        out = tmp_path / f"x_raw.{fmt}"
        raw.save(out, verbose="error")
        atol = 1e-3  # FIF stores float32 volts
    elif fmt == "bdf":
        from engine.export.signals import write_edf

        out = write_edf(read(src), tmp_path / "x.bdf")  # edfio writes 24-bit BDF
        direct = mne.io.read_raw_bdf(out, preload=True, verbose="error").get_data() * 1e6
        np.testing.assert_allclose(direct, ref, atol=1e-3)
        atol = 1e-3
    else:
        pytest.importorskip({"vhdr": "pybv", "set": "eeglabio", "edf": "edfio"}[fmt])
        out = tmp_path / f"x.{fmt}"
        mne.export.export_raw(out, raw, verbose="error")
        atol = 0.02  # EDF export re-quantises to 16 bits
    sig = read(out)
    check_signal(sig, ref, sfreq=160, channels=raw.ch_names, units="uV", modality="eeg", atol=atol,
                 n_annotations=30, first_sample=0)
    descs = {a.description.split("/")[-1] for a in sig.annotations}  # BrainVision: "Comment/T0"
    assert descs == {"T0", "T1", "T2"}
    assert sig.metadata["format"] == {"fif": "FIF", "fif.gz": "FIF", "vhdr": "BrainVision", "set": "EEGLAB",
                                      "edf": "EDF", "bdf": "BDF"}[fmt]


def test_mne_long_recording_is_lazy(mmi, tmp_path):
    import mne

    _, raw = mmi
    long = mne.concatenate_raws([raw.copy() for _ in range(2)], verbose="error")
    out = tmp_path / "long_raw.fif"
    long.save(out, verbose="error")
    sig = read(out)
    assert sig._data is None and sig.sample_reader is not None and sig.n_samples == 40000
    np.testing.assert_allclose(sig.read(19990, 20010), long.get_data(start=19990, stop=20010) * 1e6, atol=1e-3)


def test_edf_ecg_written_from_mitdb_reads_as_ecg(data_dir, rec100, tmp_path):
    from engine.export.signals import write_edf

    rec, ann = rec100
    out = write_edf(read(data_dir / "ecg/mitdb/100"), tmp_path / "100.edf")
    sig = read(out)
    assert sig.modality == "ecg" and sig.channels == ("MLII", "V5") and sig.units == ("mV", "mV")
    # EDF keeps whole 1-s records: 650000 samples at 360 Hz are padded to 650160
    assert sig.n_samples == 650160
    np.testing.assert_allclose(sig.read(0, 650000), rec.p_signal.T, atol=1e-4)
    assert len(sig.annotations) == len(ann.sample)
    assert sig.annotations[1].sample == int(ann.sample[1])


# --- headerless text / NPY --------------------------------------------------------------------

@pytest.mark.parametrize("rel", ["E_S/S001.txt", "A_Z/Z001.txt", "C_N/N001.TXT"])
def test_bonn_segments(data_dir, rel):
    path = data_dir / "eeg/bonn" / rel
    sig = read(path, sfreq=173.61)
    check_signal(sig, np.loadtxt(path)[None, :], sfreq=173.61, channels=("ch1",), units="uV", modality="eeg",
                 atol=0, n_annotations=0)
    assert sig.shape == (1, 4097)


def test_bonn_without_sfreq_says_what_to_do(data_dir):
    path = data_dir / "eeg/bonn/E_S/S001.txt"
    with pytest.raises(ReadError, match="--sfreq") as info:
        read(path)
    assert "S001.txt" in str(info.value)


def test_text_variants(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 50)).round(4)
    (tmp_path / "h.csv").write_text("Fp1,Cz\n" + "\n".join(f"{a},{b}" for a, b in x.T))
    (tmp_path / "t.tsv").write_text("# comment\n\n" + "\n".join(f"{a}\t{b}" for a, b in x.T))
    (tmp_path / "w.txt").write_text("\n".join(f"  {a}   {b} " for a, b in x.T))
    sig = read(tmp_path / "h.csv", sfreq=100)
    check_signal(sig, x, sfreq=100, channels=("Fp1", "Cz"), units="uV", modality="eeg", atol=1e-6)
    for name in ("t.tsv", "w.txt"):
        sig = read(tmp_path / name, sfreq=100, channels="A,B", modality="ecg")
        check_signal(sig, x, sfreq=100, channels=("A", "B"), units="mV", modality="ecg", atol=1e-6)
    (tmp_path / "eu.csv").write_text("\n".join(f"{a};{b}".replace(".", ",") for a, b in x.T))
    sig = read(tmp_path / "eu.csv", sfreq=100)  # semicolons and decimal commas
    check_signal(sig, x, sfreq=100, channels=("ch1", "ch2"), units="uV", modality="eeg", atol=1e-6)
    sig = read(tmp_path / "w.txt", sfreq=100, units="V")  # stated in volts, returned in µV
    np.testing.assert_allclose(sig.data, x * 1e6, rtol=1e-6)
    assert sig.units == ("uV", "uV") and sig.metadata["source_units"] == "V"


@pytest.mark.parametrize("shape,transposed", [((500,), False), ((3, 500), False), ((500, 3), True)])
def test_npy_orientation_channels_are_the_shorter_axis(tmp_path, shape, transposed):
    arr = np.random.default_rng(4).normal(size=shape).astype(np.float64)
    np.save(tmp_path / "x.npy", arr)
    sig = read(tmp_path / "x.npy", sfreq=256)
    ref = np.atleast_2d(arr.T if transposed else arr)
    check_signal(sig, ref, sfreq=256, channels=tuple(f"ch{i + 1}" for i in range(ref.shape[0])), units="uV",
                 modality="eeg", atol=1e-6)


def test_text_errors_name_the_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2\n3,4\n5,oops\n")
    with pytest.raises(ReadError, match=r"bad\.csv.*line 3"):
        read(bad, sfreq=10)
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("1 2\n3\n")
    with pytest.raises(ReadError, match=r"line 2"):
        read(ragged, sfreq=10)
    np.save(tmp_path / "obj.npy", np.array(["a", "b"]))
    with pytest.raises(ReadError, match="obj.npy"):
        read(tmp_path / "obj.npy", sfreq=10)
    with pytest.raises(ReadError, match="positive"):
        read(bad, sfreq=-3)


# --- corrupted inputs -------------------------------------------------------------------------

def _corrupt_cases(data_dir: Path, tmp: Path):
    edf = (data_dir / "eeg/eegmmidb/S001R03.edf").read_bytes()
    (tmp / "truncated.edf").write_bytes(edf[: 256 * 65 + 100])  # header + not one complete record
    flipped = bytearray(edf)
    flipped[236:260] = bytes(b ^ 0x5A for b in flipped[236:260])  # record count / signal count
    (tmp / "flipped.edf").write_bytes(bytes(flipped))
    (tmp / "empty.edf").write_bytes(b"")
    (tmp / "picture.edf").write_bytes((data_dir / "histo/crchisto/img1/img1.png").read_bytes()[:5000])
    hea = (data_dir / "ecg/mitdb/100.hea").read_text().replace("100", "lonely")
    (tmp / "lonely.hea").write_text(hea)  # its lonely.dat does not exist
    (tmp / "short.hea").write_text(hea.replace("lonely", "short"))
    (tmp / "short.dat").write_bytes((data_dir / "ecg/mitdb/100.dat").read_bytes()[:40000])
    (tmp / "garbage.txt").write_text("1.0\n2.0\nthree\n4.0\n")
    (tmp / "empty.hea").write_bytes(b"")
    (tmp / "badfmt.hea").write_text(hea.replace("lonely", "badfmt").replace(" 212 ", " 999 "))
    shutil.copy(data_dir / "ecg/mitdb/100.dat", tmp / "badfmt.dat")
    return [
        ("badfmt", {}, "format"),
        ("truncated.edf", {}, "truncated"),
        ("flipped.edf", {}, "header"),
        ("empty.edf", {}, "empty"),
        ("picture.edf", {}, "PNG"),
        ("lonely.hea", {}, "lonely.dat"),
        ("lonely", {}, "lonely.dat"),
        ("short", {}, "truncated"),
        ("garbage.txt", {"sfreq": 100}, "line 3"),
        ("empty.hea", {}, "empty"),
    ]


def test_corrupt_files_raise_read_error_naming_the_file(data_dir, tmp_path):
    for name, opts, why in _corrupt_cases(data_dir, tmp_path):
        with pytest.raises(ReadError) as info:
            read(tmp_path / name, **opts)
        msg = str(info.value)
        assert name.split(".")[0] in msg and why in msg, msg


def test_truncated_fif_is_refused(mmi, tmp_path):
    _, raw = mmi
    out = tmp_path / "cut_raw.fif"
    raw.save(out, verbose="error")
    data = out.read_bytes()
    out.write_bytes(data[: len(data) // 2])
    with pytest.raises(ReadError, match="cut_raw.fif"):
        read(out)


# --- CLI --------------------------------------------------------------------------------------

def _info(*args):
    return subprocess.run([sys.executable, "-m", "engine", "info", "--json", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_cli_info_json_on_signals(data_dir, tmp_path):
    from engine.export.signals import write_edf

    r = _info(data_dir / "ecg/mitdb/100")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert (d["modality"], d["shape"], d["sfreq"], d["channels"], d["n_annotations"]) == \
        ("ecg", [2, 650000], 360.0, ["MLII", "V5"], 2274)
    shutil.copy(data_dir / "eeg/eegmmidb/S001R04.edf", tmp_path / "run4.edf")
    r = _info(tmp_path / "run4.edf")
    d = json.loads(r.stdout)
    assert (d["modality"], d["shape"], d["sfreq"], d["n_annotations"]) == ("eeg", [64, 20000], 160.0, 30)
    assert d["channels"][:2] == ["Fc5.", "Fc3."] and d["units"][0] == "uV"
    src = read(data_dir / "ecg/nstdb/118e00")
    write_edf(src, tmp_path / "ecg.edf")
    d = json.loads(_info(tmp_path / "ecg.edf").stdout)
    assert (d["modality"], d["channels"], d["units"]) == ("ecg", ["MLII", "V1"], ["mV", "mV"])
    assert (d["shape"], d["sfreq"], d["n_annotations"]) == ([2, 650160], 360.0, len(src.annotations))
    r = _info(data_dir / "eeg/bonn/E_S/S001.txt", "--sfreq", "173.61")
    d = json.loads(r.stdout)
    assert (d["modality"], d["shape"], d["sfreq"], d["n_annotations"]) == ("eeg", [1, 4097], 173.61, 0)
    r = _info(data_dir / "eeg/bonn/E_S/S001.txt")
    assert r.returncode == 2 and r.stderr.startswith("error:") and "--sfreq" in r.stderr
    assert "Traceback" not in r.stderr


def test_edf_event_file_opens_its_recording_and_matches_edf_annotations(data_dir):
    """PhysioNet's X.edf.event (WFDB annotations) holds the same events as the EDF+ channel."""
    import wfdb

    edf = data_dir / "eeg/eegmmidb/S001R03.edf"
    sig = read(str(edf) + ".event")
    assert sig.shape == (64, 20000) and len(sig.annotations) == 30
    ev = wfdb.rdann(str(edf), "event")
    later = [a for a in sig.annotations if a.sample > 0]  # the event file omits the one at sample 0
    assert [a.sample for a in later] == [int(s) for s in ev.sample]
    assert [a.description for a in later] == [n.split()[0] for n in ev.aux_note]


def test_truncated_edf_reads_the_complete_records_and_says_what_is_missing(data_dir, tmp_path):
    src = data_dir / "eeg/eegmmidb/S001R03.edf"
    edf = src.read_bytes()
    cut = tmp_path / "cut.edf"
    cut.write_bytes(edf[: len(edf) // 3])
    whole, part = read(src), read(cut)
    t = part.metadata["truncated"]
    assert t["records_read"] < t["records_announced"] and t["missing_s"] > 0
    assert part.n_samples == t["records_read"] * int(round(part.sfreq))  # 1-s records in this set
    assert part.duration + t["missing_s"] == pytest.approx(whole.duration)
    np.testing.assert_array_equal(part.read(0, part.n_samples), whole.read(0, part.n_samples))
    assert "truncated" not in whole.metadata
