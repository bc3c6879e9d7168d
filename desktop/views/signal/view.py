"""ECG/EEG paging viewer: time window and pages, per-channel gain, channel selection,
display filters, annotations as markers, an overview strip and the result tracks.

Only the visible page (plus a little padding for the filters) is read, through
``Signal.read(start, stop)``; traces use pyqtgraph's peak downsampling and clip-to-view.
Keys: Left/Right or PageUp/PageDown = previous/next page, Home/End, +/- = gain.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QSplitter, QVBoxLayout, QWidget

from desktop.jobs import JobRunner
from desktop.presenters import presenter_for
from desktop.session import Session
from desktop.views.signal.filters import PAD_SECONDS, FilterSettings, apply_display_filters, envelope_job, robust_scale
from desktop.views.signal.layers import annotation_lines, draw_heat, fmt_time, replace_items
from desktop.views.signal.scale_bars import calibration_items, paper_grid_items
from desktop.views.signal.toolbar import WINDOW_CHOICES, build_toolbar
from desktop.views.signal.tracks import OverviewStrip, ScoreTrack

__all__ = ["SignalView", "WINDOW_CHOICES"]

SYNC_OVERVIEW_SAMPLES = 4_000_000  # above this the overview is computed in a worker thread


class SignalView(QWidget):
    """Multi-channel viewer for an :class:`engine.data.Signal` held in a :class:`Session`."""

    statusMessage = Signal(str)
    pageChanged = Signal(float, float)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.signal = None
        self.start = 0.0
        self.window = 10.0
        self.gain = np.ones(0, np.float32)
        self.scale = np.ones(0, np.float32)
        self.global_gain = 1.0
        self.filters = FilterSettings()
        self.curves: list[pg.PlotDataItem] = []
        self.overlay_curves: list[pg.PlotDataItem] = []
        self.markers: list = []
        self.calibration: list = []  # per-lane amplitude bars (pyqtgraph items)
        self.grid_items: list = []  # ECG paper time lines (pyqtgraph items)
        self.overlay_signal = None  # denoised Signal or reconstruction array
        self.overlay_name = ""
        self.hot_times = np.zeros(0)
        self.anomaly: np.ndarray | None = None  # (channels, n) on the calibrated scale
        self.reads = 0  # pages read (tests check laziness)
        self.runner = JobRunner(self)
        self._build()
        session.dataChanged.connect(self._on_data)
        session.resultAdded.connect(self._on_result)
        session.resultsCleared.connect(self._clear_results)
        session.overlayChanged.connect(self._redraw)
        session.focusRequested.connect(lambda t, _y: self.centre_on(t))
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # ---- construction ----------------------------------------------------------------
    def _build(self) -> None:
        bar = build_toolbar(self)

        self.channel_list = QListWidget()
        self.channel_list.setToolTip("Tick channels to show them; select channels to change their gain")
        self.channel_list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.channel_list.itemChanged.connect(lambda *_: self._layout_channels())
        self.channel_list.setMinimumWidth(70)

        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.getPlotItem().getAxis("left").setWidth(70)
        self.plot.getPlotItem().showGrid(x=True, y=False, alpha=0.25)
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.scene().sigMouseMoved.connect(self._on_hover)
        # The paper grid's minor lines depend on the pixels per second: redraw it on resize.
        self.plot.getPlotItem().getViewBox().sigResized.connect(
            lambda *_: self._draw_paper_grid(len(self.visible_channels())))
        self.heat = pg.ImageItem()  # per-channel anomaly behind the traces
        self.heat.setZValue(-5)
        self.plot.addItem(self.heat)
        self.scores = ScoreTrack()
        self.scores.setXLink(self.plot)
        self.scores.setVisible(False)
        self.overview = OverviewStrip()
        self.overview.jumpRequested.connect(self.centre_on)

        for w in (self.plot, self.scores, self.overview):  # keys page the recording, not the scene
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(2)
        rl.addWidget(self.plot, 1)
        rl.addWidget(self.scores)
        rl.addWidget(self.overview)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.channel_list)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([90, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addLayout(bar)
        lay.addWidget(split, 1)

    # ---- data ----------------------------------------------------------------------
    def _on_data(self) -> None:
        data = self.session.data
        replace_items(self.plot, self.curves + self.overlay_curves + self.calibration + self.grid_items + self.markers)
        self.curves, self.overlay_curves, self.calibration, self.grid_items, self.markers = [], [], [], [], []
        if data is None or getattr(data, "modality", None) not in ("ecg", "eeg"):
            self.signal = None
            return
        self.signal = data
        n_ch = len(data.channels)
        self.gain = np.ones(n_ch, np.float32)
        first = data.read(0, min(data.n_samples, int(30 * data.sfreq)))
        self.scale = robust_scale(first)
        self.channel_list.blockSignals(True)
        self.channel_list.clear()
        for i, name in enumerate(data.channels):
            item = QListWidgetItem(name)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if i < 32 else Qt.CheckState.Unchecked)
            self.channel_list.addItem(item)
        self.channel_list.blockSignals(False)
        colour = (20, 20, 20)
        for _ in range(n_ch):
            c = pg.PlotDataItem(pen=pg.mkPen(colour, width=1))
            c.setDownsampling(auto=True, method="peak")
            c.setClipToView(True)
            self.plot.addItem(c)
            self.curves.append(c)
        self.window = 10.0
        self.grid_box.setVisible(data.modality == "ecg")
        self.start = 0.0
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
        return [i for i in range(self.channel_list.count())
                if self.channel_list.item(i).checkState() == Qt.CheckState.Checked]

    def _layout_channels(self) -> None:
        if self.signal is None:
            return
        vis = self.visible_channels()
        ticks = [(-k, self.signal.channels[i]) for k, i in enumerate(vis)]
        self.plot.getPlotItem().getAxis("left").setTicks([ticks])
        self.plot.setYRange(-max(len(vis), 1) + 0.4, 0.6, padding=0)
        self._redraw()

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
        rows = [self.channel_list.row(it) for it in self.channel_list.selectedItems()]
        if rows:
            self.gain[rows] *= factor
        else:
            self.global_gain *= factor
        self._redraw()

    def auto_scale(self) -> None:
        if self.signal is None:
            return
        s0, s1 = self._page_samples()
        self.scale = robust_scale(self.signal.read(s0, s1))
        self.gain[:] = 1.0
        self.global_gain = 1.0
        self._redraw()

    def _on_filters(self) -> None:
        self.filters = FilterSettings(self.hp_box.currentData(), self.lp_box.currentData(),
                                      self.notch_box.currentData())
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
        elif k in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.change_gain(2.0)
        elif k == Qt.Key.Key_Minus:
            self.change_gain(0.5)
        else:
            super().keyPressEvent(ev)

    # ---- drawing -----------------------------------------------------------------
    def _page_samples(self) -> tuple[int, int]:
        sf = self.signal.sfreq
        s0 = int(round(self.start * sf))
        return s0, min(self.signal.n_samples, s0 + int(round(self.window * sf)))

    def _read_page(self, source, s0: int, s1: int, pad: int) -> np.ndarray:
        a, b = max(0, s0 - pad), min(self.signal.n_samples, s1 + pad)
        x = source.read(a, b) if hasattr(source, "read") else np.asarray(source)[:, a:b]
        x = apply_display_filters(np.asarray(x, np.float32), self.signal.sfreq, self.filters)
        return x[:, s0 - a: s0 - a + (s1 - s0)]

    def _redraw(self) -> None:
        if self.signal is None:
            return
        sf = self.signal.sfreq
        s0, s1 = self._page_samples()
        pad = int(PAD_SECONDS * sf) if self.filters.active else 0
        page = self._read_page(self.signal, s0, s1, pad)
        self.reads += 1
        t = (np.arange(s0, s1) / sf).astype(np.float64)
        centre = np.nanmedian(page, axis=1, keepdims=True) if page.shape[1] else np.zeros((page.shape[0], 1))
        vis = self.visible_channels()
        k_of = {ch: k for k, ch in enumerate(vis)}
        factor = (0.5 * self.global_gain * self.gain / self.scale)[:, None]
        y = (page - centre) * factor
        for ch, curve in enumerate(self.curves):
            if ch in k_of:
                curve.setData(t, y[ch] - k_of[ch])
                curve.setVisible(True)
            else:
                curve.setVisible(False)
        self._draw_overlay_traces(t, s0, s1, pad, centre, factor, k_of)
        self._draw_calibration(factor[:, 0], k_of)
        self._draw_paper_grid(len(vis))
        self._draw_heat(s0, s1, vis)
        self.plot.setXRange(t[0] if len(t) else self.start, self.start + self.window, padding=0)
        self._draw_markers(s0 / sf, s1 / sf)
        self.overview.set_page(self.start, self.start + self.window)
        dur = self.signal.duration
        self.pos_label.setText(f"{fmt_time(self.start)} – {fmt_time(self.start + self.window)} / {fmt_time(dur)}")
        self.pageChanged.emit(self.start, self.start + self.window)

    def _draw_overlay_traces(self, t, s0, s1, pad, centre, factor, k_of) -> None:
        self.overlay_curves = replace_items(self.plot, self.overlay_curves)
        if self.overlay_signal is None or not self.session.overlay.show_reconstruction:
            self.plot.setTitle(None)
            return
        self.plot.setTitle(f"<span style='color:#141414'>— original</span>&nbsp;&nbsp;&nbsp;"
                           f"<span style='color:#dc2828'>— {self.overlay_name}</span>", size="9pt")
        over = self._read_page(self.overlay_signal, s0, s1, pad)
        if over.shape[0] != len(self.curves):
            return
        y = (over - centre) * factor
        pen = pg.mkPen((220, 40, 40), width=1.3)
        for ch, k in k_of.items():
            c = pg.PlotDataItem(pen=pen)  # data after addItem: pyqtgraph's clip-to-view needs the ViewBox
            c.setDownsampling(auto=True, method="peak")
            c.setClipToView(True)
            self.plot.addItem(c)
            c.setData(t[: y.shape[1]], y[ch] - k)
            self.overlay_curves.append(c)

    def _draw_heat(self, s0: int, s1: int, vis: list[int]) -> None:
        draw_heat(self.heat, self.anomaly, self.signal, s0, s1, vis, self.session.overlay)

    def _draw_calibration(self, factor: np.ndarray, k_of: dict[int, int]) -> None:
        """A round-amplitude bar with its value and unit at the left of every visible lane."""
        self.calibration = replace_items(self.plot, self.calibration, calibration_items(
            factor, k_of, self.signal.units, self.start + 0.01 * self.window))

    def paper_grid_on(self) -> bool:
        """Whether the ECG paper time grid is shown (ECG only, tool-bar check box)."""
        return self.signal is not None and self.signal.modality == "ecg" and self.grid_box.isChecked()

    def _draw_paper_grid(self, lanes: int) -> None:
        """ECG paper time lines (0.2 s major, 0.04 s minor) behind the traces, in place of the axis grid."""
        on = self.paper_grid_on()
        self.plot.getPlotItem().showGrid(x=not on, y=False, alpha=0.25)
        new = []
        if on:
            width_px = max(1.0, float(self.plot.getPlotItem().getViewBox().width()))
            new = paper_grid_items(self.start, self.start + self.window, width_px / self.window,
                                   0.6, -max(lanes, 1) + 0.4)
        self.grid_items = replace_items(self.plot, self.grid_items, new)

    def _draw_markers(self, t0: float, t1: float) -> None:
        self.markers = replace_items(self.plot, self.markers, annotation_lines(self.signal.annotations, t0, t1))

    def _on_hover(self, pos) -> None:
        if self.signal is None:
            return
        vb = self.plot.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        p = vb.mapSceneToView(pos)
        vis = self.visible_channels()
        k = int(round(-p.y()))
        if 0 <= k < len(vis):
            ch = vis[k]
            s = int(p.x() * self.signal.sfreq)
            if 0 <= s < self.signal.n_samples:
                v = float(self.signal.read(s, s + 1)[ch, 0])
                self.statusMessage.emit(f"{self.signal.channels[ch]}  t = {p.x():.3f} s: "
                                        f"{v:.3f} {self.signal.units[ch]}")
