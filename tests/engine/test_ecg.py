"""ECG beats: AAMI mapping, RR features, beat windows, QRS detection and the score-beats task."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from engine.data import Annotation, Signal
from engine.tasks.score_beats.beats import (
    BEAT_LEN,
    BEAT_PRE,
    aami_class,
    beats_from_annotations,
    detect_qrs,
    extract_beats,
    rr_features,
)


def test_aami_mapping():
    assert [aami_class(s) for s in "NLRej"] == ["N"] * 5
    assert [aami_class(s) for s in "AaJS"] == ["S"] * 4
    assert [aami_class(s) for s in "VE"] == ["V", "V"]
    assert aami_class("F") == "F" and aami_class("/") == "Q"
    assert aami_class("+") == "" and aami_class("~") == ""


def test_rr_features_known_answer():
    # regular 1 s rhythm at 360 Hz with one beat 0.5 s early
    s = np.array([0, 360, 720, 1080, 1260, 1800, 2160, 2520])
    rr = rr_features(s, 360.0)
    assert rr["premature"][4] == pytest.approx(0.5)
    assert rr["pause"][4] == pytest.approx(0.5)
    assert abs(rr["premature"][2]) < 1e-9


def test_extract_beats_centres_the_peak_and_resamples():
    fs = 250.0
    x = np.zeros(5000)
    peaks = np.array([1000, 2000, 4990])
    x[peaks[:2]] = 1.0
    beats, valid = extract_beats(x, fs, peaks)
    assert beats.shape == (3, BEAT_LEN)
    assert valid.tolist() == [True, True, False]  # the last beat runs off the end
    assert int(np.argmax(beats[0])) == BEAT_PRE


def test_beats_from_annotations_drops_non_beats():
    ann = [Annotation(0.1, 0, "+", sample=36), Annotation(0.2, 0, "N", sample=72),
           Annotation(0.5, 0, "V", sample=180), Annotation(0.6, 0, "~", sample=216)]
    s, sym = beats_from_annotations(ann, 1000)
    assert s.tolist() == [72, 180] and sym == ("N", "V")


def test_qrs_detector_finds_annotated_beats(data_dir):
    from engine.io import read

    sig = read(str(data_dir / "ecg" / "mitdb" / "100"))
    n = int(60 * sig.sfreq)
    ref, _ = beats_from_annotations(sig.annotations, n)
    found = detect_qrs(sig.read(0, n)[0], sig.sfreq)
    tol = int(0.05 * sig.sfreq)
    hit = sum(np.min(np.abs(found - r)) <= tol for r in ref)
    assert hit / len(ref) > 0.95
    assert len(found) < 1.1 * len(ref)


@pytest.mark.slow
def test_score_beats_on_record_119(data_dir):
    """Record 119: ventricular beats score above normal ones (the read-out mode of the bundled model).

    A smoke check, not a result: the bundled ecg-beats is fitted on all 35 MIT-BIH records,
    119 included; the held-out figures are the leave-records-out CV
    (benchmarks/bench_ecg_beat_readouts.py, README)."""
    from sklearn.metrics import roc_auc_score

    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.score_beats import score_beats_task
    from engine.tasks.score_beats.beats import aami_class

    sig = read(str(data_dir / "ecg" / "mitdb" / "119"))
    res = run_job(score_beats_task(sig, device="cpu"))
    assert len(res.sample) == 1987 and len(res.symbol) == 1987
    cls = np.array([aami_class(s) for s in res.symbol])
    ok = np.isfinite(res.score)
    assert ok.sum() >= 1980
    auc = roc_auc_score(cls[ok] != "N", res.score[ok])
    assert auc > 0.95, auc
    assert res.sha256 and res.model == "ecg-beats" and res.params["score_mode"] == "readout"


def test_score_beats_detects_when_unannotated(tmp_path, data_dir):
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.score_beats import score_beats_task, write_beat_scores

    sig = read(str(data_dir / "ecg" / "mitdb" / "100"))
    x = sig.read(0, int(30 * sig.sfreq))
    bare = Signal.from_array(x, sfreq=sig.sfreq, modality="ecg", channels=sig.channels, path=str(tmp_path / "bare"))
    res = run_job(score_beats_task(bare, device="cpu"))
    assert res.params["beats_from"].startswith("QRS detector")
    assert 30 <= len(res.sample) <= 45 and set(res.symbol) == {""}
    paths = write_beat_scores(res, bare, tmp_path / "out")
    with open(paths[0], newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["sample", "symbol", "score"]
    assert len(rows) == len(res.sample) + 1 and rows[1][1] == ""


def test_score_beats_cancel_closes_generator(data_dir):
    from engine.io import read
    from engine.tasks.score_beats import score_beats_task

    sig = read(str(data_dir / "ecg" / "mitdb" / "100"))
    gen = score_beats_task(sig, device="cpu")
    first = next(gen)
    assert 0.0 <= first.fraction <= 1.0
    next(gen)
    gen.close()  # what Cancel does
    with pytest.raises(StopIteration):
        next(gen)


def test_score_beats_refuses_eeg():
    from engine.errors import ModalityMismatchError
    from engine.tasks.score_beats import score_beats_task

    eeg = Signal.from_array(np.zeros((1, 1000)), sfreq=100.0, modality="eeg")
    with pytest.raises(ModalityMismatchError):
        next(score_beats_task(eeg))


def test_score_beats_reads_mlii_by_name(data_dir):
    """Record 114 stores MLII second: the default lead is found by name, an explicit index still wins."""
    from engine.io import read
    from engine.jobs import run_job
    from engine.tasks.score_beats import score_beats_task

    sig = read(str(data_dir / "ecg" / "mitdb" / "114"))
    short = Signal.from_array(sig.read(0, int(60 * sig.sfreq)), sfreq=sig.sfreq, modality="ecg",
                              channels=sig.channels, path="114-head")
    assert short.channels == ("V5", "MLII")
    assert run_job(score_beats_task(short, device="cpu")).params["channel_name"] == "MLII"
    assert run_job(score_beats_task(short, device="cpu", channel=0)).params["channel_name"] == "V5"


def test_readout_features_flag_an_early_beat_with_a_changed_p_wave():
    """A synthetic sinus rhythm with one premature beat whose P-wave part is flattened."""
    from engine.tasks.score_beats.readout import PARTS, beat_features, linear_readout

    rng = np.random.default_rng(0)
    fs = 360.0
    samples = np.cumsum(np.full(40, 288))
    samples[20] -= 100  # early beat
    t = np.arange(BEAT_LEN)
    base = np.exp(-0.5 * ((t - BEAT_PRE) / 4.0) ** 2) + 0.2 * np.exp(-0.5 * ((t - 40) / 8.0) ** 2)
    beats = np.tile(base, (40, 1)) + 0.01 * rng.standard_normal((40, BEAT_LEN))
    a, e = PARTS["P"]
    beats[20, a:e] = 0.01 * rng.standard_normal(e - a)
    f = beat_features(beats, samples, fs, np.arange(40))
    for key in ("prem", "prem_past", "tpl_P", "rms_P"):
        assert int(np.argmax(f[key])) == 20, key
    assert f["next_prev"][20] > 0.5 and "ae" not in f
    p = {"features": ["prem", "tpl_P"], "mean": [0.0, 0.0], "scale": [1.0, 1.0], "coef": [1.0, 1.0], "intercept": 0.0}
    assert int(np.argmax(linear_readout(f, p))) == 20
