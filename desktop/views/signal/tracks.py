"""The strips under the ECG/EEG traces: the score track and the whole-recording overview."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal

from desktop.session import ANOMALY_DISPLAY_MAX

__all__ = ["ScoreTrack", "OverviewStrip"]

_RED, _GREY, _BLUE = (230, 60, 50), (150, 150, 150), (70, 140, 255)


def _fix_strip(plot: pg.PlotWidget) -> None:
    """A strip that does not move: white, no menu, no mouse pan/zoom, no buttons, and a
    70 px left axis so that it lines up with the traces above it."""
    plot.setBackground("w")
    plot.setMenuEnabled(False)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.getPlotItem().getAxis("left").setWidth(70)


class ScoreTrack(pg.PlotWidget):
    """Per-beat scores (points), per-segment scores (bars) or a per-sample anomaly curve."""

    def __init__(self, parent=None):
        super().__init__(parent)
        _fix_strip(self)
        self.setLabel("left", "score")
        self.setMinimumHeight(70)
        self.setMaximumHeight(150)
        self.items: list = []
        self.threshold_line = pg.InfiniteLine(angle=0, pen=pg.mkPen(_RED, style=pg.QtCore.Qt.PenStyle.DashLine))
        self.addItem(self.threshold_line)
        self.threshold_line.setVisible(False)
        self.kind = ""

    def clear_scores(self) -> None:
        for it in self.items:
            self.removeItem(it)
        self.items = []
        self.threshold_line.setVisible(False)
        self.kind = ""

    def _threshold(self, thr) -> None:
        if thr is not None and np.isfinite(thr):
            self.threshold_line.setValue(float(thr))
            self.threshold_line.setVisible(True)

    def _fit_scores(self, score: np.ndarray, threshold: float | None) -> None:
        """Y range from 0 (or the lowest score: scores can be negative) to the highest score or threshold."""
        finite = np.asarray(score, float)
        finite = finite[np.isfinite(finite)]
        top = max(float(finite.max()) if finite.size else 1.0, threshold or 0.0)
        bottom = min(float(finite.min()) if finite.size else 0.0, 0.0)
        span = max(top - bottom, 1e-6)
        self.setYRange(bottom - 0.05 * span * (bottom < 0), top + 0.05 * span, padding=0)

    def show_beats(self, t: np.ndarray, score: np.ndarray, threshold: float | None) -> None:
        self.clear_scores()
        self.kind = "beats"
        hot = score >= threshold if threshold is not None else np.zeros(len(score), bool)
        brushes = [pg.mkBrush(_RED if h else _BLUE) for h in hot]
        sc = pg.ScatterPlotItem(t, score, size=6, pen=None, brush=brushes)
        self.addItem(sc)
        self.items.append(sc)
        self._threshold(threshold)
        self.setLabel("left", "beat score")
        self._fit_scores(score, threshold)

    def show_segments(self, t0: np.ndarray, t1: np.ndarray, score: np.ndarray, label: np.ndarray,
                      threshold: float | None) -> None:
        self.clear_scores()
        self.kind = "segments"
        brushes = [pg.mkBrush(_RED if lb else _BLUE) for lb in label]
        bars = pg.BarGraphItem(x0=t0, x1=t1, height=score, y0=0, brushes=brushes, pens=[None] * len(t0))
        self.addItem(bars)
        self.items.append(bars)
        self._threshold(threshold)
        self.setLabel("left", "segment score")
        self._fit_scores(score, threshold)

    def show_anomaly(self, t: np.ndarray, a: np.ndarray, threshold: float) -> None:
        """A per-sample anomaly curve on the calibrated fixed scale (0 .. 2, never auto)."""
        self.clear_scores()
        self.kind = "anomaly"
        curve = pg.PlotDataItem(pen=pg.mkPen(_RED, width=1.2), fillLevel=0, brush=pg.mkBrush(230, 60, 50, 60))
        curve.setDownsampling(auto=True, method="peak")
        curve.setClipToView(True)
        self.addItem(curve)  # before setData: clip-to-view needs the ViewBox
        curve.setData(t, a)
        self.items.append(curve)
        self._threshold(threshold)
        self.setLabel("left", "anomaly")
        # fixed scale; 4 % headroom so the top tick label ("2.0") is not cut in half
        self.setYRange(0, ANOMALY_DISPLAY_MAX * 1.04, padding=0)


class OverviewStrip(pg.PlotWidget):
    """The whole recording at a glance; the shaded region is the page, click to jump."""

    jumpRequested = Signal(float)  # centre time in seconds

    def __init__(self, parent=None):
        super().__init__(parent)
        _fix_strip(self)
        self.getPlotItem().getAxis("left").setTicks([[]])
        self.setFixedHeight(70)
        self.envelope = pg.PlotDataItem(pen=pg.mkPen(_GREY), fillLevel=None)
        self.env_hi = pg.PlotDataItem(pen=pg.mkPen(_GREY))
        self.fill = pg.FillBetweenItem(self.envelope, self.env_hi, brush=pg.mkBrush(120, 120, 120, 150))
        for it in (self.envelope, self.env_hi, self.fill):
            self.addItem(it)
        self.ticks = pg.ScatterPlotItem(symbol="|", size=8, pen=pg.mkPen(_BLUE), brush=None)
        self.hot = pg.ScatterPlotItem(symbol="t", size=8, pen=None, brush=pg.mkBrush(_RED))
        self.addItem(self.ticks)
        self.addItem(self.hot)
        self.region = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(70, 140, 255, 80),
                                         pen=pg.mkPen((40, 90, 220), width=2))
        self.addItem(self.region)
        self.scene().sigMouseClicked.connect(self._clicked)
        self.duration = 1.0

    def set_duration(self, seconds: float) -> None:
        self.duration = max(seconds, 1e-6)
        self.setXRange(0, self.duration, padding=0)

    def set_envelope(self, t, lo, hi) -> None:
        self.envelope.setData(t, lo)
        self.env_hi.setData(t, hi)
        if len(t):
            a, b = float(np.nanmin(lo)), float(np.nanmax(hi))
            if np.isfinite(a) and np.isfinite(b) and b > a:
                self.setYRange(a, b + (b - a) * 0.25, padding=0)
        self.setXRange(0, self.duration, padding=0)

    def set_annotation_ticks(self, onsets: np.ndarray) -> None:
        if len(onsets) > 400:  # beat-by-beat labels would paint a solid bar: leave them to the page
            onsets = np.zeros(0)
        (y0, y1) = self.getPlotItem().getViewBox().viewRange()[1]
        self.ticks.setData(onsets, np.full(len(onsets), y1 - (y1 - y0) * 0.1))

    def set_hot(self, times: np.ndarray) -> None:
        (y0, y1) = self.getPlotItem().getViewBox().viewRange()[1]
        self.hot.setData(times, np.full(len(times), y0 + (y1 - y0) * 0.12))

    def set_page(self, t0: float, t1: float) -> None:
        self.region.setRegion((t0, t1))

    def _clicked(self, ev) -> None:
        vb = self.getPlotItem().getViewBox()
        if vb.sceneBoundingRect().contains(ev.scenePos()):
            self.jumpRequested.emit(float(vb.mapSceneToView(ev.scenePos()).x()))
