"""ECG/EEG paging viewer: time window and pages, channel groups, one common µV/division for EEG
with per-channel overrides, montages, display filters, annotations as markers, an overview strip
and the result tracks.

Only the visible page (plus a little padding for the filters) is read, through
``Signal.read(start, stop)``; traces use pyqtgraph's peak downsampling and clip-to-view.
The view draws ``session.analysis_data``: the recording through the chosen montage, the data
the tasks run on. Keys: Left/Right or PageUp/PageDown = previous/next page, Up/Down = previous/next
channel group, Home/End, +/- = gain.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QScrollBar, QSplitter, QVBoxLayout, QWidget

from desktop.jobs import JobRunner
from desktop.presenters import presenter_for
from desktop.session import Session
from desktop.views.signal.amplitude import LaneScale
from desktop.views.signal.filters import FilterSettings, envelope_job, robust_scale
from desktop.views.signal.kept_items import CalibrationBars, MarkerLines, PaperGrid, TimeGrid
from desktop.views.signal.lanes import ChannelPanel, clamp_top, lanes_that_fit
from desktop.views.signal.layers import replace_items
from desktop.views.signal.notices import NoticeBar, truncation_notice
from desktop.views.signal.page import PageDrawing
from desktop.views.signal.toolbar import (
    WINDOW_CHOICES,
    build_toolbar,
    mark_filter_boxes,
    reset_filter_boxes,
    sync_scale_box,
)
from desktop.views.signal.tracks import OverviewStrip, ScoreTrack

__all__ = ["SignalView", "WINDOW_CHOICES"]

SYNC_OVERVIEW_SAMPLES = 4_000_000  # above this the overview is computed in a worker thread
LANE_MARGIN = 0.6  # plot units above the first and below the last lane on screen


class SignalView(PageDrawing, QWidget):
    """Multi-channel viewer for an :class:`engine.data.Signal` held in a :class:`Session`."""

    statusMessage = Signal(str)
    pageChanged = Signal(float, float)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.signal = None
        self.start = 0.0
        self.window = 10.0
        self.top = 0  # the first lane on screen
        self.lanes = LaneScale(units=(), ranges=np.ones(0, np.float32))
        self.filters = FilterSettings()
        self.curves: list[pg.PlotDataItem] = []
        self.overlay_curves: list[pg.PlotDataItem] = []
        self.overlay_signal = None  # denoised Signal or reconstruction array
        self.overlay_name = ""
        self.hot_times = np.zeros(0)
        self.anomaly: np.ndarray | None = None  # (channels, n) on the calibrated scale
        self.reads = 0  # pages read (tests check laziness)
        self.runner = JobRunner(self)
        self._build()
        session.dataChanged.connect(self._on_data)
        session.montageChanged.connect(lambda: self._load(self.session.analysis_data, keep_page=True))
        session.resultAdded.connect(self._on_result)
        session.resultsCleared.connect(self._clear_results)
        session.overlayChanged.connect(self._redraw)
        session.focusRequested.connect(lambda t, _y: self.centre_on(t))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # the fitted-lane scale, as the tests and the presenters knew it
    gain = property(lambda self: self.lanes.gain)
    scale = property(lambda self: self.lanes.ranges)
    global_gain = property(lambda self: self.lanes.global_gain)
    # the items drawn on the page, kept across page turns (desktop/views/signal/kept_items.py)
    calibration = property(lambda self: self.cal_bars.items)  # amplitude bars and labels in the gutter
    markers = property(lambda self: self.marker_lines.items)  # annotation lines of the page
    grid_items = property(lambda self: self.paper_grid.items)  # ECG paper time lines

    # ---- construction ----------------------------------------------------------------
    def _build(self) -> None:
        bar = build_toolbar(self)
        self.notice = NoticeBar()
        self.channels = ChannelPanel()
        self.channel_list = self.channels.list
        self.channels.changed.connect(self._layout_channels)

        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getPlotItem().getAxis("left").setWidth(70)
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.scene().sigMouseMoved.connect(self._on_hover)
        # lanes per screen, the gutter and the paper grid's minor lines depend on the pixels: on resize
        self.plot.getPlotItem().getViewBox().sigResized.connect(lambda *_: self._on_resized())
        self.heat = pg.ImageItem()  # per-channel anomaly behind the traces
        self.heat.setZValue(-5)
        self.plot.addItem(self.heat)
        self.cal_bars = CalibrationBars(self.plot)
        self.marker_lines = MarkerLines(self.plot)
        self.paper_grid = PaperGrid(self.plot)
        self.plot_title: str | None = None  # what setTitle was last given (set only when it changes)
        self.time_grid = TimeGrid(self.plot)  # in place of pyqtgraph's (slow) axis grid
        self.lane_bar = QScrollBar(Qt.Orientation.Vertical)
        self.lane_bar.setToolTip("Channel groups (Up / Down)")
        self.lane_bar.valueChanged.connect(self._scroll_lanes)
        self.lane_bar.setVisible(False)
        self.scores = ScoreTrack()
        self.scores.setXLink(self.plot)
        self.scores.setVisible(False)
        self.overview = OverviewStrip()
        self.overview.jumpRequested.connect(self.centre_on)

        for w in (self.plot, self.scores, self.overview, self.lane_bar):  # keys page the recording
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        traces = QHBoxLayout()
        traces.setContentsMargins(0, 0, 0, 0)
        traces.setSpacing(0)
        traces.addWidget(self.plot, 1)
        traces.addWidget(self.lane_bar)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(2)
        rl.addLayout(traces, 1)
        rl.addWidget(self.scores)
        rl.addWidget(self.overview)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.channels)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([110, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        lay.addWidget(self.notice)
        lay.addWidget(split, 1)

    # ---- data ----------------------------------------------------------------------
    def _on_data(self) -> None:
        """A new recording: as recorded, filters off (they never carry over unseen), first page."""
        reset_filter_boxes(self)
        self._load(self.session.analysis_data, keep_page=False)

    def _load(self, data, *, keep_page: bool) -> None:
        replace_items(self.plot, self.curves + self.overlay_curves)
        self.curves, self.overlay_curves = [], []
        for kept in (self.cal_bars, self.marker_lines, self.paper_grid):
            kept.clear()
        if data is None or getattr(data, "modality", None) not in ("ecg", "eeg"):
            self.signal = None
            return
        self.signal = data
        first = data.read(0, min(data.n_samples, int(30 * data.sfreq)))
        self.lanes = LaneScale.for_signal(data, robust_scale(first))
        self.channels.set_channels(data.channels)
        for _ in data.channels:
            c = pg.PlotDataItem(pen=pg.mkPen((20, 20, 20), width=1))
            c.setDownsampling(auto=True, method="peak")
            c.setClipToView(True)
            self.plot.addItem(c)
            self.curves.append(c)
        self.top = 0
        self.montage_box.setVisible(data.modality == "eeg")
        self.montage_box.blockSignals(True)
        self.montage_box.setCurrentIndex(max(0, self.montage_box.findData(self.session.montage)))
        self.montage_box.blockSignals(False)
        sync_scale_box(self)
        if not keep_page:
            self.window = 10.0
            self.start = 0.0
            self.grid_box.setVisible(data.modality == "ecg")
        self.notice.show_notices([n for n in (truncation_notice(data),) if n])
        self._clear_results()
        self.overview.set_duration(data.duration)
        self.overview.set_annotation_ticks(np.array([a.onset for a in data.annotations], float))
        self._start_overview()
        self._layout_channels()

    def _start_overview(self) -> None:
        data = self.signal
        if data.n_samples <= SYNC_OVERVIEW_SAMPLES:
            from engine.jobs import run_job

            self.overview.set_envelope(*run_job(envelope_job(data)))
            self.overview.set_annotation_ticks(np.array([a.onset for a in data.annotations], float))
        else:
            self.runner.start(lambda: envelope_job(data), name="overview",
                              on_result=lambda r, d=data: self._overview_done(d, r))

    def _overview_done(self, data, result) -> None:
        if data is self.signal:
            self.overview.set_envelope(*result)
            self.overview.set_annotation_ticks(np.array([a.onset for a in data.annotations], float))

    def visible_channels(self) -> list[int]:
        return self.channels.checked()

    def _layout_channels(self) -> None:
        if self.signal is None:
            return
        vis = self.visible_channels()
        ticks = [(-k, self.signal.channels[i]) for k, i in enumerate(vis)]
        self.plot.getPlotItem().getAxis("left").setTicks([ticks])
        self._fit_lanes()
        self._redraw()

    def lane_window(self) -> tuple[int, int]:
        """``(first lane on screen, lanes on screen)``."""
        n = len(self.visible_channels())
        height = float(self.plot.getPlotItem().getViewBox().height())
        per = lanes_that_fit(height, n)
        return clamp_top(self.top, n, per), per

    def _fit_lanes(self) -> None:
        """As many lanes as fit at their minimum height; the scroll bar pages through the rest."""
        n = len(self.visible_channels())
        self.top, per = self.lane_window()
        self.lane_bar.blockSignals(True)
        self.lane_bar.setRange(0, max(0, n - per))
        self.lane_bar.setPageStep(per)
        self.lane_bar.setValue(self.top)
        self.lane_bar.blockSignals(False)
        self.lane_bar.setVisible(n > per)
        self.plot.setYRange(-(self.top + per - 1) - LANE_MARGIN, -self.top + LANE_MARGIN, padding=0)
        self.plot.getPlotItem().getViewBox().updateMatrix()  # now, not mid-paint (see PageDrawing._place_x)

    def _scroll_lanes(self, top: int) -> None:
        self.top = int(top)
        self._fit_lanes()
        self._draw_calibration()

    def scroll_group(self, groups: int) -> None:
        """Show the next (*groups* > 0) or previous channel group (a screenful of lanes)."""
        top, per = self.lane_window()
        self.lane_bar.setValue(top + groups * per)

    def _on_resized(self) -> None:
        if self.signal is None:
            return
        self._fit_lanes()
        self._place_x()
        self._draw_calibration()
        self._draw_paper_grid(len(self.visible_channels()))

    # ---- results ----------------------------------------------------------------
    def _on_result(self, task: str) -> None:
        entry = self.session.results.get(task)
        if self.signal is None or entry is None:
            return
        presenter_for(entry.result).draw_signal(self, entry)
        self.overview.set_hot(self.hot_times)
        self._redraw()

    def show_trace(self, source, name: str) -> None:
        """Draw *source* (a Signal or a ``(channels, samples)`` array) in red over the traces as *name*."""
        self.overlay_signal, self.overlay_name = source, name

    def show_anomaly(self, anomaly: np.ndarray) -> None:
        """Per-channel anomaly (calibrated scale) behind the lanes, its channel mean on the score track."""
        self.anomaly = anomaly if anomaly.ndim == 2 else anomaly[None]
        # the track shows the mean over channels (the lanes show each channel's own map)
        a = self.anomaly.mean(axis=0)
        t = (np.arange(a.size) + 0.5) * (self.signal.n_samples / a.size) / self.signal.sfreq
        self.scores.show_anomaly(t, a, self.session.overlay.threshold)
        self.scores.setLabel("left", "anomaly (mean)")
        step = max(1, a.size // 4000)
        self.show_hot(t[::step][a[::step] >= max(1.0, self.session.overlay.threshold)])

    def show_hot(self, times: np.ndarray) -> None:
        """Show the score track, with *times* (s) marked as hot on the overview strip."""
        self.scores.setVisible(True)
        self.hot_times = times

    def _clear_results(self) -> None:
        self.overlay_signal, self.overlay_name = None, ""
        self.anomaly = None
        self.heat.clear()
        self.overlay_curves = replace_items(self.plot, self.overlay_curves)
        self.scores.clear_scores()
        self.scores.setVisible(False)
        self.hot_times = np.zeros(0)
        self.overview.set_hot(self.hot_times)

    # ---- navigation --------------------------------------------------------------
    def set_start(self, start: float) -> None:
        if self.signal is None:
            return
        self.start = float(np.clip(start, 0.0, max(0.0, self.signal.duration - self.window)))
        self._redraw()

    def set_window(self, seconds: float) -> None:
        self.window = float(seconds)
        i = WINDOW_CHOICES.index(seconds) if seconds in WINDOW_CHOICES else -1
        if i >= 0 and self.window_box.currentIndex() != i:
            self.window_box.setCurrentIndex(i)
        self.set_start(self.start)

    def centre_on(self, t: float) -> None:
        self.set_start(float(t) - self.window / 2)

    def change_gain(self, factor: float) -> None:
        """More (*factor* > 1) or less gain for the selected channels, or for every lane."""
        if self.signal is None:
            return
        self.lanes.change(factor, self.channels.selected_rows())
        self._scales_changed()

    def set_sensitivity(self, uv_per_div: float) -> None:
        """The common µV/division of the EEG lanes (channels with their own scale keep it)."""
        if self.signal is not None and self.lanes.common is not None:
            self.lanes.common = float(uv_per_div)
            self.lanes.override = {ch: s for ch, s in self.lanes.override.items() if s != self.lanes.common}
            self._scales_changed()

    def _scales_changed(self) -> None:
        for ch in range(self.channel_list.count()):
            s = self.lanes.override.get(ch)
            self.channels.mark(ch, f"{s:g} µV/div" if s is not None else "")
        sync_scale_box(self)
        self._redraw()

    def auto_scale(self) -> None:
        """Fit the lanes to the page again; per-channel scales are dropped."""
        if self.signal is None:
            return
        s0, s1 = self._page_samples()
        self.lanes = LaneScale.for_signal(self.signal, robust_scale(self.signal.read(s0, s1)))
        self._scales_changed()

    def choose_montage(self, name: str) -> None:
        """Read the open EEG through montage *name* (display and analysis); results are cleared."""
        from engine.errors import LatentError

        if self.signal is None or name == self.session.montage:
            return
        try:
            self.session.set_montage(name)
        except LatentError as exc:
            from desktop.dialogs import messages

            self.montage_box.setCurrentIndex(max(0, self.montage_box.findData(self.session.montage)))
            messages.show_error(self, "Montage", str(exc))
            return
        self.statusMessage.emit(f"Montage: {self.montage_box.currentText()} (display and analysis)")

    def _on_filters(self) -> None:
        self.filters = FilterSettings(self.hp_box.currentData(), self.lp_box.currentData(),
                                      self.notch_box.currentData())
        mark_filter_boxes(self)
        self._redraw()

    def keyPressEvent(self, ev):  # noqa: N802 - Qt override
        k = ev.key()
        if k in (Qt.Key.Key_Right, Qt.Key.Key_PageDown):
            self.set_start(self.start + self.window)
        elif k in (Qt.Key.Key_Left, Qt.Key.Key_PageUp):
            self.set_start(self.start - self.window)
        elif k == Qt.Key.Key_Home:
            self.set_start(0)
        elif k == Qt.Key.Key_End and self.signal is not None:
            self.set_start(self.signal.duration)
        elif k in (Qt.Key.Key_Down, Qt.Key.Key_Up):
            self.scroll_group(1 if k == Qt.Key.Key_Down else -1)
        elif k in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.change_gain(2.0)
        elif k == Qt.Key.Key_Minus:
            self.change_gain(0.5)
        else:
            super().keyPressEvent(ev)
