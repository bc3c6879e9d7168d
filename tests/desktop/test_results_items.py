"""Issue 19 item 7: full-resolution view PNG, export folder outside the install folder, a sortable
nuclei table whose selected nucleus is ringed on the slide, the anomaly figure of the summary with
its mask named, and the task box keeping the user's task across files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from desktop.resources import resources_dir
from desktop_helpers import open_and_wait, run_and_wait

SAMPLES = resources_dir() / "samples"
HE = SAMPLES / "histology" / "crchisto_img4.png"
CT = SAMPLES / "ct" / "LIDC-IDRI-0001-nodule"
ECG = SAMPLES / "ecg" / "119.hea"


def test_view_png_is_full_resolution_not_screen_sized(qtbot, window, monkeypatch, tmp_path):
    open_and_wait(qtbot, window, CT)
    window.ct_view.panes[0].vb.setRange(xRange=(0, 400), yRange=(0, 400), padding=0)  # zoomed out: < 1 px/px
    qtbot.wait(50)
    out = tmp_path / "view.png"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), ""))
    window.export.ask_png()
    img = QImage(str(out))
    view = window.ct_view.size()
    assert img.width() >= 2 * view.width() and img.height() >= 2 * view.height()
    vb = window.ct_view.panes[0].vb
    (x0, x1), _ = vb.viewRange()
    mm_per_px = float(window.session.data.spacing[2])
    image_px_shown = (x1 - x0) / mm_per_px
    assert img.width() * vb.width() / view.width() >= image_px_shown  # >= 1 output px per image px


def test_export_dialogs_start_outside_the_install_folder(qtbot, window, monkeypatch):
    open_and_wait(qtbot, window, HE)  # a bundled sample: the last folder opened is inside the install
    run_and_wait(qtbot, window, "detect-nuclei")
    starts = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda parent, title, start="", *a: starts.append(start) or "")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda parent, title, start="", *a: starts.append(start) or ("", ""))
    window.export.ask_results()
    window.export.ask_png()
    install = resources_dir().parent.resolve()
    assert len(starts) == 2
    for start in starts:
        assert install not in Path(start).resolve().parents and Path(start).resolve() != install, start


def test_nuclei_table_sorts_and_the_selected_nucleus_is_highlighted(qtbot, window):
    open_and_wait(qtbot, window, HE)
    entry = run_and_wait(qtbot, window, "detect-nuclei")
    table = window.results.table
    score_col = list(table.model().headers).index("score")
    table.sortByColumn(score_col, Qt.SortOrder.DescendingOrder)
    model = table.model()
    shown = [float(model.data(model.index(r, score_col))) for r in range(min(20, model.rowCount()))]
    assert shown == sorted(shown, reverse=True) and shown[0] == round(float(entry.result.score.max()), 2)
    table.selectRow(0)  # the most nucleus-like
    qtbot.wait(20)
    best = np.asarray(entry.result.xy)[int(np.argmax(entry.result.score))]
    ring = window.slide_view.highlight.data
    assert len(ring) == 1
    np.testing.assert_allclose([ring["x"][0], ring["y"][0]], best)
    (x0, x1), (y0, y1) = window.slide_view.vb.viewRange()
    assert x0 <= best[0] <= x1 and y0 <= best[1] <= y1


def test_anomaly_figure_is_the_summary_s_and_names_its_mask(qtbot, window):
    open_and_wait(qtbot, window, CT)
    entry = run_and_wait(qtbot, window, "reconstruct")
    from engine.tasks import TASKS

    summary = TASKS["reconstruct"].summarizer()(entry.result, window.session.data)
    frac = summary["anomaly"]["stats"]["fraction_above_1"]
    text = window.results.summary.text()
    assert f"{100 * frac:.1f}% of the body (mask:" in text
    whole = float(np.mean(np.asarray(entry.result.anomaly.array) > 1))
    assert entry.result.anomaly.mask is not None and "above 1" in text
    if f"{100 * whole:.1f}" != f"{100 * frac:.1f}":  # the old panel's whole-image figure is not shown
        assert f"{100 * whole:.1f}% above" not in text


def test_task_box_keeps_the_users_task_across_files(qtbot, window):
    open_and_wait(qtbot, window, HE)
    box = window.analysis.task_box
    i = box.findData("detect-nuclei")
    box.setCurrentIndex(i)
    box.activated.emit(i)  # what a user's choice in the combo box emits
    open_and_wait(qtbot, window, CT)  # does not apply to CT: the first task that does
    assert window.analysis.task == "reconstruct"
    open_and_wait(qtbot, window, HE)
    assert window.analysis.task == "detect-nuclei"
    open_and_wait(qtbot, window, ECG)
    assert window.analysis.task == "reconstruct"
