"""Scoring tasks refuse the wrong modality (no longer forced at read time) and denoise refuses
to write non-finite output; the CLI answers exit 2 with one ``error:`` line naming the file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.data import Signal
from engine.errors import CorruptFileError, ModalityMismatchError
from engine.results import DenoisedSignal

REPO = Path(__file__).resolve().parents[2]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


def _one_error_line(proc, name: str):
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and name in lines[0], proc.stderr


@pytest.fixture(scope="module")
def eeg_edf(data_dir):
    return data_dir / "eeg" / "eegmmidb" / "S001R03.edf"


@pytest.fixture(scope="module")
def ecg_record(data_dir):
    return data_dir / "ecg" / "mitdb" / "100.hea"


def test_score_beats_refuses_eeg_in_process(eeg_edf):
    from engine.commands.score_beats import run

    class A:
        record, sfreq, model, device, channel, no_rr, formats, out, json = (
            str(eeg_edf), None, None, "cpu", None, False, None, "/nonexistent-out", False)

    with pytest.raises(ModalityMismatchError, match="S001R03.*ECG"):
        run(A())


def test_score_segments_refuses_ecg_in_process(ecg_record):
    from engine.tasks.score_segments import read_segments, score_segments_task

    datas = read_segments([str(ecg_record)], sfreq=None, model=None)
    assert datas[0].modality == "ecg"  # not relabelled as EEG
    with pytest.raises(ModalityMismatchError, match="100"):
        next(score_segments_task(datas))


def test_headerless_text_still_takes_the_task_modality(tmp_path):
    from engine.tasks._modality import reader_modality

    assert reader_modality(tmp_path / "x.txt", "ecg") == "ecg"
    assert reader_modality(tmp_path / "x.edf", "ecg") is None
    assert reader_modality(tmp_path / "x.edf", "ecg", "ecg") == "ecg"  # the user's explicit choice


def test_cli_score_beats_on_eeg_exit_2(eeg_edf, tmp_path):
    proc = _cli("score-beats", eeg_edf, "--out", tmp_path / "o")
    _one_error_line(proc, "S001R03.edf")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_cli_score_segments_on_ecg_exit_2(ecg_record, tmp_path):
    proc = _cli("score-segments", ecg_record, "--out", tmp_path / "o")
    _one_error_line(proc, "100")


def test_denoise_writer_refuses_a_nan_channel(tmp_path):
    from engine.tasks.denoise import write_denoised

    x = np.zeros((2, 3600), np.float32)
    x[1] = np.nan
    src = Signal.from_array(np.zeros_like(x), sfreq=360.0, modality="ecg", channels=("MLII", "V5"),
                            path=str(tmp_path / "rec.npy"))
    result = DenoisedSignal(signal=Signal.from_array(x, sfreq=360.0, modality="ecg", channels=("MLII", "V5")),
                            model="ecg-dae", sha256="0" * 64)
    with pytest.raises(CorruptFileError, match=r"rec\.npy.*'V5'.*non-finite"):
        write_denoised(result, src, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_denoise_nan_channel_exit_2(tmp_path):
    p = tmp_path / "nanrec.npy"
    x = np.sin(np.linspace(0, 60, 3600, dtype=np.float32))[None].repeat(2, 0)
    x[1] = np.nan
    np.save(p, x)
    proc = _cli("denoise", p, "--sfreq", 360, "--modality", "ecg", "--out", tmp_path / "o")
    _one_error_line(proc, "nanrec.npy")
    assert not list((tmp_path / "o").glob("*")) if (tmp_path / "o").exists() else True
