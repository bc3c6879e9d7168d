"""EEG montages on a real 64-channel recording (eegmmidb, 10-10 names with padding dots)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.data import Signal
from engine.io import read
from engine.io.montages import MONTAGES, MontageError, apply_montage, montage_matrix, montage_params


@pytest.fixture(scope="module")
def eeg(data_dir):
    return read(data_dir / "eeg" / "eegmmidb" / "S001R03.edf")


def _raw(eeg):
    import mne

    return mne.io.read_raw_edf(eeg.path, preload=True, verbose="error")


def _ch(sig, clean):
    return sig.metadata["clean_names"].index(clean)


def test_average_reference_matches_mne_on_the_real_file(eeg):
    import mne

    avg = apply_montage(eeg, "average")
    assert len(avg.channels) == 64 and avg.channels[_ch(eeg, "Fz")] == "Fz-Avg"
    assert set(avg.units) == {"uV"} and avg.metadata["montage"]["name"] == "average"
    page = avg.read(1600, 3200)
    ref, _ = mne.set_eeg_reference(_raw(eeg), "average", projection=False, verbose="error")
    np.testing.assert_allclose(page, ref.get_data(start=1600, stop=3200) * 1e6, atol=1e-3)
    assert np.abs(page.sum(axis=0)).max() < 1e-2  # an average reference sums to zero


def test_double_banana_pairs_are_differences_of_the_recorded_channels(eeg):
    bip = apply_montage(eeg, "bipolar")
    assert bip.channels == ("Fp1-F7", "F7-T7", "T7-P7", "P7-O1", "Fp1-F3", "F3-C3", "C3-P3", "P3-O1",
                            "Fz-Cz", "Cz-Pz", "Fp2-F4", "F4-C4", "C4-P4", "P4-O2",
                            "Fp2-F8", "F8-T8", "T8-P8", "P8-O2")
    x, y = eeg.read(0, 800), bip.read(0, 800)
    np.testing.assert_allclose(y[1], x[_ch(eeg, "F7")] - x[_ch(eeg, "T7")], atol=1e-3)
    np.testing.assert_allclose(y[9], x[_ch(eeg, "Cz")] - x[_ch(eeg, "Pz")], atol=1e-3)
    assert montage_params(bip) == {"montage": "bipolar"} and montage_params(eeg) == {}


def test_laplacian_subtracts_the_four_nearest_electrodes(eeg):
    m, names = montage_matrix(eeg, "laplacian")
    row = m[names.index("Cz-Lap")]
    neighbours = {eeg.metadata["clean_names"][i] for i in np.flatnonzero(row < 0)}
    assert neighbours == {"C1", "C2", "FCz", "CPz"}
    assert row[_ch(eeg, "Cz")] == 1.0 and row.sum() == pytest.approx(0.0)
    lap = apply_montage(eeg, "laplacian")
    assert lap.sample_reader is not None and lap._data is None  # read page by page, never whole
    x = eeg.read(0, 400)
    cz = x[_ch(eeg, "Cz")] - x[[_ch(eeg, n) for n in ("C1", "C2", "FCz", "CPz")]].mean(axis=0)
    np.testing.assert_allclose(lap.read(0, 400)[names.index("Cz-Lap")], cz, atol=1e-3)


def test_montage_errors_say_what_is_wrong(eeg):
    ecg = Signal.from_array(np.zeros((2, 100)), sfreq=100.0, modality="ecg", channels=("MLII", "V5"))
    with pytest.raises(MontageError, match="EEG, not ECG"):
        apply_montage(ecg, "average")
    with pytest.raises(MontageError, match="valid montages: none, average"):
        apply_montage(eeg, "banana")
    few = Signal.from_array(np.zeros((2, 100)), sfreq=100.0, modality="eeg", channels=("Cz", "Oz"))
    with pytest.raises(MontageError, match="no double-banana pair"):
        apply_montage(few, "bipolar")
    with pytest.raises(MontageError, match="already montaged"):
        apply_montage(apply_montage(eeg, "average"), "bipolar")
    assert apply_montage(eeg, "none") is eeg and set(MONTAGES) == {"none", "average", "bipolar", "laplacian"}
