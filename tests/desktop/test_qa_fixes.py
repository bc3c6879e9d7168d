"""Regressions found by trying the app at 1366×768 under a real X server."""
from __future__ import annotations

import numpy as np


def test_beat_scores_below_zero_stay_visible(qtbot):
    """Beat scores are centred on normal beats, so many are negative; the track must show them."""
    from desktop.views.signal.tracks import ScoreTrack

    track = ScoreTrack()
    qtbot.addWidget(track)
    score = np.array([0.29, 3.5, -0.02, -0.32, -0.78, 3.5, -0.49])
    track.show_beats(np.arange(score.size, dtype=float), score, threshold=2.66)
    lo, hi = track.getPlotItem().vb.viewRange()[1]
    assert lo <= score.min() and hi >= score.max()
    track.show_segments(np.arange(3.0), np.arange(3.0) + 1, np.array([-1.5, 0.2, 4.0]), np.array([0, 0, 1]), 2.0)
    lo, hi = track.getPlotItem().vb.viewRange()[1]
    assert lo <= -1.5 and hi >= 4.0
    track.show_beats(np.arange(3.0), np.array([0.1, 0.5, 1.0]), threshold=2.0)
    lo, hi = track.getPlotItem().vb.viewRange()[1]
    assert lo == 0.0 and hi >= 2.0


def test_results_table_gets_the_room_at_1366x768(qtbot, window):
    """The Analysis dock used to keep ~240 px of blank space, leaving the nucleus table three rows."""
    window.resize(1366, 768)
    for dock in (window.analysis_dock, window.results_dock):
        dock.setFloating(False)
        dock.show()
    window.results_dock.raise_()
    qtbot.wait(20)
    window._size_docks()
    qtbot.wait(50)
    analysis, results = window.analysis_dock.height(), window.results_dock.height()
    assert analysis <= window.analysis_dock.minimumSizeHint().height() + 40
    assert results > 2 * analysis
    table = window.results.table
    row = table.verticalHeader().defaultSectionSize()
    assert row <= table.fontMetrics().height() + 8
    assert table.minimumHeight() >= 5 * row


def test_png_without_scale_can_be_given_one(qtbot, window):
    """A PNG has no microns per pixel, so there was no scale bar and no way to give one."""
    from pathlib import Path

    from desktop_helpers import open_and_wait

    sample = Path(__file__).resolve().parents[2] / "resources" / "samples" / "histology" / "crchisto_img4.png"
    data = open_and_wait(qtbot, window, sample)
    assert not data.mpp and not window.slide_view.scale_bar.isVisible()
    assert "Set image scale" in window.slide_view.panes[0].title.text()
    assert window.mpp_act.isEnabled()
    window.open_with_mpp(0.5)
    qtbot.waitUntil(lambda: window.session.data is not data and not window.opener.busy, timeout=30_000)
    qtbot.wait(50)
    assert window.session.data.mpp == 0.5
    assert window.session.read_options.get("mpp") == 0.5
    window.slide_view.fit()
    qtbot.waitUntil(window.slide_view.scale_bar.isVisible, timeout=5_000)
    assert "µm" in window.slide_view.scale_bar.text or "mm" in window.slide_view.scale_bar.text


def test_failed_open_does_not_leave_opening_in_the_status_bar(qtbot, window, errors, tmp_path):
    bad = tmp_path / "broken.edf"
    bad.write_bytes(b"\x00\x13garbage" * 300)
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: bool(errors), timeout=30_000)
    assert "broken.edf" in errors[0]
    assert "Opening" not in window.statusBar().currentMessage()
    assert not window.mpp_act.isEnabled()


def test_task_names_are_never_clipped(qtbot, window):
    """In a narrow Analysis dock the task combo used to read 'Reconstruct + anomaly ma'."""
    box = window.analysis.task_box
    longest = max((box.itemText(i) for i in range(box.count())), key=len)
    assert longest
    needed = box.fontMetrics().horizontalAdvance(longest)
    assert box.minimumSizeHint().width() >= needed + 20


def test_task_and_model_choice_wait_for_data(qtbot, window):
    """With nothing open the model combo only offered 'Load weights file…'; now both wait for a file."""
    from pathlib import Path

    from desktop_helpers import open_and_wait

    panel = window.analysis
    assert not panel.task_box.isEnabled() and not panel.model_box.isEnabled()
    sample = Path(__file__).resolve().parents[2] / "resources" / "samples" / "histology" / "crchisto_img4.png"
    open_and_wait(qtbot, window, sample)
    assert panel.task_box.isEnabled() and panel.model_box.isEnabled()
    window.session.close()
    qtbot.wait(10)
    assert not panel.task_box.isEnabled() and not panel.model_box.isEnabled()


def _automation(window, argv):
    from PySide6.QtWidgets import QApplication

    from desktop.app import Automation, build_parser

    return Automation(window, build_parser().parse_args(argv), QApplication.instance())


def test_opening_a_file_from_the_command_line_keeps_dialogs(qtbot, window):
    """`python -m desktop FILE` (Open with…) used to switch every dialog off for the whole session:
    no error messages, no Help, no sampling-rate prompt."""
    from pathlib import Path

    from desktop.dialogs import messages

    sample = Path(__file__).resolve().parents[2] / "resources" / "samples" / "histology" / "crchisto_img4.png"
    auto = _automation(window, [str(sample)])
    auto.start()
    qtbot.waitUntil(lambda: window.session.data is not None and not window.opener.busy, timeout=30_000)
    assert messages._interactive and window.opener.interactive
    assert auto.handled and auto.exit_code is None
    try:
        headless = _automation(window, [str(sample), "--screenshot", "/nonexistent/x.png"])
        headless.start()
        assert not messages._interactive and not window.opener.interactive
    finally:
        messages.set_interactive(True)
        window.opener.interactive = True


def test_result_chooser_only_when_there_are_results(qtbot, window):
    """An empty result chooser sat under the layers before any result, looking like a control to use."""
    from pathlib import Path

    from desktop_helpers import open_and_wait, run_and_wait

    panel = window.results
    assert panel.result_box.isHidden()
    sample = Path(__file__).resolve().parents[2] / "resources" / "samples" / "histology" / "crchisto_img4.png"
    open_and_wait(qtbot, window, sample)
    assert panel.result_box.isHidden()
    run_and_wait(qtbot, window, "detect-nuclei")
    assert not panel.result_box.isHidden() and panel.result_box.count() == 1
    window.session.clear_results()
    assert panel.result_box.isHidden()


def test_annotation_labels_sit_beside_their_line(qtbot):
    """Labels were centred on the line: struck through, and cut in half at the start of a page."""
    import inspect

    from desktop.views.signal.layers import annotation_lines
    from engine.data import Annotation

    fields = inspect.signature(Annotation).parameters
    kw = {"onset": 0.0, "duration": 0.0, "description": "T0"}
    ann = Annotation(**{k: v for k, v in kw.items() if k in fields})
    (line,) = annotation_lines([ann], 0.0, 10.0)
    assert line.label.toPlainText() == "T0"
    assert all(ax <= 0 for ax, _ in line.label.anchors)  # text starts at (or right of) the line
