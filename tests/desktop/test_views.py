"""Viewer internals with known answers: lazy tiles, fixed-scale heat-map, display filters, labels."""
from __future__ import annotations

import numpy as np
import pytest
from desktop_helpers import open_and_wait
from PySide6.QtCore import Qt

from desktop.session import OverlaySettings
from desktop.views.ct_view import orientation_labels
from desktop.views.overlays import heat_rgba, lut
from desktop.views.signal.filters import FilterSettings, apply_display_filters, envelope_job, robust_scale
from desktop.views.slide_view import TILE, choose_level, nice_length


def test_orientation_labels_from_direction_cosines():
    assert orientation_labels((1, 0, 0, 0, 1, 0)) == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    # sagittal: rows run posterior, columns run to the feet
    assert orientation_labels((0, 1, 0, 0, 0, -1)) == {"left": "A", "right": "P", "top": "H", "bottom": "F"}
    # coronal, slightly oblique: two letters, strongest first
    lab = orientation_labels((0.9, 0.4, 0, 0, 0, -1))
    assert lab["right"] == "LP" and lab["left"] == "RA"
    assert orientation_labels(None) == {}


def test_heat_map_uses_the_fixed_calibrated_scale():
    ov = OverlaySettings(colormap="inferno", opacity=0.5, threshold=0.5)
    low = heat_rgba(np.full((4, 4), 0.3, np.float32), ov)
    assert (low[..., 3] == 0).all(), "below threshold must be transparent"
    # a uniformly mild map is NOT stretched to the top of the colormap (no auto-scaling)
    mild = heat_rgba(np.full((4, 4), 0.6, np.float32), ov)
    np.testing.assert_array_equal(mild[0, 0, :3], lut("inferno")[int(0.6 / 2.0 * 255)])
    assert mild[0, 0, 3] == 128
    hot = heat_rgba(np.array([[2.0, 5.0, np.nan]], np.float32), ov)
    np.testing.assert_array_equal(hot[0, 0, :3], lut("inferno")[255])
    np.testing.assert_array_equal(hot[0, 1, :3], lut("inferno")[255])  # clipped, not rescaled
    assert hot[0, 2, 3] == 0  # NaN counts as typical


def test_display_filters_known_answers():
    sf = 250.0
    t = np.arange(int(10 * sf)) / sf
    x = (np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 50 * t) + 5.0).astype(np.float32)[None]
    notched = apply_display_filters(x, sf, FilterSettings(notch=50.0))
    spec = np.abs(np.fft.rfft(notched[0, 500:-500] - notched[0, 500:-500].mean()))
    f = np.fft.rfftfreq(notched.shape[1] - 1000, 1 / sf)
    assert spec[np.argmin(abs(f - 50))] < 0.02 * spec[np.argmin(abs(f - 10))]
    hp = apply_display_filters(x, sf, FilterSettings(highpass=1.0))
    assert abs(hp[0, 500:-500].mean()) < 0.05  # the 5.0 offset is gone
    lp = apply_display_filters(x, sf, FilterSettings(lowpass=30.0))
    spec = np.abs(np.fft.rfft(lp[0, 500:-500]))
    assert spec[np.argmin(abs(f - 50))] < 0.05 * spec[np.argmin(abs(f - 10))]
    # zero phase: the 10 Hz component is not shifted
    assert np.corrcoef(lp[0, 500:-500] - 5.0, np.sin(2 * np.pi * 10 * t[500:-500]))[0, 1] > 0.99
    # filters off, or a too-short piece: unchanged
    assert apply_display_filters(x, sf, FilterSettings()) is x
    short = x[:, :5]
    assert apply_display_filters(short, sf, FilterSettings(highpass=1.0)) is short


def test_envelope_and_scale():
    from engine.data import Signal
    from engine.jobs import run_job

    data = np.zeros((2, 10_000), np.float32)
    data[0, 1234] = 7.0
    data[0, 8000] = -3.0
    sig = Signal.from_array(data, sfreq=100.0, modality="eeg")
    t, lo, hi = run_job(envelope_job(sig, bins=100, chunk_seconds=7.0))
    assert len(t) == 100 and hi.max() == 7.0 and lo.min() == -3.0
    assert hi.argmax() == 12 and lo.argmin() == 80
    s = robust_scale(np.vstack([np.linspace(0, 100, 1001), np.zeros(1001)]).astype(np.float32))
    assert s[0] == pytest.approx(98.0, rel=0.01) and s[1] == 1.0


def test_scale_bar_and_level_choice():
    assert nice_length(137) == 100 and nice_length(260) == 200 and nice_length(0.7) == 0.5
    ds = [1.0, 4.0, 16.0, 64.0]
    assert choose_level(ds, 0.5) == 0
    assert choose_level(ds, 5.0) == 1
    assert choose_level(ds, 1000.0) == 3


