"""Each shared modality opens in its viewer; bad input gives an error dialog and the app goes on."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt

from desktop_helpers import open_and_wait


def test_ct_folder_opens_in_slice_view(qtbot, window, data_dir, errors):
    data = open_and_wait(qtbot, window, data_dir / "ct" / "dcmqi_liver_ct3")
    assert data.modality == "ct"
    assert window.stack.currentWidget() is window.ct_view
    view = window.ct_view
    assert view.volume.shape == (3, 512, 512)
    shown = view.images[0].image
    assert shown.shape == (512, 512)
    np.testing.assert_array_equal(shown, data.array[view.index])
    # orientation labels come from the direction cosines (axial: R on the left, A on top)
    assert view.panes[0].orient["left"].text() == "R" and view.panes[0].orient["top"].text() == "A"
    # slice scrolling by keys and window/level by presets and mouse drag
    start = view.index
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert view.index == min(start + 1, 2)
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert view.index == 0
    i = view.preset_box.findText("Lung")
    view.preset_box.setCurrentIndex(i)
    view.preset_box.activated.emit(i)
    assert (view.level, view.width) == (-600.0, 1500.0)
    assert view.images[0].levels[0] == pytest.approx(-1350.0)
    view._on_window_drag(10.0, -5.0)
    assert view.width > 1500.0 and view.level > -600.0
    # HU under the cursor goes to the status bar
    msgs = []
    view.statusMessage.connect(msgs.append)
    view._on_hover(100 * view.spacing[2] + 0.1, 200 * view.spacing[1] + 0.1)
    assert msgs and f"{data.array[0, 200, 100]:.0f} HU" in msgs[-1]
    assert errors == []
    assert "CT 3 × 512 × 512" in window.file_label.text()


def test_series_browser_picks_the_chosen_series(qtbot, window, data_dir, monkeypatch, errors):
    from desktop.dialogs import series_browser

    shown = {}

    def fake_exec(self):
        shown["n"] = self.list.count()
        shown["icons"] = [not self.list.item(i).icon().isNull() for i in range(self.list.count())]
        # choose the other series than the one preselected
        row = 1 - self.list.currentRow()
        self.list.setCurrentRow(row)
        self.accept()
        return 1

    monkeypatch.setattr(series_browser.SeriesBrowser, "exec", fake_exec)
    data = open_and_wait(qtbot, window, data_dir / "ct" / "single")
    assert shown["n"] == 2 and all(shown["icons"])
    assert data.series_uid in {s.uid for s in data.series}
    assert errors == []


def test_histology_png_opens_with_tiles(qtbot, window, data_dir, errors):
    data = open_and_wait(qtbot, window, data_dir / "histo" / "crchisto" / "img1" / "img1.png")
    assert data.modality == "histology"
    assert window.stack.currentWidget() is window.slide_view
    assert window.slide_view.background.image.shape[:2] == (500, 500)
    assert errors == []


def test_wfdb_ecg_opens_in_signal_view(qtbot, window, data_dir, errors):
    data = open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    assert data.modality == "ecg" and data.sfreq == 360
    view = window.signal_view
    assert window.stack.currentWidget() is view
    x, y = view.curves[0].getData()
    assert len(x) == int(view.window * data.sfreq)  # only the page is drawn
    # the drawn trace is the page, centred and scaled
    page = data.read(0, len(x))[0]
    factor = 0.5 * view.global_gain * view.gain[0] / view.scale[0]
    np.testing.assert_allclose(y, (page - np.median(page)) * factor, rtol=1e-4, atol=1e-5)
    assert view.markers, "beat annotations should be drawn as markers"
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert view.start == pytest.approx(view.window)
    x2, _ = view.curves[0].getData()
    assert x2[0] == pytest.approx(view.window)
    # display filters change the drawing, not the data
    view.hp_box.setCurrentIndex(view.hp_box.findData(1.0))
    _, yf = view.curves[0].getData()
    assert abs(np.median(yf)) < abs(np.median(y)) + 0.5
    assert data.read(0, 10).shape == (2, 10)
    assert errors == []


def test_edf_eeg_opens_with_annotations(qtbot, window, data_dir, errors):
    data = open_and_wait(qtbot, window, data_dir / "eeg" / "eegmmidb" / "S001R03.edf")
    assert data.modality == "eeg" and len(data.channels) == 64
    view = window.signal_view
    assert len(view.visible_channels()) == 64  # every channel has a lane (issue 19)
    view.channel_list.item(40).setCheckState(Qt.CheckState.Unchecked)
    assert 40 not in view.visible_channels() and not view.curves[40].isVisible()
    view.centre_on(60.0)
    assert view.start == pytest.approx(60.0 - view.window / 2)
    assert errors == []


def test_bonn_text_asks_for_the_sampling_rate(qtbot, window, data_dir, monkeypatch, errors):
    from PySide6.QtWidgets import QInputDialog

    asked = []
    monkeypatch.setattr(QInputDialog, "getDouble", staticmethod(lambda *a, **k: (asked.append(a) or (173.61, True))))
    path = next((data_dir / "eeg" / "bonn" / "E_S").glob("*.txt"))
    data = open_and_wait(qtbot, window, path)
    assert asked, "the sampling rate was not asked"
    assert data.sfreq == pytest.approx(173.61) and data.n_samples == 4097
    assert errors == []


def test_corrupt_file_shows_error_and_app_keeps_working(qtbot, window, data_dir, tmp_path, errors):
    bad = tmp_path / "broken.png"
    good = (data_dir / "histo" / "crchisto" / "img1" / "img1.png").read_bytes()
    bad.write_bytes(good[:200])  # a truncated PNG
    window.open_path(str(bad))
    qtbot.waitUntil(lambda: bool(errors), timeout=30_000)
    assert "broken.png" in errors[0]
    assert window.session.data is None
    junk = tmp_path / "notes.dcm"
    junk.write_bytes(b"this is not DICOM at all" * 10)
    window.open_path(str(junk))
    qtbot.waitUntil(lambda: len(errors) >= 2, timeout=30_000)
    assert "notes.dcm" in errors[1]
    # still usable: a good file opens afterwards
    data = open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    assert data.modality == "ecg"
    assert len(errors) == 2, errors


def test_recent_files_are_remembered(qtbot, window, data_dir):
    from desktop import settings as prefs

    path = data_dir / "ecg" / "mitdb" / "100.hea"
    open_and_wait(qtbot, window, path)
    assert prefs.recent_files()[0] == str(path)
    window._fill_recent()
    assert any(a.text() == str(path) for a in window.recent_menu.actions())


def test_a_second_open_replaces_the_first(qtbot, window, data_dir, errors):
    """Opening while another file is still being read: the latest request wins, no error."""
    window.open_path(str(data_dir / "ct" / "lidc_idri" / "LIDC-IDRI-0001"))
    data = open_and_wait(qtbot, window, data_dir / "histo" / "crchisto" / "img1" / "img1.png")
    qtbot.wait(200)
    assert window.session.modality == "histology" and data.modality == "histology"
    assert errors == []


def test_image_and_plot_widgets_leave_keys_to_the_viewer(qtbot, window):
    """QGraphicsView would eat the arrow keys to scroll; the viewers page/slice with them instead."""
    views = [p.view for p in window.ct_view.panes + window.slide_view.panes]
    views += [window.signal_view.plot, window.signal_view.scores, window.signal_view.overview]
    assert all(v.focusPolicy() == Qt.FocusPolicy.NoFocus for v in views)
    assert window.ct_view.focusPolicy() == Qt.FocusPolicy.StrongFocus
    assert window.signal_view.focusPolicy() == Qt.FocusPolicy.StrongFocus


def test_folder_without_dicom_gives_an_error(qtbot, window, data_dir, errors):
    window.open_path(str(data_dir / "eeg" / "eegmmidb"))
    qtbot.waitUntil(lambda: bool(errors), timeout=30_000)
    assert "eegmmidb" in errors[0]
    assert window.session.data is None and not window.opener.busy
