"""Issue 19 "Sessions": save -> quit -> open session restores the same file, model, results and view;
a changed input is refused with a clear message; the automation saves and restores unattended."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from desktop import session_files
from desktop.resources import resources_dir
from desktop_helpers import open_and_wait, run_and_wait

SAMPLES = resources_dir() / "samples"
CT = SAMPLES / "ct" / "LIDC-IDRI-0001-nodule"
HE = SAMPLES / "histology" / "crchisto_img4.png"
ROOT = Path(__file__).resolve().parents[2]


def _restore(qtbot, win, path):
    with qtbot.waitSignal(win.sessions.restored, timeout=60_000):
        assert win.sessions.restore(path)


def test_save_quit_open_session_restores_file_model_results_and_view(qtbot, tmp_path, errors, questions):
    from desktop.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1366, 768)
    win.show()
    open_and_wait(qtbot, win, CT)
    entry = run_and_wait(qtbot, win, "reconstruct")
    ct = win.ct_view
    ct.compare_box.setChecked(True)
    ct.set_slice(2)
    ct.set_window(40.0, 400.0)
    ct.panes[0].vb.setRange(xRange=(60.0, 200.0), yRange=(80.0, 220.0), padding=0)
    win.results.opacity.setValue(30)
    qtbot.wait(50)
    saved_range = ct.panes[0].vb.viewRange()
    assert win.sessions.save(tmp_path / "s.json") is not None
    win.close()  # File › Quit: saved, so nothing is asked
    assert not win.isVisible() and not questions
    win.shutdown()

    again = MainWindow()
    qtbot.addWidget(again)
    again.resize(1366, 768)
    again.show()
    _restore(qtbot, again, tmp_path / "s.json")
    assert Path(again.session.path) == CT.resolve()
    assert again.analysis.task == "reconstruct" and again.analysis.model == "ct-dae"
    back = again.session.results["reconstruct"]
    assert back.model == entry.model and type(back.result) is type(entry.result)
    np.testing.assert_array_equal(back.result.anomaly.array, entry.result.anomaly.array)
    np.testing.assert_array_equal(back.result.reconstruction.array, entry.result.reconstruction.array)
    np.testing.assert_array_equal(back.result.anomaly.mask, entry.result.anomaly.mask)
    assert back.result.summary == json.loads(json.dumps(entry.result.summary))
    assert again.results.summary.text().startswith("Anomaly: max")
    c2 = again.ct_view
    assert c2.index == 2 and (c2.level, c2.width) == (40.0, 400.0)
    assert c2.compare_box.isChecked()
    np.testing.assert_allclose(c2.panes[0].vb.viewRange(), saved_range, atol=1.0)
    assert again.results.opacity.value() == 30
    assert not again.sessions.dirty and not errors
    again.shutdown()


def test_changed_input_is_refused_with_a_clear_message(qtbot, tmp_path, window, errors):
    img = tmp_path / "he.png"
    shutil.copy(HE, img)
    open_and_wait(qtbot, window, img)
    assert window.sessions.save(tmp_path / "s.json")
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["input"]["sha256"] == session_files.input_sha256(img)
    img.write_bytes(img.read_bytes() + b"\0")  # the input changed after the session was saved
    window.session.close()
    failed = []
    window.sessions.restoreFailed.connect(failed.append)
    assert not window.sessions.restore(tmp_path / "s.json")
    assert failed and "has changed since the session was saved" in failed[0]
    assert any("has changed" in e for e in errors)
    assert window.session.data is None  # nothing of the other data is shown


def test_results_round_trip_exactly_including_a_signal():
    """The session codec rebuilds engine results as the same classes with the same values."""
    from engine.data import Annotation, Signal
    from engine.results import DenoisedSignal, SegmentScores

    sig = Signal.from_array(np.random.default_rng(0).normal(size=(2, 300)).astype(np.float32), sfreq=100.0,
                            modality="eeg", channels=("Fz", "Cz"), annotations=(Annotation(1.0, 0.5, "spike"),))
    for result in (DenoisedSignal(signal=sig, model="m", sha256="ab", params={"win": (1, 2)}),
                   SegmentScores(start=np.arange(3), stop=np.arange(3) + 5, score=np.ones(3, np.float32),
                                 label=np.array([0, 1, 0]), model="m", sha256="", names=("a", "b", "c"))):
        arrays: dict = {}
        back = session_files.decode(json.loads(json.dumps(session_files.encode(result, arrays))), arrays)
        assert type(back) is type(result)
        if isinstance(result, DenoisedSignal):
            np.testing.assert_array_equal(back.signal.data, sig.data)
            assert back.signal.channels == sig.channels and back.signal.annotations == sig.annotations
            assert back.params == {"win": (1, 2)}
        else:
            assert back.names == result.names and back.score.dtype == np.float32


def test_a_session_names_only_engine_classes(tmp_path):
    doc = {"__dataclass__": "subprocess:Popen", "fields": {"args": "true"}}
    with pytest.raises(session_files.SessionError, match="not an engine result"):
        session_files.decode(doc, {})


def test_automation_saves_then_restores_a_session(tmp_path):
    """python -m desktop FILE --task T --save-session S --quit, then --session S --screenshot P --quit."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", LATENT_SETTINGS_DIR=str(tmp_path / "settings"))
    s, png = tmp_path / "he.json", tmp_path / "restored.png"
    run = [sys.executable, "-m", "desktop"]
    first = subprocess.run(run + [str(HE), "--task", "detect-nuclei", "--save-session", str(s), "--quit"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    doc = json.loads(s.read_text())
    assert doc["input"]["sha256"] == session_files.input_sha256(HE)
    assert [r["task"] for r in doc["results"]] == ["detect-nuclei"]
    assert (tmp_path / doc["results"][0]["file"]).is_file()
    second = subprocess.run(run + ["--session", str(s), "--screenshot", str(png), "--quit"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert png.stat().st_size > 10_000
