"""Drawing one page of the signal viewer: traces, result overlays, calibration bars in the right
gutter, ECG paper grid, anomaly bands and annotation markers (a mixin of
:class:`~desktop.views.signal.SignalView`, which holds the state it draws).

The x range runs :data:`GUTTER_PX` screen pixels past the page end: no sample is drawn there,
so the calibration bars and their labels never sit on a trace.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from desktop.views.signal.filters import PAD_SECONDS, apply_display_filters
from desktop.views.signal.layers import draw_heat, fmt_time, replace_items

__all__ = ["PageDrawing", "GUTTER_PX"]

#: Screen pixels right of the page kept free of traces for the calibration bars.
GUTTER_PX = 64


class PageDrawing:
    """Redraws the page of ``self.signal`` at ``self.start`` over ``self.window`` seconds."""

    def gutter_seconds(self) -> float:
        """The time span of the trace-free gutter right of the page."""
        width = float(self.plot.getPlotItem().getViewBox().width())
        return self.window * GUTTER_PX / max(width - GUTTER_PX, 4.0 * GUTTER_PX)

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
        self.overview.set_page(self.start, self.start + self.window)
        pad = int(PAD_SECONDS * sf) if self.filters.active else 0
        page = self._read_page(self.signal, s0, s1, pad)
        self.reads += 1
        t = (np.arange(s0, s1) / sf).astype(np.float64)
        centre = np.nanmedian(page, axis=1, keepdims=True) if page.shape[1] else np.zeros((page.shape[0], 1))
        vis = self.visible_channels()
        k_of = {ch: k for k, ch in enumerate(vis)}
        factor = self.lanes.factors()[:, None]
        y = (page - centre) * factor
        self._place_x()  # first: clip-to-view then clips the new data to the new page, once
        for ch, curve in enumerate(self.curves):
            if ch in k_of:
                curve.setData(t, y[ch] - k_of[ch])
                curve.setVisible(True)
            else:
                curve.setVisible(False)
        self._draw_overlay_traces(t, s0, s1, pad, centre, factor, k_of)
        self._draw_calibration()
        self._draw_paper_grid(len(vis))
        draw_heat(self.heat, self.anomaly, self.signal, s0, s1, vis, self.session.overlay)
        self.marker_lines.show(self.signal.annotations, s0 / sf, s1 / sf)
        dur = self.signal.duration
        self.pos_label.setText(f"{fmt_time(self.start)} – {fmt_time(self.start + self.window)} / {fmt_time(dur)}")
        self.pageChanged.emit(self.start, self.start + self.window)

    def _place_x(self) -> None:
        self.plot.setXRange(self.start, self.start + self.window + self.gutter_seconds(), padding=0)
        # pyqtgraph applies a new range to the item transforms just before it paints; that moved
        # every item in the middle of the paint and cost a second repaint of the plot: apply it now
        self.plot.getPlotItem().getViewBox().updateMatrix()

    def _set_title(self, title: str | None) -> None:
        if title != self.plot_title:  # setTitle relays the plot out: only when it changes
            self.plot_title = title
            self.plot.setTitle(title, size="9pt")

    def _draw_overlay_traces(self, t, s0, s1, pad, centre, factor, k_of) -> None:
        if self.overlay_signal is None or not self.session.overlay.show_reconstruction:
            self.overlay_curves = replace_items(self.plot, self.overlay_curves)
            self._set_title(None)
            return
        self._set_title(f"<span style='color:#141414'>— original</span>&nbsp;&nbsp;&nbsp;"
                        f"<span style='color:#dc2828'>— {self.overlay_name}</span>")
        over = self._read_page(self.overlay_signal, s0, s1, pad)
        if over.shape[0] != len(self.curves):
            self.overlay_curves = replace_items(self.plot, self.overlay_curves)
            return
        y = (over - centre) * factor
        if len(self.overlay_curves) != len(k_of):  # a curve per visible lane, kept across page turns
            pen = pg.mkPen((220, 40, 40), width=1.3)
            self.overlay_curves = replace_items(self.plot, self.overlay_curves)
            for _ in k_of:
                c = pg.PlotDataItem(pen=pen)  # data after addItem: pyqtgraph's clip-to-view needs the ViewBox
                c.setDownsampling(auto=True, method="peak")
                c.setClipToView(True)
                self.plot.addItem(c)
                self.overlay_curves.append(c)
        for c, (ch, k) in zip(self.overlay_curves, k_of.items()):
            c.setData(t[: y.shape[1]], y[ch] - k)

    def bar_lanes(self) -> dict[int, int]:
        """Channel -> lane of the on-screen lanes that carry a calibration bar: the first lane at the
        common µV/div (it stands for all of them) and every lane with its own scale."""
        vis = self.visible_channels()
        top, per = self.lane_window()
        out: dict[int, int] = {}
        common_done = False
        for k in range(top, min(len(vis), top + per)):
            ch = vis[k]
            if self.lanes.on_common(ch):
                if common_done:
                    continue
                common_done = True
            out[ch] = k
        return out

    def _draw_calibration(self) -> None:
        """Round-amplitude bars with value and unit in the gutter right of the page (see :meth:`bar_lanes`)."""
        if self.signal is None:
            return
        x = self.start + self.window + 0.12 * self.gutter_seconds()
        self.cal_bars.show(self.lanes.factors(), self.bar_lanes(), self.signal.units, x)

    def paper_grid_on(self) -> bool:
        """Whether the ECG paper time grid is shown (ECG only, tool-bar check box)."""
        return self.signal is not None and self.signal.modality == "ecg" and self.grid_box.isChecked()

    def _draw_paper_grid(self, lanes: int) -> None:
        """ECG paper time lines (0.2 s major, 0.04 s minor) behind the traces, or else the time grid at
        the axis ticks."""
        vb = self.plot.getPlotItem().getViewBox()
        if not self.paper_grid_on():
            self.paper_grid.clear()
            (x0, x1), _ = vb.viewRange()
            self.time_grid.show(x0, x1, float(vb.width()), 1.0, -max(lanes, 1))
            return
        self.time_grid.hide()
        width_px = max(1.0, float(vb.width()) - GUTTER_PX)
        self.paper_grid.show(self.start, self.start + self.window, width_px / self.window, 0.6, -max(lanes, 1) + 0.4)

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
