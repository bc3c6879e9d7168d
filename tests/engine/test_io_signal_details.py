"""Reader details: WFDB sample formats and units, NaN handling, registry routing, modality guesses."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data import Signal
from engine.errors import ReadError
from engine.io import read
from engine.io.mne import clean_channel_name


def test_wfdb_microvolt_units_and_unknown_units(tmp_path):
    import wfdb

    x = np.stack([np.linspace(-1000, 1000, 500), np.linspace(0, 50, 500)], axis=1)  # uV, mmHg
    wfdb.wrsamp("mixed", fs=250, units=["uV", "mmHg"], sig_name=["ECG", "BP"], p_signal=x,
                fmt=["16", "16"], adc_gain=[10.0, 100.0], baseline=[0, 0], write_dir=str(tmp_path))
    sig = read(tmp_path / "mixed.hea")
    assert sig.modality == "ecg" and sig.units == ("mV", "mmHg")
    np.testing.assert_allclose(sig.data[0], x[:, 0] / 1000, atol=1e-4)  # uV -> mV
    np.testing.assert_allclose(sig.data[1], x[:, 1], atol=0.01)  # kept as stored
    assert sig.metadata["unconverted_channels"] == ["BP"]


def test_wfdb_eeg_named_record_is_eeg(tmp_path):
    import wfdb

    x = np.random.default_rng(0).normal(0, 30, (400, 2))
    wfdb.wrsamp("eegrec", fs=128, units=["uV", "uV"], sig_name=["Fp1", "C3"], p_signal=x,
                fmt=["16", "16"], adc_gain=[100.0, 100.0], baseline=[0, 0], write_dir=str(tmp_path))
    sig = read(tmp_path / "eegrec")
    assert sig.modality == "eeg" and sig.units == ("uV", "uV")
    np.testing.assert_allclose(sig.data.T, x, atol=0.006)


def test_wfdb_invalid_samples_are_nan(tmp_path):
    import wfdb

    d = np.array([[0, 10], [-32768, 20], [30, 30]], dtype=np.int64)
    wfdb.wrsamp("gap", fs=10, units=["mV", "mV"], sig_name=["MLII", "V1"], d_signal=d, fmt=["16", "16"],
                adc_gain=[100.0, 100.0], baseline=[0, 0], write_dir=str(tmp_path))
    sig = read(tmp_path / "gap")
    x = sig.data
    assert np.isnan(x[0, 1]) and np.isfinite(x[1]).all()
    np.testing.assert_allclose(x[0, [0, 2]], [0.0, 0.3], atol=1e-6)
    assert "NaN" in sig.metadata["invalid_samples"]


def test_clean_channel_names():
    got = [clean_channel_name(n) for n in ("Fc5.", "Fpz.", "Afz.", "C3..", "T10.", "Poz.", "Iz..", "EEG Fp1-REF", "ECG")]
    assert got == ["FC5", "Fpz", "AFz", "C3", "T10", "POz", "Iz", "Fp1", "ECG"]


def test_stim_channel_dropped_and_first_samp_offset(tmp_path):
    import mne

    info = mne.create_info(["Cz", "Pz", "STI"], 100.0, ["eeg", "eeg", "stim"])
    x = np.zeros((3, 1000))
    x[0] = np.sin(np.arange(1000) / 10) * 50e-6
    raw = mne.io.RawArray(x, info, first_samp=250, verbose="error")
    raw.set_annotations(mne.Annotations([1.0], [0.5], ["blink"]))  # 1 s after the first sample
    out = tmp_path / "stim_raw.fif"
    raw.save(out, verbose="error")
    sig = read(out)
    assert sig.channels == ("Cz", "Pz") and sig.metadata["dropped_channels"] == ["STI"]
    np.testing.assert_allclose(sig.data[0], x[0] * 1e6, atol=1e-3)
    (a,) = sig.annotations
    assert a.onset == pytest.approx(1.0) and a.sample == 100 and a.description == "blink"


@pytest.mark.parametrize("fmt", ["16", "212", "80", "160", "24", "32", "61"])
def test_wfdb_window_reads_equal_wfdb_in_every_format(tmp_path, fmt):
    """The direct window reader equals wfdb.rdrecord exactly, NaN for invalid samples included."""
    import wfdb

    from engine.io.wfdb.dat import DatReader

    lim = {"80": 120, "212": 2000}.get(fmt, 30000)
    rng = np.random.default_rng(int(fmt))
    d = rng.integers(-lim, lim, size=(1001, 3))  # 3 channels: odd sample count for 212
    d[7, 1] = {"80": -128, "212": -2048, "24": -(2**23), "32": -(2**31)}.get(fmt, -32768)  # invalid
    written = {"61": "16", "160": "16"}.get(fmt, fmt)  # wfdb cannot write 61/160: rewrite the bytes
    wfdb.wrsamp("f", fs=500, units=["mV"] * 3, sig_name=["I", "II", "V2"], d_signal=d, fmt=[written] * 3,
                adc_gain=[200.0, 400.0, 1000.0], baseline=[0, 10, -5], write_dir=str(tmp_path))
    if fmt != written:
        raw = d.astype(">i2") if fmt == "61" else (d + 32768).astype("<u2")
        (tmp_path / "f.dat").write_bytes(raw.tobytes())
        hea = tmp_path / "f.hea"
        hea.write_text(hea.read_text().replace("f.dat 16 ", f"f.dat {fmt} "))
    ref = wfdb.rdrecord(str(tmp_path / "f"), return_res=32).p_signal.T
    fast = DatReader.from_header(tmp_path, wfdb.rdheader(str(tmp_path / "f")))
    assert fast is not None and fast.fmt == fmt
    sig = read(tmp_path / "f")
    assert np.isnan(sig.data[1, 7])
    np.testing.assert_array_equal(sig.data, ref)
    for start, stop in ((0, 1), (1, 2), (3, 998), (999, 1001), (500, 501)):
        np.testing.assert_array_equal(fast.read(start, stop), ref[:, start:stop])


def test_wfdb_two_signal_files_fall_back_to_wfdb(tmp_path):
    import wfdb

    from engine.io.wfdb.dat import DatReader

    rng = np.random.default_rng(5)
    a, b = rng.integers(-900, 900, size=(600, 2)), rng.integers(-900, 900, size=(600, 1))
    for name, d in (("a", a), ("b", b)):
        wfdb.wrsamp(name, fs=250, units=["mV"] * d.shape[1], sig_name=[f"{name}{i}" for i in range(d.shape[1])],
                    d_signal=d, fmt=["16"] * d.shape[1], adc_gain=[200.0] * d.shape[1],
                    baseline=[0] * d.shape[1], write_dir=str(tmp_path))
    lines = [ln for ln in (tmp_path / "a.hea").read_text().splitlines()[1:] if ln.strip()]
    lines += [ln for ln in (tmp_path / "b.hea").read_text().splitlines()[1:] if ln.strip()]
    (tmp_path / "ab.hea").write_text("ab 3 250 600\n" + "\n".join(lines) + "\n")
    hdr = wfdb.rdheader(str(tmp_path / "ab"))
    assert DatReader.from_header(tmp_path, hdr) is None
    sig = read(tmp_path / "ab")
    assert sig.channels == ("a0", "a1", "b0")
    np.testing.assert_allclose(sig.data, np.hstack([a, b]).T / 200.0, atol=1e-6)


def test_registry_routes_signal_formats(tmp_path):
    """Integer whitespace tables look like a WFDB header line; GDF has its own magic."""
    from engine.io.registry import find_reader

    for name in ("ints.tsv", "ints.asc", "ints.txt", "ints.csv"):
        sep = "," if name.endswith(".csv") else ("\t" if name.endswith(".tsv") else " ")
        (tmp_path / name).write_text("\n".join(sep.join(str(i * 3 + j) for j in range(3)) for i in range(20)))
        assert find_reader(tmp_path / name).name == "text", name
        assert read(tmp_path / name, sfreq=10).shape == (3, 20)
    fake = tmp_path / "fake.gdf"
    fake.write_bytes(b"GDF 2.20" + b"\0" * 400)
    assert find_reader(fake).name == "mne"
    with pytest.raises(ReadError, match="fake.gdf"):
        read(fake)


@pytest.mark.parametrize("unit,names,want", [("mV", ("CH1", "CH2"), "ecg"), ("uV", ("CH1", "CH2"), "eeg"),
                                             ("mV", ("Fp1", "CH2"), "eeg"), ("uV", ("ECG", "EKG2"), "ecg")])
def test_edf_modality_guess_from_names_and_stored_unit(tmp_path, unit, names, want):
    from engine.export.signals import write_edf

    x = np.random.default_rng(6).normal(size=(2, 512))
    src = Signal.from_array(x, sfreq=128, modality="ecg" if unit == "mV" else "eeg", channels=names, units=unit)
    sig = read(write_edf(src, tmp_path / "g.edf"))
    assert sig.modality == want
    scale = {("mV", "ecg"): 1, ("uV", "eeg"): 1, ("mV", "eeg"): 1000, ("uV", "ecg"): 1e-3}[(unit, want)]
    np.testing.assert_allclose(sig.data, x * scale, atol=1e-3 * abs(x * scale).max())
