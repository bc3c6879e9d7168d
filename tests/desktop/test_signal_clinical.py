"""Issue 19, items 2 and 6: reading a 64-channel EEG as EDFbrowser / the MNE browser let one
(every channel, one µV/division, montages), and the signal viewer's first-use surprises."""
from __future__ import annotations

import numpy as np
import pytest
from desktop_helpers import open_and_wait, run_and_wait
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication

from desktop.views.signal.lanes import MIN_LANE_PX


@pytest.fixture
def eeg_path(data_dir):
    return data_dir / "eeg" / "eegmmidb" / "S001R03.edf"


def lane_px(view) -> float:
    vb = view.plot.getPlotItem().getViewBox()
    (_, _), (y0, y1) = vb.viewRange()
    return vb.height() / (y1 - y0)


def bars(view):
    return [it for it in view.calibration if hasattr(it, "amplitude")]


def test_every_eeg_channel_has_a_lane_in_scrolled_groups(qtbot, window, eeg_path, errors):
    data = open_and_wait(qtbot, window, eeg_path)
    view = window.signal_view
    assert view.visible_channels() == list(range(64))  # F1, Fz, T7, T8, O1, O2 were hidden before
    top, per = view.lane_window()
    assert top == 0 and 8 <= per < 64 and view.lane_bar.isVisible() and lane_px(view) >= MIN_LANE_PX
    seen = set(range(top, top + per))
    for _ in range(64):
        qtbot.keyClick(view, Qt.Key.Key_Down)  # the next channel group
        top, per = view.lane_window()
        seen |= set(range(top, top + per))
    assert seen == set(range(64)) and top == 64 - per  # the last group ends on the last channel
    names = {data.metadata["clean_names"][view.visible_channels()[k]] for k in seen}
    assert {"F1", "Fz", "T7", "T8", "O1", "O2", "Iz"} <= names
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert view.lane_window()[0] == 64 - 2 * per
    view.channels.all_box.click()  # all ticked: a click ticks none, the next every channel
    assert view.visible_channels() == [] and view.channels.all_box.checkState() == Qt.CheckState.Unchecked
    view.channel_list.item(3).setCheckState(Qt.CheckState.Checked)
    assert view.channels.all_box.checkState() == Qt.CheckState.PartiallyChecked
    view.channels.all_box.click()
    assert len(view.visible_channels()) == 64 and all(c.isVisible() for c in view.curves)
    assert errors == []


def test_eeg_lanes_share_one_microvolt_scale_with_per_channel_override(qtbot, window, eeg_path, errors):
    open_and_wait(qtbot, window, eeg_path)
    view = window.signal_view
    assert len(bars(view)) == 1  # one calibration bar stands for all lanes (not 100, 200, 500 µV ones)
    common = view.lanes.common
    factors = view.lanes.factors()
    assert common is not None and np.allclose(factors, 1.0 / common)  # one µV/div for every lane
    assert view.scale_box.isVisible() and view.scale_box.currentData() == common
    label = next(it for it in view.calibration if not hasattr(it, "amplitude")).textItem.toPlainText()
    assert label.endswith("µV")
    view.channel_list.item(2).setSelected(True)
    qtbot.keyClick(view, Qt.Key.Key_Plus)  # more gain for the selected channel only
    own = view.lanes.override[2]
    assert own < common and view.lanes.common == common
    factors = view.lanes.factors()
    assert factors[2] == pytest.approx(1.0 / own) and np.allclose(np.delete(factors, 2), 1.0 / common)
    assert "µV/div" in view.channel_list.item(2).text() and len(bars(view)) == 2
    view.channel_list.clearSelection()
    view.scale_box.setCurrentIndex(view.scale_box.findData(500.0))  # the common scale for everyone else
    assert view.lanes.factors()[0] == pytest.approx(1.0 / 500.0) and view.lanes.factors()[2] == pytest.approx(1 / own)
    view.auto_scale()
    assert view.lanes.override == {} and "µV/div" not in view.channel_list.item(2).text()
    assert errors == []


def test_a_score_track_neither_squashes_lanes_nor_overlaps_labels(qtbot, window, eeg_path, errors):
    from desktop.session import ResultEntry
    from engine.results import SegmentScores

    data = open_and_wait(qtbot, window, eeg_path)
    view = window.signal_view
    before = lane_px(view)
    starts = np.arange(0, data.n_samples - 640, 640)
    result = SegmentScores(start=starts, stop=starts + 640, score=np.linspace(-2, 2, len(starts)).astype(np.float32),
                           label=(np.arange(len(starts)) % 5 == 0).astype(np.int64), model="eeg-seizure",
                           sha256="0" * 64, threshold=0.0)
    window.session.add_result(ResultEntry(task="score-segments", result=result, model="eeg-seizure"))
    qtbot.waitUntil(view.scores.isVisible, timeout=5_000)
    qtbot.wait(50)  # the plot's new height arrives through a resize
    text_h = QFontMetrics(view.plot.getPlotItem().getAxis("left").style.get("tickFont")
                          or view.font()).height()
    assert lane_px(view) >= max(MIN_LANE_PX, text_h)  # labels one lane apart do not overlap
    assert lane_px(view) > 0.9 * before  # fewer lanes on screen, each about as tall as before
    assert errors == []


