"""Issue 19 item 4: opening another file no longer discards results unasked; Ctrl+Q during a run asks."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence

from desktop.dialogs import messages
from desktop.resources import resources_dir
from desktop_helpers import open_and_wait, run_and_wait

SAMPLES = resources_dir() / "samples"
HE = SAMPLES / "histology" / "crchisto_img4.png"
ECG = SAMPLES / "ecg" / "119.hea"
CT = SAMPLES / "ct" / "LIDC-IDRI-0001-nodule"


def test_opening_another_file_asks_before_results_are_lost(qtbot, window, monkeypatch, questions, tmp_path):
    open_and_wait(qtbot, window, HE)
    run_and_wait(qtbot, window, "detect-nuclei")
    answers = iter(["cancel", "cancel", "save"])
    monkeypatch.setattr(messages, "ask_unsaved", lambda parent, text: questions.append(text) or next(answers))
    window.open_path(str(ECG))  # Cancel: nothing happens
    qtbot.wait(50)
    assert not window.opener.busy and window.session.modality == "histology"
    assert "detect-nuclei" in window.session.results and "not saved" in questions[0]
    window.close_act.trigger()  # File › Close, Cancel: still open
    assert window.session.data is not None
    # Save: the session dialog writes the file, then the other file opens
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "kept.json"), ""))
    open_and_wait(qtbot, window, ECG)
    assert (tmp_path / "kept.json").is_file() and (tmp_path / "kept.results" / "detect-nuclei.npz").is_file()
    assert window.session.modality == "ecg" and len(questions) == 3


def test_ctrl_q_during_a_run_asks_and_no_keeps_the_window(qtbot, window, monkeypatch, questions):
    open_and_wait(qtbot, window, CT)
    answers = iter([False, True])
    monkeypatch.setattr(messages, "ask_quit_running", lambda parent, text: questions.append(text) or next(answers))
    assert window.analysis.run_task("reconstruct")
    assert window.analysis.busy  # its result can only arrive through the event loop
    quit_act = next(a for a in window.findChildren(type(window.close_act)) if a.text() == "&Quit")
    assert quit_act.shortcut() == QKeySequence("Ctrl+Q")
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert questions and "still running" in questions[0]
    assert window.isVisible() and window.analysis.busy  # "No": the run goes on
    quit_act.trigger()  # "Yes": the run is cancelled and the window closes
    assert not window.isVisible()
    qtbot.waitUntil(lambda: not window.analysis.busy, timeout=120_000)
    assert "reconstruct" not in window.session.results
