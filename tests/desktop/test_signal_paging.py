"""Issue 21, item 4: a page turn updates the viewer's plot items in place (calibration bars and
labels, annotation markers, the time grid, result traces) instead of building new ones; the
calibration bars are built again when what they show changes (the gain).

Speed itself is measured by benchmarks/bench_viewer.py, not here.
"""
from __future__ import annotations

import numpy as np
import pytest
from desktop_helpers import open_and_wait
from PySide6.QtCore import Qt

from desktop.session import ResultEntry


@pytest.fixture
def eeg_path(data_dir):
    return data_dir / "eeg" / "eegmmidb" / "S001R03.edf"


def _on_plot(view, item) -> bool:
    return item in view.plot.getPlotItem().items


def _bar_x(item) -> float:
    return float(item.getData()[0][0]) if hasattr(item, "amplitude") else float(item.pos().x())


def test_calibration_items_are_kept_across_pages_and_rebuilt_when_the_gain_changes(qtbot, window, eeg_path, errors):
    open_and_wait(qtbot, window, eeg_path)
    view = window.signal_view
    before = list(view.calibration)
    (bar, label) = before  # one bar stands for every lane at the common µV/div
    text = label.textItem.toPlainText()
    x0 = _bar_x(bar)
    for page in range(1, 4):
        qtbot.keyClick(view, Qt.Key.Key_Right)
        assert view.start == pytest.approx(page * view.window)
        assert len(view.calibration) == 2 and all(a is b for a, b in zip(view.calibration, before))
        assert all(_on_plot(view, it) for it in before)
        last = max(float(c.getData()[0][-1]) for c in view.curves if c.isVisible())
        (_, x1), _ = view.plot.getPlotItem().getViewBox().viewRange()
        for item in before:  # moved with the page, into the new gutter
            assert _bar_x(item) == pytest.approx(x0 + page * view.window)
            assert last < _bar_x(item) < x1
        assert label.textItem.toPlainText() == text
    common = view.lanes.common
    qtbot.keyClick(view, Qt.Key.Key_Plus)  # more gain: a finer µV/div for every lane
    assert view.lanes.common < common
    after = list(view.calibration)
    assert len(after) == 2 and not any(a is b for a in after for b in before)
    assert not any(_on_plot(view, it) for it in before) and all(_on_plot(view, it) for it in after)
    new_bar, new_label = after
    factor = float(view.lanes.factors()[0])
    assert new_bar.half_height == pytest.approx(0.5 * new_bar.amplitude * factor)
    assert new_label.textItem.toPlainText() == f"{new_bar.amplitude:g} µV"
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert all(a is b for a, b in zip(view.calibration, after))  # and kept again from there
    assert errors == []


def test_annotation_markers_are_relabelled_in_place(qtbot, window, eeg_path, errors):
    data = open_and_wait(qtbot, window, eeg_path)
    view = window.signal_view
    onsets = np.array([a.onset for a in data.annotations])
    counts = []

    def check_page():
        t0, t1 = view.start, view.start + view.window
        expected = [a for a in data.annotations if t0 <= a.onset < t1]
        shown = view.markers
        assert [m.value() for m in shown] == pytest.approx([a.onset for a in expected])
        assert [m.label.toPlainText() for m in shown] == [a.description.strip()[:12] for a in expected]
        assert all(m.isVisible() and _on_plot(view, m) for m in shown)
        counts.append(len(view.plot.getPlotItem().items))

    pages = int(data.duration // view.window)
    assert len(onsets) == 30 and pages >= 10
    for _ in range(2):  # twice through the record: the second pass builds nothing new
        view.set_start(0.0)
        check_page()
        for _ in range(pages):
            qtbot.keyClick(view, Qt.Key.Key_Right)
            check_page()
    first, second = counts[: pages + 1], counts[pages + 1:]
    assert second == [first[-1]] * len(second)  # the plot holds the same items, page after page
    assert errors == []


def test_time_grid_follows_the_axis_ticks_and_gives_way_to_ecg_paper(qtbot, window, data_dir, eeg_path, errors):
    open_and_wait(qtbot, window, eeg_path)
    view = window.signal_view
    axis = view.plot.getPlotItem().getAxis("bottom")
    vb = view.plot.getPlotItem().getViewBox()
    for _ in range(2):
        (x0, x1), _ = vb.viewRange()
        major = axis.tickValues(x0, x1, float(vb.width()))[0][1]
        grid = view.time_grid.items
        assert grid and grid[0].times == pytest.approx(major)  # one line per major tick of the page
        assert all(x0 - 1e-6 <= t <= x1 + 1e-6 for item in grid for t in item.times)
        qtbot.keyClick(view, Qt.Key.Key_Right)
    open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    assert view.paper_grid_on() and view.grid_items and view.time_grid.items == []
    view.grid_box.setChecked(False)
    assert view.grid_items == [] and view.time_grid.items
    assert errors == []


def test_result_traces_are_kept_across_pages(qtbot, window, eeg_path, errors):
    from engine.data import Signal
    from engine.results import DenoisedSignal

    data = open_and_wait(qtbot, window, eeg_path)
    view = window.signal_view
    half = Signal.from_array(data.data * 0.5, sfreq=data.sfreq, modality="eeg", channels=data.channels)
    window.session.add_result(ResultEntry(task="denoise", result=DenoisedSignal(half, "eeg-test", "d" * 64),
                                          model="eeg-test", device="CPU", seconds=0.1))
    curves = list(view.overlay_curves)
    assert len(curves) == len(view.visible_channels())
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert all(a is b for a, b in zip(view.overlay_curves, curves)) and len(view.overlay_curves) == len(curves)
    vis = view.visible_channels()
    x_orig, y_orig = view.curves[vis[5]].getData()
    x_den, y_den = view.overlay_curves[5].getData()
    assert x_den[0] == pytest.approx(view.start) and x_den == pytest.approx(x_orig)  # the new page
    np.testing.assert_allclose(y_den - y_den.mean(), 0.5 * (y_orig - y_orig.mean()), atol=1e-3)
    assert errors == []
