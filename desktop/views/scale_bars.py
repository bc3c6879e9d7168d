"""Physical scale references for the viewers: 1/2/5 lengths and per-lane amplitude calibration bars.

Each signal lane shows a vertical bar of a round amplitude (``1 mV``, ``50 µV`` ...) drawn with the
lane's own display factor, the calibration pulse of a paper ECG or EEG: the reader can judge
amplitudes although each lane is scaled to fit.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QFont

__all__ = ["nice_length", "amplitude_bar", "calibration_items", "BAR_LANE_FRACTION"]

#: The bar is at most this fraction of a lane (lanes are 1 plot unit apart).
BAR_LANE_FRACTION = 0.5


def nice_length(target: float) -> float:
    """The 1/2/5 x 10^k value closest below *target* (for scale bars)."""
    if not target > 0 or not math.isfinite(target):
        return 0.0
    exp = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10 ** exp <= target:
            return m * 10 ** exp
    return 10 ** exp


def amplitude_bar(factor: float) -> float:
    """Round amplitude (signal units) whose bar spans at most :data:`BAR_LANE_FRACTION` of a lane.

    *factor* is the lane's display factor (plot units per signal unit).
    """
    if not factor > 0 or not math.isfinite(factor):
        return 0.0
    return nice_length(BAR_LANE_FRACTION / factor)


def _fmt(value: float, unit: str) -> str:
    text = f"{value:g}"
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
        label = pg.TextItem(_fmt(amp, units[ch] if ch < len(units) else ""), color=(40, 40, 40), anchor=(0, 0.5),
                            fill=pg.mkBrush(255, 255, 255, 215))  # readable over the trace it sits on
        label.setFont(font)
        label.setPos(x, -k)
        label.setZValue(5)
        bar.amplitude, bar.half_height = amp, half  # what the tests read back
        items += [bar, label]
    return items
