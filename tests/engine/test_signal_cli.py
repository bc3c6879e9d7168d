"""The denoise / score-beats / score-segments commands, run as a user runs them (subprocess)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def short_record(tmp_path_factory, data_dir):
    """The first 20 s of MIT-BIH 119 (a test record) as a WFDB record with its beat annotations."""
    from engine.data import Signal
    from engine.export.signals import write_wfdb
    from engine.io import read

    src = read(str(data_dir / "ecg" / "mitdb" / "119"))
    n = int(20 * src.sfreq)
    anns = [a for a in src.annotations[:200] if a.sample is not None and a.sample < n]
    part = Signal.from_array(src.read(0, n), sfreq=src.sfreq, modality="ecg", channels=src.channels,
                             units=src.units, annotations=anns, path="part")
    d = tmp_path_factory.mktemp("rec")
    write_wfdb(part, d, "r119")
    return d / "r119", n, [a for a in anns if a.description in "NV"]


@pytest.mark.slow
def test_denoise_cli_wfdb(short_record, tmp_path):
    import wfdb

    rec, n, _ = short_record
    r = _cli("denoise", rec, "--device", "cpu", "--out", tmp_path, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["model"] == "ecg-dae" and len(summary["sha256"]) == 64
    assert "timings_s" in summary and summary["parameters"]["per_channel"] is True
    out = wfdb.rdrecord(str(tmp_path / "r119_denoised"))
    src = wfdb.rdrecord(str(rec))
    assert out.sig_name == src.sig_name and out.fs == src.fs and out.sig_len == n
    assert out.units == src.units
    arr = np.load(tmp_path / "r119_denoised.npy")
    assert arr.shape == (2, n) and np.all(np.isfinite(arr))
    assert (tmp_path / "r119_denoised.summary.json").exists()


@pytest.mark.slow
def test_score_beats_cli(short_record, tmp_path):
    rec, _, beats = short_record
    r = _cli("score-beats", rec, "--device", "cpu", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "r119.beats.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["sample", "symbol", "score"]
    assert [int(x[0]) for x in rows[1:]] == [a.sample for a in beats]
    assert [x[1] for x in rows[1:]] == [a.description for a in beats]
    scores = {sym: [float(x[2]) for x in rows[1:] if x[1] == sym and x[2]] for sym in "NV"}
    assert np.median(scores["V"]) > np.median(scores["N"])


@pytest.mark.slow
def test_score_segments_cli(data_dir, tmp_path):
    bonn = data_dir / "eeg" / "bonn"
    files = [bonn / "E_S" / "S010.txt", bonn / "A_Z" / "Z010.txt", bonn / "C_N" / "N010.TXT"]
    r = _cli("score-segments", *files, "--out", tmp_path, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "segments.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["file", "score", "seizure"]
    assert [x[0] for x in rows[1:]] == [str(f) for f in files]
    assert [int(x[2]) for x in rows[1:]] == [1, 0, 0]
    assert float(rows[1][1]) > float(rows[2][1])


def test_cli_errors_are_one_line(tmp_path):
    r = _cli("denoise", tmp_path / "missing_record", "--out", tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("1\n2\nthree\n")
    r = _cli("score-segments", bad, "--out", tmp_path)
    assert r.returncode == 2 and "bad.txt" in r.stderr


@pytest.mark.slow
def test_score_beats_writes_wfdb_annotations_viewers_read(short_record, tmp_path):
    import wfdb

    rec, _, beats = short_record
    r = _cli("score-beats", rec, "--device", "cpu", "--out", tmp_path, "--formats", "csv,annotations", "--json")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "r119.beats.csv", newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    ann = wfdb.rdann(str(tmp_path / "r119"), "latent")
    assert list(ann.sample) == [int(x[0]) for x in rows]
    for note, row in zip(ann.aux_note, rows):
        assert note.startswith(f"beat {row[1]} score=") and (not row[2] or abs(float(note.split("=")[1].split()[0])
                                                                                - float(row[2])) < 1e-3 * abs(float(row[2])) + 1e-4)
    assert str(tmp_path / "r119.latent") in json.loads(r.stdout)["files"]


def test_annotations_need_a_recording_format_and_are_refused_before_the_run(data_dir, tmp_path):
    z = data_dir / "eeg" / "bonn" / "A_Z" / "Z010.txt"
    r = _cli("score-segments", z, "--out", tmp_path, "--formats", "annotations")
    assert r.returncode == 2 and "WFDB or EDF/BDF" in r.stderr and "Z010.txt" in r.stderr
    assert not any(tmp_path.iterdir())
    r = _cli("score-segments", z, "--out", tmp_path, "--formats", "csv,xml")
    assert r.returncode == 2 and "unknown output format 'xml'" in r.stderr
