"""Plot items the signal viewer keeps across page turns and updates in place.

A page turn used to take every calibration bar, label, annotation marker and paper-grid line off
the plot and build new ones; a new text item costs a second repaint of the whole plot (pyqtgraph
fixes its transform on its first paint). These holders keep their items: a page turn only moves
them (``setData`` / ``setPos`` / ``setValue``), and the calibration bars are built again only when
what they show changes (gain, µV/div, the channels or lanes on screen, units).
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from desktop.views.signal.layers import annotations_on_page, marker_line, set_marker_text
from desktop.views.signal.scale_bars import calibration_items, paper_grid_item, paper_grid_times

__all__ = ["CalibrationBars", "MarkerLines", "PaperGrid", "TimeGrid", "TIME_GRID_ALPHA"]

#: Opacity of the time grid (pyqtgraph's ``showGrid(alpha=...)``, whose look it keeps).
TIME_GRID_ALPHA = 0.25


class CalibrationBars:
    """The calibration bars and labels in the gutter (``items``: bar, label, bar, label ...)."""

    def __init__(self, plot):
        self.plot = plot
        self.items: list = []
        self.key: tuple | None = None  # what the bars show: rebuilt when it changes
        self.builds = 0  # how often the items were built (tests check reuse)

    def clear(self) -> None:
        for item in self.items:
            self.plot.removeItem(item)
        self.items, self.key = [], None

    def show(self, factors: np.ndarray, lanes: dict[int, int], units, x: float) -> list:
        """Bars for channel -> lane *lanes* drawn with *factors*, at time *x* (see ``calibration_items``)."""
        key = tuple((ch, k, float(factors[ch]), units[ch] if ch < len(units) else "") for ch, k in lanes.items())
        if key != self.key:
            self.clear()
            self.items = calibration_items(factors, lanes, units, x)
            for item in self.items:
                self.plot.addItem(item)
            self.key = key
            self.builds += 1
            return self.items
        for item in self.items:  # a page turn: the same bars, moved to the new gutter
            if hasattr(item, "amplitude"):
                xs, ys = item.getData()
                if xs is None or len(xs) == 0 or xs[0] != x:
                    item.setData([x, x], ys)
            elif item.pos().x() != x:
                item.setPos(x, item.pos().y())
        return self.items


class MarkerLines:
    """Annotation markers of the page: a pool of labelled vertical lines, moved and relabelled."""

    def __init__(self, plot):
        self.plot = plot
        self.pool: list = []
        self.shown = 0

    @property
    def items(self) -> list:
        return self.pool[: self.shown]

    def clear(self) -> None:
        for line in self.pool:
            self.plot.removeItem(line)
        self.pool, self.shown = [], 0

    def show(self, annotations, t0: float, t1: float) -> list:
        """Lines for the annotations with onsets in ``[t0, t1)`` (the others in the pool hidden)."""
        anns = annotations_on_page(annotations, t0, t1)
        for i, a in enumerate(anns):
            text = (a.description or "").strip()[:12]
            if i < len(self.pool):
                line = self.pool[i]
                if not line.isVisible():  # first: a hidden label does not take new text
                    line.setVisible(True)
                if line.value() != a.onset:
                    line.setValue(a.onset)
                set_marker_text(line, text)
            else:
                line = marker_line(a.onset, text)
                self.plot.addItem(line)
                self.pool.append(line)
        for line in self.pool[len(anns):]:
            if line.isVisible():
                line.setVisible(False)
        self.shown = len(anns)
        return self.items


class PaperGrid:
    """The ECG paper time lines: one item per level (minor, major), their data replaced per page."""

    def __init__(self, plot):
        self.plot = plot
        self.by_level: dict[str, object] = {}

    @property
    def items(self) -> list:
        return [self.by_level[lv] for lv in ("minor", "major") if lv in self.by_level]

    def clear(self) -> None:
        for item in self.by_level.values():
            self.plot.removeItem(item)
        self.by_level = {}

    def show(self, t0: float, t1: float, px_per_s: float, y0: float, y1: float) -> list:
        major, minor = paper_grid_times(t0, t1, px_per_s)
        for level, times in (("minor", minor), ("major", major)):
            item = self.by_level.get(level)
            if not len(times):
                if item is not None:
                    self.plot.removeItem(self.by_level.pop(level))
                continue
            if item is None:
                item = paper_grid_item(times, level, y0, y1)
                self.plot.addItem(item)
                self.by_level[level] = item
            else:
                item.setData(np.repeat(times, 2), np.tile([y0, y1], len(times)), connect="pairs")
                item.times = times
        return self.items


class TimeGrid:
    """Vertical lines at the time axis's major and minor ticks, behind the traces.

    It replaces pyqtgraph's axis grid (``showGrid(x=True)``), which the axis paints from a picture
    spanning the whole plot: 8-14 ms a repaint here, against ~1 ms for two line items. The lines and
    their opacity follow the axis as pyqtgraph's grid does (level *i* at ``255 / (i + 1)`` times the
    grid alpha, fainter when the ticks are dense).
    """

    def __init__(self, plot):
        self.plot = plot
        self.levels: list = []  # one PlotCurveItem per tick level, made on first use

    @property
    def items(self) -> list:
        return [it for it in self.levels if it.isVisible()]

    def hide(self) -> None:
        for item in self.levels:
            item.setVisible(False)

    def show(self, t0: float, t1: float, width_px: float, y0: float, y1: float) -> list:
        """Lines for the ticks of the time axis over ``[t0, t1]`` (*width_px* wide), from *y0* to *y1*."""
        axis = self.plot.getPlotItem().getAxis("bottom")
        ticks = axis.tickValues(t0, t1, width_px)[:2]
        while len(self.levels) < len(ticks):
            item = pg.PlotCurveItem(connect="pairs")
            item.setZValue(-20)
            self.plot.addItem(item)
            self.levels.append(item)
        taken: set = set()
        for i, item in enumerate(self.levels):
            if i >= len(ticks):
                item.setVisible(False)
                continue
            values = np.asarray([v for v in ticks[i][1] if v not in taken], float)
            taken.update(ticks[i][1])
            alpha = 255 / (i + 1) * TIME_GRID_ALPHA * float(np.clip(0.05 * width_px / (len(ticks[i][1]) + 1), 0, 1))
            colour = axis.pen().color()
            colour.setAlpha(int(alpha))
            if item.opts["pen"].color() != colour:
                item.setPen(pg.mkPen(colour, width=1))
            item.setData(np.repeat(values, 2), np.tile([y0, y1], len(values)), connect="pairs")
            item.times = values  # what the tests read back
            item.setVisible(True)
        return self.items
