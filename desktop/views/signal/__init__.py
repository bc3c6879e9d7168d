"""The ECG/EEG viewer: the paging view and the pieces it is built from.

``view`` (the widget: data, navigation, keys), ``page`` (drawing one page), ``toolbar`` (paging,
window, gain, µV/div, montage, filter boxes), ``lanes`` (channel list, channel groups),
``amplitude`` (common µV/division, per-channel scales), ``tracks`` (score track, overview strip),
``layers`` (anomaly bands, annotation markers), ``kept_items`` (the plot items a page turn moves
instead of rebuilding), ``filters`` (display filters, envelope), ``scale_bars`` (amplitude
calibration bars, ECG paper grid) and ``notices`` (truncated-file banner).

``SignalView`` and ``WINDOW_CHOICES`` are imported on first use: they bring pyqtgraph, which the
empty main window does not need (``notices`` can be imported alone).
"""
from desktop.views.signal.notices import truncation_notice

__all__ = ["SignalView", "WINDOW_CHOICES", "truncation_notice"]


def __getattr__(name: str):
    if name in ("SignalView", "WINDOW_CHOICES"):
        from desktop.views.signal import view

        return getattr(view, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
