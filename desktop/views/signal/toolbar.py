"""The signal viewer's tool bar: paging, time window, gain, EEG µV/division and montage, and the
display-filter boxes.

The widgets it makes are set on the view (``window_box``, ``scale_box``, ``montage_box``, ``hp_box``,
``lp_box``, ``notch_box``, ``grid_box``, ``pos_label``); the slots it connects are the view's own.
A box chosen with the mouse hands the keys back to the view, so Left/Right keep paging.
"""
from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QToolButton

from desktop.views.signal.amplitude import SENSITIVITIES_UV
from desktop.views.signal.filters import FilterSettings

__all__ = ["WINDOW_CHOICES", "build_toolbar", "filter_box", "reset_filter_boxes", "mark_filter_boxes",
           "sync_scale_box"]

WINDOW_CHOICES = (1, 2, 5, 10, 20, 30, 60, 120)


def filter_box(name: str, choices, tip: str, on_change) -> QComboBox:
    """A combo box of cut-offs in Hz ("off" = ``None``) that calls *on_change* when it changes."""
    box = QComboBox()
    for c in choices:
        box.addItem(f"{name} off" if c == "off" else f"{name} {c:g} Hz", None if c == "off" else c)
    box.setToolTip(tip + " display filter, zero-phase, on the visible page only")
    box.currentIndexChanged.connect(lambda *_: on_change())
    return box


def build_toolbar(view) -> QHBoxLayout:
    """Make the tool bar of the :class:`~desktop.views.signal.SignalView` *view*."""
    bar = QHBoxLayout()
    bar.setContentsMargins(4, 2, 4, 2)

    def button(text, tip, slot):
        b = QToolButton(text=text)
        b.setToolTip(tip)
        b.clicked.connect(slot)
        bar.addWidget(b)
        return b

    button("◀◀", "Previous page (PageUp / Left)", lambda: view.set_start(view.start - view.window))
    button("▶▶", "Next page (PageDown / Right)", lambda: view.set_start(view.start + view.window))
    view.window_box = QComboBox()
    view.window_box.addItems([f"{w} s" for w in WINDOW_CHOICES])
    view.window_box.setCurrentIndex(WINDOW_CHOICES.index(10))
    view.window_box.setToolTip("Time window (page length)")
    view.window_box.currentIndexChanged.connect(lambda i: view.set_window(WINDOW_CHOICES[i]))
    bar.addWidget(view.window_box)
    button("−", "Lower gain of the selected channels (all if none) (-)", lambda: view.change_gain(0.5))
    button("+", "Raise gain of the selected channels (all if none) (+)", lambda: view.change_gain(2.0))
    button("Auto", "Fit the lanes to this page again (drops per-channel scales)", view.auto_scale)
    view.scale_box = QComboBox()
    for s in SENSITIVITIES_UV:
        view.scale_box.addItem(f"{s:g} µV/div", s)
    view.scale_box.setToolTip("One scale for every EEG lane: µV per division (a division is the distance "
                              "between two lanes). Select channels and press +/- to give them their own.")
    view.scale_box.currentIndexChanged.connect(lambda i: view.set_sensitivity(view.scale_box.itemData(i)))
    view.scale_box.setVisible(False)
    bar.addWidget(view.scale_box)
    from engine.io.montages import MONTAGES

    view.montage_box = QComboBox()
    for key, title in MONTAGES.items():
        view.montage_box.addItem(title, key)
    view.montage_box.setToolTip("EEG montage, for reading and for the analysis (the results name it)")
    view.montage_box.currentIndexChanged.connect(lambda i: view.choose_montage(view.montage_box.itemData(i)))
    view.montage_box.setVisible(False)
    bar.addWidget(view.montage_box)
    view.hp_box = filter_box("HP", ("off", 0.5, 1.0, 5.0), "High-pass (Hz)", lambda: view._on_filters())
    view.lp_box = filter_box("LP", ("off", 15.0, 30.0, 40.0, 70.0, 100.0), "Low-pass (Hz)", lambda: view._on_filters())
    view.notch_box = filter_box("Notch", ("off", 50.0, 60.0), "Notch (Hz)", lambda: view._on_filters())
    for box in (view.hp_box, view.lp_box, view.notch_box):
        bar.addWidget(box)
    view.grid_box = QCheckBox("Grid")
    view.grid_box.setChecked(True)
    view.grid_box.setToolTip("ECG paper time grid: 0.2 s major and 0.04 s minor lines (25 mm/s paper)")
    view.grid_box.toggled.connect(lambda *_: view._redraw())
    view.grid_box.setVisible(False)
    bar.addWidget(view.grid_box)
    bar.addStretch(1)
    view.pos_label = QLabel("")
    bar.addWidget(view.pos_label)
    for box in (view.window_box, view.scale_box, view.montage_box, view.hp_box, view.lp_box, view.notch_box):
        box.activated.connect(lambda *_: QTimer.singleShot(0, view.setFocus))
    return bar


def reset_filter_boxes(view) -> None:
    """Every display filter off (a new recording starts unfiltered, never with the last file's filters)."""
    for box in (view.hp_box, view.lp_box, view.notch_box):
        box.blockSignals(True)
        box.setCurrentIndex(0)
        box.blockSignals(False)
    view.filters = FilterSettings()
    mark_filter_boxes(view)


def mark_filter_boxes(view) -> None:
    """A display filter that is on is plain to see: its box is orange and bold."""
    for box in (view.hp_box, view.lp_box, view.notch_box):
        box.setStyleSheet("QComboBox { background: #ffd58a; font-weight: bold; }" if box.currentData() else "")


def sync_scale_box(view) -> None:
    """Show the common µV/div (hidden when the lanes are fitted: ECG)."""
    common = view.lanes.common
    view.scale_box.setVisible(common is not None)
    if common is not None:
        view.scale_box.blockSignals(True)
        view.scale_box.setCurrentIndex(max(0, view.scale_box.findData(common)))
        view.scale_box.blockSignals(False)