def test_montages_apply_to_the_display_and_to_the_analysis(qtbot, window, eeg_path, tmp_path, errors):
    from engine.data import Signal
    from engine.export.signals import write_edf
    from engine.io import read

    whole = read(eeg_path)
    short = tmp_path / "S001R03_10s.edf"
    write_edf(Signal.from_array(whole.read(0, 1600), sfreq=whole.sfreq, modality="eeg", channels=whole.channels,
                                units=whole.units), short)
    data = open_and_wait(qtbot, window, short)
    view = window.signal_view
    assert view.montage_box.isVisible() and view.montage_box.currentData() == "none"
    view.montage_box.setCurrentIndex(view.montage_box.findData("average"))
    assert window.session.montage == "average" and view.signal.channels[33] == "Fz-Avg"
    x, y = view.curves[33].getData()
    avg = data.read(0, len(x))
    avg = avg[33] - avg.mean(axis=0)
    np.testing.assert_allclose(y + view.visible_channels().index(33),
                               (avg - np.median(avg)) * view.lanes.factors()[33], atol=1e-4)
    view.montage_box.setCurrentIndex(view.montage_box.findData("bipolar"))
    assert len(view.visible_channels()) == 18 and view.signal.channels[0] == "Fp1-F7"
    entry = run_and_wait(qtbot, window, "reconstruct")
    assert entry.result.params["montage"] == "bipolar" and entry.result.anomaly.array.shape[0] == 18
    with qtbot.waitSignal(window.export.exported, timeout=60_000) as written:
        window.export.export_to(tmp_path / "out")
    summary = next(p for p in written.args[0] if p.endswith(".json"))
    with open(summary) as fh:
        assert '"montage": "bipolar"' in fh.read()  # the saved summary names the montage
    view.montage_box.setCurrentIndex(view.montage_box.findData("laplacian"))
    assert window.session.results == {}  # results of another montage do not stay on these lanes
    open_and_wait(qtbot, window, eeg_path)  # a new file is shown as recorded
    assert window.session.montage == "none" and view.montage_box.currentData() == "none"
    assert len(view.signal.channels) == 64 and errors == []


def test_sampling_rate_prompt_defaults_to_the_models_rate(qtbot, window, data_dir, monkeypatch, errors):
    from PySide6.QtWidgets import QInputDialog

    from desktop import settings as prefs
    from engine.tasks.score_segments import model_sfreq

    asked = []
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *a, **k: (asked.append(a) or (a[3], True))))
    prefs.settings().remove("last_sfreq")
    path = next((data_dir / "eeg" / "bonn" / "A_Z").glob("*.txt"))
    data = open_and_wait(qtbot, window, path)
    assert asked[0][3] == pytest.approx(model_sfreq()) == pytest.approx(173.61)
    assert data.sfreq == pytest.approx(173.61)
    prefs.settings().setValue("last_sfreq", 256.0)  # a value typed once for another file is named, not forced
    open_and_wait(qtbot, window, path)
    assert asked[1][3] == pytest.approx(173.61) and "last used: 256 Hz" in asked[1][2]
    assert errors == []


def test_display_filters_do_not_carry_over_to_the_next_file(qtbot, window, data_dir, eeg_path, errors):
    open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    view = window.signal_view
    view.hp_box.setCurrentIndex(view.hp_box.findData(1.0))
    assert view.filters.active
    open_and_wait(qtbot, window, eeg_path)
    assert not view.filters.active and view.hp_box.currentData() is None
    view.lp_box.setCurrentIndex(view.lp_box.findData(30.0))
    assert "background" in view.lp_box.styleSheet() and view.hp_box.styleSheet() == ""  # plain to see while on
    assert errors == []


def test_arrow_keys_page_after_choosing_in_a_combo_box(qtbot, window, eeg_path, errors):
    open_and_wait(qtbot, window, eeg_path)
    view = window.signal_view
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    for box in (window.analysis.task_box, view.window_box):  # a dock's box, the tool bar's box
        start = view.start
        box.setFocus()
        qtbot.waitUntil(box.hasFocus, timeout=2_000)
        qtbot.keyClick(box, Qt.Key.Key_Down)  # a choice made in the box
        qtbot.waitUntil(view.hasFocus, timeout=2_000)
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Right)
        assert view.start == pytest.approx(start + view.window)
    assert errors == []


def test_calibration_bars_sit_beside_the_traces(qtbot, window, data_dir, errors):
    open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    view = window.signal_view
    (_, x1), _ = view.plot.getPlotItem().getViewBox().viewRange()
    last = max(float(c.getData()[0][-1]) for c in view.curves if c.isVisible())
    assert len(bars(view)) == 2
    for item in view.calibration:
        x = item.getData()[0][0] if hasattr(item, "amplitude") else item.pos().x()
        assert last < x < x1  # in the gutter: right of every sample, inside the plot
    assert errors == []


def test_a_truncated_edf_says_what_is_missing(qtbot, window, eeg_path, tmp_path, errors):
    cut = tmp_path / "cut.edf"
    raw = eeg_path.read_bytes()
    cut.write_bytes(raw[: int(len(raw) * 0.6)])
    data = open_and_wait(qtbot, window, cut)
    info = data.metadata["truncated"]
    view = window.signal_view
    assert f"{info['missing_s']:g} s" in window.statusBar().currentMessage()
    assert view.notice.isVisible() and "Truncated file" in view.notice.text()
    assert f"read {info['records_read']} of {info['records_announced']}" in view.notice.text()
    open_and_wait(qtbot, window, eeg_path)
    assert not view.notice.isVisible() and errors == []
