"""The ECG/EEG viewer: the paging view and the pieces it is built from.

``view`` (the widget: data, navigation, keys), ``page`` (drawing one page), ``toolbar`` (paging,
window, gain, µV/div, montage, filter boxes), ``lanes`` (channel list, channel groups),
``amplitude`` (common µV/division, per-channel scales), ``tracks`` (score track, overview strip),
``layers`` (anomaly bands, annotation markers), ``filters`` (display filters, envelope),
``scale_bars`` (amplitude calibration bars, ECG paper grid) and ``notices`` (truncated-file banner).
"""
from desktop.views.signal.notices import truncation_notice
from desktop.views.signal.view import WINDOW_CHOICES, SignalView

__all__ = ["SignalView", "WINDOW_CHOICES", "truncation_notice"]
