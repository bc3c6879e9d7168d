"""WFDB and EDF/BDF writers: known-answer gains, byte equality with wfdb, round trips, atomicity."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from engine.data import Signal
from engine.export.signals import choose_gain, write_edf, write_wfdb
from engine.io import read
from engine.export import signals as sw


def _synthetic(n=5000, sfreq=500.0, amp=(3.0, 0.8), modality="ecg", nan_at=None):
    t = np.arange(n) / sfreq
    x = np.stack([amp[0] * np.sin(2 * np.pi * 1.3 * t) + 0.2, amp[1] * np.cos(2 * np.pi * 7 * t) - 1.1])
    if nan_at is not None:
        x[0, nan_at] = np.nan
    return Signal.from_array(x, sfreq=sfreq, modality=modality, channels=("MLII", "V1"), path="synthetic")


def _lazy(sig: Signal, calls: list) -> Signal:
    def reader(start, stop):
        calls.append(stop - start)
        return sig.read(start, stop)

    return Signal(modality=sig.modality, sfreq=sig.sfreq, channels=sig.channels, units=sig.units,
                  n_samples=sig.n_samples, path="lazy", annotations=sig.annotations, sample_reader=reader)


@pytest.mark.parametrize("lo,hi,fmt,gain,baseline", [
    (-2.0, 3.0, "16", 10000.0, -5000),     # half range 2.5 -> 32000/2.5 = 12800 -> 10000
    (-5.0, 5.0, "16", 5000.0, 0),          # 6400 -> 5000
    (-5.0, 5.0, "212", 200.0, 0),          # 2000/5 = 400 -> 200
    (-200.0, 150.0, "16", 100.0, 2500),    # EEG in µV: 32000/175 = 182.9 -> 100
    (1.0, 1.0, "16", 1000.0, -1000),       # constant channel
])
def test_choose_gain_known_answers(lo, hi, fmt, gain, baseline):
    assert choose_gain(lo, hi, fmt=fmt) == (gain, baseline)


@pytest.mark.parametrize("x,up,want", [(3.14159265358, True, 3.141593), (3.14159265358, False, 3.141592),
                                       (-1234.56789, False, -1234.57), (0.5, True, 0.5), (-7.0, False, -7.0)])
def test_edf_header_numbers_round_outwards_to_8_chars(x, up, want):
    got = sw._edf_number(x, up)
    assert got == pytest.approx(want) and len(f"{got:g}") <= 8
    assert (got >= x) if up else (got <= x)


@pytest.mark.parametrize("fmt,tol", [("16", 1e-3), ("212", 2.6e-3)])
def test_wfdb_round_trip_synthetic(tmp_path, fmt, tol):
    import wfdb

    sig = _synthetic(nan_at=[10, 11])
    hea = write_wfdb(sig, tmp_path, "synth", fmt=fmt)
    assert hea == tmp_path / "synth.hea" and hea.exists() and (tmp_path / "synth.dat").exists()
    rec = wfdb.rdrecord(str(tmp_path / "synth"))
    assert rec.sig_name == ["MLII", "V1"] and rec.units == ["mV", "mV"] and rec.fs == 500
    assert rec.sig_len == 5000 and rec.fmt == [fmt, fmt]
    ref = sig.data.astype(np.float64)
    ok = ~np.isnan(ref)
    err = np.abs(rec.p_signal.T - ref)[ok]
    # 16-bit: error under 1 µV for ECG in mV; 212: range/4000
    assert err.max() <= (0.5 / np.array(rec.adc_gain)).max() + 1e-9 and err.max() < tol
    assert np.isnan(rec.p_signal[[10, 11], 0]).all() and not np.isnan(rec.p_signal[:, 1]).any()
    back = read(hea)
    assert back.modality == "ecg" and back.shape == (2, 5000) and back.units == ("mV", "mV")
    np.testing.assert_allclose(back.data, rec.p_signal.T.astype(np.float32), atol=1e-6)
    assert {p.name for p in tmp_path.iterdir()} == {"synth.hea", "synth.dat"}  # no .atr, no temp folder


@pytest.mark.parametrize("fmt,n", [("16", 1001), ("212", 1001), ("212", 1000)])
def test_wfdb_dat_bytes_equal_wfdb_wrsamp(tmp_path, fmt, n):
    """Our streaming writer and wfdb.wrsamp produce the same signal file and checksums."""
    import wfdb

    sig = _synthetic(n=n, sfreq=250.0, amp=(1.5, 0.5))
    ours = tmp_path / "ours"
    write_wfdb(_lazy(sig, []), ours, "r", fmt=fmt)
    ref_hdr = wfdb.rdheader(str(ours / "r"))
    d = np.rint(sig.data.astype(np.float64).T * np.array(ref_hdr.adc_gain)) + np.array(ref_hdr.baseline)
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    wfdb.wrsamp("r", fs=250, units=["mV", "mV"], sig_name=["MLII", "V1"], d_signal=d.astype(np.int64),
                fmt=[fmt, fmt], adc_gain=ref_hdr.adc_gain, baseline=ref_hdr.baseline, write_dir=str(theirs))
    assert (ours / "r.dat").read_bytes() == (theirs / "r.dat").read_bytes()
    their_hdr = wfdb.rdheader(str(theirs / "r"))
    # WFDB checksums are 16-bit sums; we write them signed like PhysioNet's headers, wfdb unsigned
    assert [c % 65536 for c in ref_hdr.checksum] == [c % 65536 for c in their_hdr.checksum]
    assert ref_hdr.init_value == their_hdr.init_value


def test_wfdb_writer_streams_windows(tmp_path, monkeypatch):
    monkeypatch.setattr(sw, "CHUNK", 4096)
    calls: list[int] = []
    sig = _synthetic(n=50_000)
    write_wfdb(_lazy(sig, calls), tmp_path, "streamed")
    assert max(calls) <= 4096 and sum(calls) == 2 * 50_000  # range pass + write pass
    np.testing.assert_allclose(read(tmp_path / "streamed").data, sig.data, atol=1e-3)


def test_wfdb_mitdb_100_round_trip_with_annotations(data_dir, tmp_path):
    import wfdb

    src = read(data_dir / "ecg/mitdb/100")
    hea = write_wfdb(src, tmp_path, "100_denoised", comments=["written by a test"])
    back = read(hea)
    assert back.channels == ("MLII", "V5") and back.sfreq == 360 and back.n_samples == 650000
    assert back.units == ("mV", "mV") and back.metadata["comments"] == ["written by a test"]
    win = slice(100_000, 300_000)
    assert np.abs(back.read(win.start, win.stop) - src.read(win.start, win.stop)).max() < 1e-3
    ann0, ann1 = wfdb.rdann(str(data_dir / "ecg/mitdb/100"), "atr"), wfdb.rdann(str(tmp_path / "100_denoised"), "atr")
    assert list(ann1.sample) == list(ann0.sample) and ann1.symbol == ann0.symbol
    assert [a.rstrip("\x00") for a in ann1.aux_note] == [a.rstrip("\x00") for a in ann0.aux_note]
    assert len(back.annotations) == len(src.annotations)


def test_wfdb_write_is_atomic(tmp_path):
    good = _synthetic(n=300)
    write_wfdb(good, tmp_path, "rec")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    bad = Signal.from_array(np.array([[0.0, np.inf, 1.0]]), sfreq=10, modality="ecg", channels=("MLII",))
    with pytest.raises(ValueError, match="infinite"):
        write_wfdb(bad, tmp_path, "rec")
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # the old record untouched, no temporary folder left behind

    class Boom(RuntimeError):
        pass

    calls = {"n": 0}

    def failing(start, stop):
        calls["n"] += 1
        if calls["n"] > 1:  # the range pass succeeds, the write pass fails
            raise Boom("disk gone")
        return good.read(start, stop)

    lazy = Signal(modality="ecg", sfreq=500, channels=good.channels, units=good.units, n_samples=300,
                  path="x", sample_reader=failing)
    with pytest.raises(Boom):
        write_wfdb(lazy, tmp_path, "other")
    assert {p.name for p in tmp_path.iterdir()} == set(before)


def test_wfdb_rejects_bad_names_and_formats(tmp_path):
    sig = _synthetic(n=100)
    with pytest.raises(ValueError, match="record name"):
        write_wfdb(sig, tmp_path, "bad name")
    with pytest.raises(ValueError, match="format"):
        write_wfdb(sig, tmp_path, "ok", fmt="8")


def test_edf_round_trip_eegmmidb_keeps_length_and_annotations(data_dir, tmp_path):
    import mne

    src = read(data_dir / "eeg/eegmmidb/S001R03.edf")
    out = write_edf(src, tmp_path / "copy.edf")
    raw = mne.io.read_raw_edf(out, preload=True, verbose="error")
    assert raw.ch_names == list(src.channels) and raw.info["sfreq"] == 160 and raw.n_times == 20000
    ref = src.data
    step = (ref.max(axis=1) - ref.min(axis=1)) / 65535
    assert (np.abs(raw.get_data() * 1e6 - ref).max(axis=1) <= step + 1e-3).all()
    back = read(out)
    assert back.shape == src.shape and back.units == src.units
    assert [a.description for a in back.annotations] == [a.description for a in src.annotations]
    np.testing.assert_allclose([a.onset for a in back.annotations], [a.onset for a in src.annotations], atol=1e-6)


def test_edf_and_bdf_synthetic_precision_and_nan(tmp_path, caplog):
    sig = _synthetic(n=2000, nan_at=[5])
    with caplog.at_level(logging.WARNING, logger="engine"):
        e = write_edf(sig, tmp_path / "s.edf")
    assert "NaN" in caplog.text
    b = write_edf(sig, tmp_path / "s.bdf")
    ref = np.nan_to_num(sig.data)
    for path, bits in ((e, 16), (b, 24)):
        back = read(path)
        assert back.modality == "ecg" and back.units == ("mV", "mV") and back.n_samples == 2000
        rng = ref.max(axis=1) - ref.min(axis=1)
        err = np.abs(back.data - ref).max(axis=1)
        assert (err <= rng / (2**bits - 1) + 1e-6).all(), (path.name, err)
    assert back.data[0, 5] == pytest.approx(0.0, abs=1e-5)


def test_edf_non_integer_rate_and_padding(data_dir, tmp_path):
    bonn = read(data_dir / "eeg/bonn/E_S/S001.txt", sfreq=173.61)
    back = read(write_edf(bonn, tmp_path / "bonn.edf"))
    assert back.sfreq == pytest.approx(173.61, rel=1e-9)
    assert back.n_samples == 17361  # one 100-s record: 4097 samples padded with the last value
    np.testing.assert_allclose(back.read(0, 4097), bonn.data, atol=0.05)
    assert np.all(back.read(4097, 17361) == back.read(4096, 4097))


def test_edf_write_is_atomic(tmp_path):
    out = tmp_path / "keep.edf"
    write_edf(_synthetic(n=1000), out)
    before = out.read_bytes()
    bad = Signal.from_array(np.array([[0.0, np.inf]]), sfreq=2, modality="ecg", channels=("MLII",))
    with pytest.raises(ValueError):
        write_edf(bad, out)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["keep.edf"]


@pytest.mark.parametrize("sfreq,n,want", [
    (160.0, 20000, (1.0, 160)),      # eegmmidb: whole 1-s records
    (360.0, 650000, (1.0, 360)),     # MIT-BIH: nothing exact divides 650000 -> 1 s, padded
    (250.0, 370, (1.48, 370)),       # an EDF with short records: one exact record, no padding
    (173.61, 4097, (100.0, 17361)),  # Bonn rate: the shortest exact record is 100 s
    (500.0, 1001, (2.002, 1001)),
])
def test_edf_record_layout(sfreq, n, want):
    d, r = sw._record_layout(sfreq, n)
    assert (d, r) == want and d * sfreq == pytest.approx(r, rel=1e-12) and len(f"{d:g}") <= 8