def test_slide_view_reads_only_visible_tiles(qtbot, window):
    """A 'slide' of 160k x 120k px is never read whole: only the tiles in view, at the right level."""
    from engine.data import Image

    calls = []
    levels = ((120_000, 160_000), (30_000, 40_000), (7_500, 10_000), (1_875, 2_500))
    downs = (1.0, 4.0, 16.0, 64.0)

    def region(level, x, y, w, h):
        calls.append((level, x, y, w, h))
        out = np.zeros((h, w, 3), np.uint8)
        out[..., 0] = 200
        out[..., 2] = (level * 60) % 255
        return out

    img = Image(modality="histology", shape=(120_000, 160_000, 3), spacing=(0.25, 0.25), units="RGB8",
                path="virtual.svs", dtype="uint8", levels=levels, downsamples=downs, region_reader=region)
    window.session.set_data(img, "virtual.svs")
    view = window.slide_view
    assert window.stack.currentWidget() is view
    view._update_tiles()
    assert calls and all(w * h <= 2500 * 1875 for _, _, _, w, h in calls)
    assert calls[0][0] == 3  # the coarsest level as background, read whole (small)
    calls.clear()
    view.vb.setRange(xRange=(80_000, 80_000 + view.vb.width()), yRange=(60_000, 60_100), padding=0)
    view._update_tiles()
    qtbot.waitUntil(lambda: not view._more_tiles.isActive(), timeout=10_000)  # progressive passes
    assert view.current_level == 0
    assert calls and all(lv == 0 and w <= TILE and h <= TILE for lv, _, _, w, h in calls)
    assert all(79_000 <= x <= 82_000 for _, x, _, _, _ in calls)
    assert len(calls) <= 16
    n = len(calls)
    view._update_tiles()  # same view again: cached, no new reads
    assert len(calls) == n
    assert view.scale_bar.isVisible() and "µm" in view.scale_bar.text
    # centring on a detection
    window.session.focus(1000.0, 2000.0)
    (x0, x1), (y0, y1) = view.vb.viewRange()
    assert (x0 + x1) / 2 == pytest.approx(1000.0, abs=2) and (y0 + y1) / 2 == pytest.approx(2000.0, abs=2)


def test_amplitude_bar_known_answers():
    from desktop.views.signal.scale_bars import BAR_LANE_FRACTION, amplitude_bar

    assert amplitude_bar(0.25) == 2.0  # 0.5 lane / 0.25 per mV = 2 mV exactly
    assert amplitude_bar(0.3) == 1.0  # 1.67 mV fits -> 1 mV
    assert amplitude_bar(0.004) == 100.0  # an EEG lane of ~250 uV -> 100 uV
    assert amplitude_bar(0.0) == 0.0 and amplitude_bar(float("nan")) == 0.0
    for f in (0.013, 0.7, 3.3, 41.0):
        assert 0.2 * BAR_LANE_FRACTION < amplitude_bar(f) * f <= BAR_LANE_FRACTION


def test_signal_lanes_carry_calibration_bars(qtbot, window, data_dir, errors):
    """Each visible lane gets a bar of a round amplitude drawn with that lane's own factor."""
    data = open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    view = window.signal_view
    bars = [it for it in view.calibration if hasattr(it, "amplitude")]
    labels = [it for it in view.calibration if not hasattr(it, "amplitude")]
    assert len(bars) == len(labels) == len(data.channels) == 2
    for ch, (bar, label) in enumerate(zip(bars, labels)):
        factor = 0.5 * view.global_gain * view.gain[ch] / view.scale[ch]
        assert bar.half_height == pytest.approx(0.5 * bar.amplitude * factor)
        assert label.textItem.toPlainText() == f"{bar.amplitude:g} mV"
    before = bars[0].half_height
    qtbot.keyClick(view, Qt.Key.Key_Plus)  # more gain: the bar grows or a smaller round value is shown
    bar = [it for it in view.calibration if hasattr(it, "amplitude")][0]
    factor = 0.5 * view.global_gain * view.gain[0] / view.scale[0]
    assert bar.half_height == pytest.approx(0.5 * bar.amplitude * factor) and view.global_gain > 1.0
    assert bar.half_height != before or bar.amplitude != bars[0].amplitude
    assert errors == []


def test_ecg_paper_grid_times_known_answers():
    from desktop.views.signal.scale_bars import paper_grid_times

    major, minor = paper_grid_times(10.0, 11.0, 500.0)  # 1 s page, 500 px/s: both levels readable
    assert major == pytest.approx([10.0, 10.2, 10.4, 10.6, 10.8, 11.0])
    assert len(minor) == 20 and minor[0] == pytest.approx(10.04) and minor[3] == pytest.approx(10.16)
    assert not np.any(np.isclose(minor[:, None], major[None, :]).any(1))  # majors are not repeated
    major, minor = paper_grid_times(0.0, 60.0, 15.0)  # 60 s on 900 px: 0.04 s = 0.6 px -> minor left out
    assert len(major) == 0 and len(minor) == 0  # and 0.2 s = 3 px is under the 4 px floor too
    major, minor = paper_grid_times(0.0, 10.0, 90.0)
    assert len(major) == 51 and len(minor) == 0


def test_ecg_page_shows_paper_grid_and_eeg_does_not(qtbot, window, data_dir, errors):
    open_and_wait(qtbot, window, data_dir / "ecg" / "mitdb" / "100")
    view = window.signal_view
    window.resize(1200, 700)
    view.set_window(2.0)
    qtbot.wait(50)
    levels = {it.level: it.times for it in view.grid_items}
    assert view.paper_grid_on() and set(levels) == {"major", "minor"}
    assert levels["major"][0] == pytest.approx(0.0) and np.diff(levels["major"]) == pytest.approx(0.2)
    assert all(it in view.plot.getPlotItem().items for it in view.grid_items)
    view.grid_box.setChecked(False)
    assert view.grid_items == [] and not view.paper_grid_on()
    view.grid_box.setChecked(True)
    assert view.grid_items
    eeg = sorted((data_dir / "eeg").rglob("*.edf"))[0]
    open_and_wait(qtbot, window, eeg)
    assert not view.paper_grid_on() and view.grid_items == [] and not view.grid_box.isVisible()
    assert errors == []
