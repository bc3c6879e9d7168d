"""The CT ruler: straight-line distances in mm, drawn on the slice they were measured on.

View coordinates of the CT panes are mm (each view is drawn over its extent in mm), so a
length is the plain Euclidean distance of its two ends, whatever the view plane's aspect.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import pyqtgraph as pg
from PySide6.QtCore import QPointF

__all__ = ["Measurement", "RulerLayer", "format_length"]

_PEN = pg.mkPen((255, 220, 0), width=2)
_Z = 20  # above the heat-map


def format_length(mm: float) -> str:
    """'23.4 mm': one decimal, always mm (nodule sizes are read in mm)."""
    return f"{mm:.1f} mm"


@dataclass
class Measurement:
    """One ruler: its view plane (*axis*, *index*) and its two ends in view mm."""

    axis: int
    index: int
    p0: tuple[float, float]
    p1: tuple[float, float]
    items: list = field(default_factory=list, repr=False)

    @property
    def length_mm(self) -> float:
        return math.hypot(self.p1[0] - self.p0[0], self.p1[1] - self.p0[1])


class RulerLayer:
    """The rulers of one view box; only those of the plane shown are visible."""

    def __init__(self, vb: pg.ViewBox):
        self.vb = vb
        self.measurements: list[Measurement] = []
        self._drawing: Measurement | None = None
        self._shown = (0, 0)

    def drag(self, axis: int, index: int, start: QPointF, end: QPointF, finished: bool) -> None:
        """Follow a left-drag of the ruler tool (view coordinates); a finished drag keeps its ruler."""
        if self._drawing is None:
            self._drawing = Measurement(axis, index, (start.x(), start.y()), (end.x(), end.y()))
            self.measurements.append(self._drawing)
            self._drawing.items = self._make_items()
        m = self._drawing
        m.p1 = (end.x(), end.y())
        self._place(m)
        if finished:
            self._drawing = None
            if m.length_mm <= 0:  # a click without a drag
                self._remove(m)

    def show_plane(self, axis: int, index: int) -> None:
        self._shown = (axis, index)
        for m in self.measurements:
            for item in m.items:
                item.setVisible((m.axis, m.index) == self._shown)

    def on_plane(self) -> list[Measurement]:
        """The rulers of the plane shown."""
        return [m for m in self.measurements if (m.axis, m.index) == self._shown]

    def clear(self, *, plane_only: bool = False) -> None:
        for m in list(self.on_plane() if plane_only else self.measurements):
            self._remove(m)
        self._drawing = None

    def _make_items(self) -> list:
        line = pg.PlotDataItem(pen=_PEN, symbol="+", symbolSize=9, symbolPen=_PEN, symbolBrush=None)
        label = pg.TextItem(color=(255, 220, 0), fill=pg.mkBrush(0, 0, 0, 150), anchor=(0, 1))
        for item in (line, label):
            item.setZValue(_Z)
            self.vb.addItem(item)
        return [line, label]

    def _place(self, m: Measurement) -> None:
        line, label = m.items
        line.setData([m.p0[0], m.p1[0]], [m.p0[1], m.p1[1]])
        label.setText(format_length(m.length_mm))
        label.setPos(m.p1[0], m.p1[1])

    def _remove(self, m: Measurement) -> None:
        for item in m.items:
            self.vb.removeItem(item)
        self.measurements.remove(m)
