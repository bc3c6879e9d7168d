"""EEG features, Bonn seizure scores through the real task, EDF window tracks.

The shipped eeg-seizure model is trained on all shared Bonn segments, so the segment
tests below check the task end to end on segments it was fitted on (not a
generalisation test; that estimate is the 5-fold CV of benchmarks/bench_eeg_seizure.py).
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.data import Signal
from engine.tasks.score_segments.features import BANDS, band_power_features, segment_features, window_spectra

FS = 173.61
#: Bonn segment numbers used by the task tests (part of the shipped model's training data).
SEG = ("005", "010", "015", "020")


def test_band_power_known_answer():
    t = np.arange(4097) / FS
    x = 50 * np.sin(2 * np.pi * 10 * t)  # alpha
    f = band_power_features(x)
    rel = f[len(BANDS):]
    assert int(np.argmax(rel)) == 2 and rel[2] > np.log(0.95)


def test_feature_shapes_and_hjorth():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4097)
    assert window_spectra(x).shape == (15, 58)
    f = segment_features(x)
    assert f.shape == (17,) and np.all(np.isfinite(f))
    # white noise: zero-crossing rate ~ 0.5, Hjorth mobility ~ sqrt(2)
    assert f[4] == pytest.approx(0.5, abs=0.05)
    assert f[2] == pytest.approx(np.sqrt(2), abs=0.1)


def _bonn(data_dir, folder, letter, nums):
    ext = "TXT" if folder == "C_N" else "txt"
    return [str(data_dir / "eeg" / "bonn" / folder / f"{letter}{n}.{ext}") for n in nums]


def test_seizure_scores_on_bonn_segments(data_dir):
    from engine.jobs import run_job
    from engine.tasks.score_segments import read_segments, score_segments_task

    s_files = _bonn(data_dir, "E_S", "S", SEG)
    n_files = _bonn(data_dir, "A_Z", "Z", SEG) + _bonn(data_dir, "B_O", "O", SEG[:2])
    datas = read_segments(s_files + n_files)
    assert all(d.sfreq == pytest.approx(FS) for d in datas)  # the model's rate by default
    res = run_job(score_segments_task(datas, device="cpu"))
    assert res.params["method"] == "seizure" and len(res.score) == len(datas)
    s, n = res.score[:len(s_files)], res.score[len(s_files):]
    assert s.min() > n.max()
    assert res.label[:len(s_files)].sum() >= 3 and res.label[len(s_files):].sum() == 0


def test_sfreq_override_is_used(data_dir):
    from engine.tasks.score_segments import read_segments

    d = read_segments(_bonn(data_dir, "A_Z", "Z", ["005"]), sfreq=200.0)[0]
    assert d.sfreq == 200.0 and d.n_samples == 4097


def test_edf_window_track(data_dir, tmp_path):
    """A multi-channel EDF: per-window scores over the recording, one CSV row per file."""
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.score_segments import score_segments_task, write_segment_scores

    data = read(str(data_dir / "eeg" / "eegmmidb" / "S001R03.edf"))
    sub = Signal.from_array(data.read(0, int(60 * data.sfreq))[:4], sfreq=data.sfreq, modality="eeg",
                            channels=data.channels[:4], path=data.path)
    res = run_job(score_segments_task(sub, model="eeg-seizure", device="cpu"))
    assert len(res.score) >= 3 and np.all(res.stop > res.start)
    assert np.all(np.isfinite(res.score))
    paths = write_segment_scores(res, sub, tmp_path)
    assert [p.name for p in paths] == ["segments.csv", "windows.csv", "segments.summary.json"]
    rows = paths[0].read_text().splitlines()
    assert rows[0] == "file,score,seizure" and len(rows) == 2


def test_anomaly_track_with_eeg_cae(data_dir):
    from engine.errors import WeightsError
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.score_segments import score_segments_task
    from engine.weights import load

    try:
        load("eeg-cae")
    except WeightsError:
        pytest.skip("eeg-cae is not bundled")
    data = read(str(data_dir / "eeg" / "eegmmidb" / "S001R03.edf"))
    sub = Signal.from_array(data.read(0, int(30 * data.sfreq))[:8], sfreq=data.sfreq, modality="eeg",
                            channels=data.channels[:8], path=data.path)
    res = run_job(score_segments_task(sub, method="anomaly", device="cpu"))
    assert res.params["method"] == "anomaly" and res.threshold == 1.0
    assert len(res.score) == 29 and np.all(res.score >= 0)


def test_cancel_segments(data_dir):
    from engine.tasks.score_segments import read_segments, score_segments_task

    gen = score_segments_task(read_segments(_bonn(data_dir, "E_S", "S", SEG)), device="cpu")
    next(gen)
    next(gen)
    gen.close()
    with pytest.raises(StopIteration):
        next(gen)
