"""A banner over the slide view when the pixel size was estimated, not read from the file.

Detection on an image whose file has no pixel size runs at a scale estimated from its
nuclei (``mpp_source == "estimated"``). The banner says so in plain words, with the
estimate, the magnification it suggests and its confidence, and offers to **Confirm**
the estimate (it then becomes the image's scale for the scale bar and later runs) or to
**Set scale…** (the View › Set image scale dialog, pre-filled with the estimate).
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

__all__ = ["ScaleBanner", "estimate_text"]


def estimate_text(estimate: dict) -> str:
    """One sentence for an ``mpp_estimate`` dict (``mpp``, ``magnification``, ``confidence``)."""
    mpp = float(estimate.get("mpp", float("nan")))
    conf = estimate.get("confidence")
    conf_txt = f", confidence {float(conf):.0%}" if conf is not None else ""
    low = " (low: please check)" if conf is not None and float(conf) < 0.6 else ""
    return (f"The file gives no pixel size. The scale was ESTIMATED from the nuclei: {mpp:.3g} µm/px "
            f"(≈ {estimate.get('magnification', '?')}{conf_txt}{low}). Counts, densities and areas depend on it.")


class ScaleBanner(QFrame):
    """Yellow banner: the estimated scale with Confirm / Set scale… buttons (hidden by default).

    Signals
    -------
    confirmed(float)
        The user accepts the estimate (µm/px).
    setScaleRequested(float)
        The user wants to enter the scale; the estimate is the suggested value.
    """

    confirmed = Signal(float)
    setScaleRequested = Signal(float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("scaleBanner")
        self.setStyleSheet("#scaleBanner { background: #fff3bf; border: 1px solid #e0b000; } "
                           "#scaleBanner QLabel { color: #3a2d00; }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel("")
        self.label.setWordWrap(True)
        self.confirm_btn = QPushButton("Confirm")
        self.confirm_btn.setToolTip("Use the estimated scale for this image")
        self.set_btn = QPushButton("Set scale…")
        self.set_btn.setToolTip("Enter the microns per pixel (then run the detection again)")
        lay.addWidget(self.label, 1)
        lay.addWidget(self.confirm_btn)
        lay.addWidget(self.set_btn)
        self.estimate: dict | None = None
        self.confirm_btn.clicked.connect(self._confirm)
        self.set_btn.clicked.connect(lambda: self.setScaleRequested.emit(self.mpp or 0.5))
        self.setVisible(False)

    @property
    def mpp(self) -> float | None:
        return float(self.estimate["mpp"]) if self.estimate else None

    def show_estimate(self, estimate: dict) -> None:
        self.estimate = dict(estimate)
        self.label.setText(estimate_text(estimate))
        self.setVisible(True)

    def clear(self) -> None:
        self.estimate = None
        self.setVisible(False)

    def _confirm(self) -> None:
        mpp = self.mpp
        self.setVisible(False)
        if mpp:
            self.confirmed.emit(mpp)
