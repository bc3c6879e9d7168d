"""The ECG/EEG viewer: the paging view and the pieces it is built from.

``view`` (the widget), ``toolbar`` (paging, window, gain, filter boxes), ``tracks`` (score track,
overview strip), ``layers`` (anomaly bands, annotation markers), ``filters`` (display filters,
envelope) and ``scale_bars`` (amplitude calibration bars, ECG paper grid).
"""
from desktop.views.signal.view import WINDOW_CHOICES, SignalView

__all__ = ["SignalView", "WINDOW_CHOICES"]
