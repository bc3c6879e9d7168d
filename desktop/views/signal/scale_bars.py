"""Physical scale references for the signal viewer: per-lane amplitude calibration bars and the
ECG paper time grid.

A lane shows a vertical bar of a round amplitude (``1 mV``, ``50 µV`` ...) drawn with the
lane's own display factor, the calibration pulse of a paper ECG or EEG, in the gutter right of the
page where no trace is drawn. EEG lanes at the common µV/division share one bar; a lane with its
own scale (or an ECG lane, fitted to its lane) has its own. ECG pages can also show the time lines of ECG
paper at 25 mm/s: a major line every 0.2 s (5 mm) and a minor one every 0.04 s (1 mm), each
drawn only when its spacing on screen is wide enough to read.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont

from desktop.views.scales import nice_length

__all__ = ["amplitude_bar", "calibration_items", "BAR_LANE_FRACTION", "paper_grid_times",
           "paper_grid_item", "paper_grid_items", "ECG_MAJOR_S", "ECG_MINOR_S"]

#: The bar is at most this fraction of a lane (lanes are 1 plot unit apart).
BAR_LANE_FRACTION = 0.5
#: ECG paper at 25 mm/s: 5 mm and 1 mm boxes.
ECG_MAJOR_S = 0.2
ECG_MINOR_S = 0.04
#: A grid level is drawn only when its lines are at least this many screen pixels apart.
MIN_GRID_PX = 4.0


def amplitude_bar(factor: float) -> float:
    """Round amplitude (signal units) whose bar spans at most :data:`BAR_LANE_FRACTION` of a lane.

    *factor* is the lane's display factor (plot units per signal unit).
    """
    if not factor > 0 or not math.isfinite(factor):
        return 0.0
    return nice_length(BAR_LANE_FRACTION / factor)


def _fmt(value: float, unit: str) -> str:
    text = f"{value:g}"
    unit = "µV" if unit == "uV" else unit
    return f"{text} {unit}" if unit else text


def calibration_items(factors: np.ndarray, lanes: dict[int, int], units, x: float) -> list:
    """Plot items (a bar and its label per visible channel) at time *x*.

    *factors*: display factor of every channel; *lanes*: channel -> lane index (lane *k* is centred
    on ``y = -k``); *units*: each channel's unit string.
    """
    items = []
    pen = pg.mkPen((40, 40, 40), width=2)
    font = QFont()
    font.setPointSize(7)
    for ch, k in lanes.items():
        amp = amplitude_bar(float(factors[ch]))
        if amp <= 0:
            continue
        half = 0.5 * amp * float(factors[ch])
        bar = pg.PlotCurveItem([x, x], [-k - half, -k + half], pen=pen)
        bar.setZValue(5)
        label = pg.TextItem(_fmt(amp, units[ch] if ch < len(units) else ""), color=(40, 40, 40),
                            anchor=(-0.15, 0.5))  # just right of its bar
        label.setFont(font)
        label.setPos(x, -k)
        label.setZValue(5)
        bar.amplitude, bar.half_height = amp, half  # what the tests read back
        items += [bar, label]
    return items


def paper_grid_times(t0: float, t1: float, px_per_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Times of the major (0.2 s) and minor (0.04 s, majors excluded) ECG paper lines in [t0, t1].

    A level whose spacing is under :data:`MIN_GRID_PX` screen pixels at *px_per_s* is left out
    (an empty array), so long pages do not turn grey.
    """
    def multiples(step: float) -> np.ndarray:
        if not (px_per_s * step >= MIN_GRID_PX) or not t1 > t0:
            return np.zeros(0)
        k = np.arange(math.ceil(t0 / step - 1e-9), math.floor(t1 / step + 1e-9) + 1)
        return k * step

    major = multiples(ECG_MAJOR_S)
    minor = multiples(ECG_MINOR_S)
    if len(minor):
        ratio = int(round(ECG_MAJOR_S / ECG_MINOR_S))
        minor = minor[np.round(minor / ECG_MINOR_S).astype(np.int64) % ratio != 0]
    return major, minor


GRID_STYLE = {"minor": ((250, 214, 214), -10), "major": ((238, 160, 160), -9)}  # ECG-paper red, z


def paper_grid_item(times: np.ndarray, level: str, y0: float, y1: float) -> pg.PlotCurveItem:
    """The lines of one grid *level* ("minor" or "major") at *times*, spanning *y0*..*y1*."""
    colour, z = GRID_STYLE[level]
    item = pg.PlotCurveItem(np.repeat(times, 2), np.tile([y0, y1], len(times)), connect="pairs",
                            pen=pg.mkPen(colour, width=1))
    item.setZValue(z)
    item.level, item.times = level, times  # what the tests read back
    return item


def paper_grid_items(t0: float, t1: float, px_per_s: float, y0: float, y1: float) -> list:
    """Plot items (one line set per level, ECG-paper red) spanning *y0*..*y1* behind the traces."""
    major, minor = paper_grid_times(t0, t1, px_per_s)
    return [paper_grid_item(times, level, y0, y1) for times, level in ((minor, "minor"), (major, "major"))
            if len(times)]
