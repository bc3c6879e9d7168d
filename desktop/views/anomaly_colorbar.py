"""A colour bar for the anomaly overlay's FIXED calibrated scale (0 … ANOMALY_DISPLAY_MAX).

It follows the session's overlay settings (colormap, threshold): what is below the
threshold is drawn hatched-grey, the way the overlay leaves it transparent.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QWidget

from desktop.session import ANOMALY_DISPLAY_MAX, Session
from desktop.views.overlays import lut

__all__ = ["AnomalyColorBar", "colorbar_rgb"]

_BAR_H = 10
_TICKS = (0.0, 1.0, ANOMALY_DISPLAY_MAX)


def colorbar_rgb(colormap: str, threshold: float, width: int, vmax: float = ANOMALY_DISPLAY_MAX) -> np.ndarray:
    """``(width, 3)`` uint8 colours of the bar: the overlay's LUT on 0..vmax, grey below *threshold*."""
    v = (np.arange(width, dtype=np.float32) + 0.5) / width * vmax
    rgb = lut(colormap)[np.clip(v / vmax * 255.0, 0, 255).astype(np.uint8)].copy()
    rgb[v < threshold] = (96, 96, 96)
    return rgb


class AnomalyColorBar(QWidget):
    """Horizontal colour bar labelled 0, 1 (= p99 of normal) and the display maximum."""

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.setToolTip("Anomaly scale, fixed for every image: 0 = typical of normal data, "
                        "1 = the 99th percentile of normal data (calibrated with the model)")
        self.setMinimumWidth(120)
        session.overlayChanged.connect(self.update)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt override
        return QSize(160, _BAR_H + self.fontMetrics().height() + 4)

    def bar_rect(self) -> QRect:
        """Where the colours are drawn (the labels go below)."""
        return QRect(4, 2, max(1, self.width() - 8), _BAR_H)

    def paintEvent(self, ev):  # noqa: N802 - Qt override
        r = self.bar_rect()
        ov = self.session.overlay
        rgb = np.ascontiguousarray(np.repeat(colorbar_rgb(ov.colormap, ov.threshold, r.width())[None], r.height(), 0))
        img = QImage(rgb.data, r.width(), r.height(), 3 * r.width(), QImage.Format.Format_RGB888)
        p = QPainter(self)
        p.drawImage(r.topLeft(), img)
        p.setPen(QColor(self.palette().windowText().color()))
        fm = self.fontMetrics()
        for t in _TICKS:
            x = r.left() + int(round(t / ANOMALY_DISPLAY_MAX * (r.width() - 1)))
            p.drawLine(x, r.bottom(), x, r.bottom() + 3)
            s = f"{t:g}"
            w = fm.horizontalAdvance(s)
            p.drawText(min(max(0, x - w // 2), self.width() - w), r.bottom() + 3 + fm.ascent(), s)
        p.end()
