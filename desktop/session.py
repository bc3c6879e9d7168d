"""The state of one window: the open data, the results, the overlay settings.

Widgets observe a :class:`Session` through its signals; they do not own state.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Signal

__all__ = ["Session", "ResultEntry", "OverlaySettings", "ANOMALY_DISPLAY_MAX"]

#: The anomaly map is shown on the model's calibrated fixed scale: 0 = typical of
#: normal data, 1 = the calibrated high percentile. The colour scale always spans
#: 0..ANOMALY_DISPLAY_MAX, never the range of the image, so a normal case stays cool.
ANOMALY_DISPLAY_MAX = 2.0


@dataclass
class ResultEntry:
    """One finished task: its result and how it was made."""

    task: str
    result: Any
    model: str
    device: str = ""
    seconds: float = 0.0
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OverlaySettings:
    """How the anomaly heat-map is drawn (persisted in QSettings)."""

    colormap: str = "inferno"
    opacity: float = 0.55
    threshold: float = 0.5  # on the calibrated scale; below it the overlay is transparent
    visible: bool = True
    show_markers: bool = True
    show_reconstruction: bool = True


class Session(QObject):
    """The open data and everything computed from it.

    Signals
    -------
    dataChanged()
        New data was opened (``data`` may be None after :meth:`close`).
    resultAdded(str)
        A task finished; the entry is ``results[task]``.
    resultsCleared()
    overlayChanged()
        :attr:`overlay` was modified.
    focusRequested(float, float)
        Centre the view on a point: (x, y) image pixels, or (seconds, 0) for signals.
    montageChanged()
        :attr:`montage` changed (EEG); :attr:`analysis_data` is the recording through it.
    roiChanged()
        :attr:`roi` (the level-0 ``(x, y, w, h)`` that limits detection, or None) changed.
    dataAboutToChange()
        New data (not None) is about to be set: emitted before anything changes, so that the
        main window can build the viewers (imported when first needed) before ``dataChanged``.
    """

    dataChanged = Signal()
    resultAdded = Signal(str)
    resultsCleared = Signal()
    overlayChanged = Signal()
    focusRequested = Signal(float, float)
    montageChanged = Signal()
    roiChanged = Signal()
    dataAboutToChange = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.data: Any = None
        self.path: str | None = None
        self.read_options: dict[str, Any] = {}
        self.results: dict[str, ResultEntry] = {}
        self.overlay = OverlaySettings()
        self.montage = "none"  # an engine.io.montages.MONTAGES key
        self._montaged: Any = None
        self._in_use: dict[int, int] = {}
        self.roi: tuple[int, int, int, int] | None = None

    @property
    def modality(self) -> str | None:
        return None if self.data is None else getattr(self.data, "modality", None)

    def set_data(self, data: Any, path: str, options: dict[str, Any] | None = None) -> None:
        if data is not None:
            self.dataAboutToChange.emit()
        old = self.data
        self.results.clear()
        self.resultsCleared.emit()
        self.data, self.path, self.read_options = data, path, dict(options or {})
        self.montage, self._montaged = "none", None  # a new recording is shown as recorded
        if self.roi is not None:
            self.roi = None
            self.roiChanged.emit()
        self.dataChanged.emit()
        if old is not None and old is not data and not self._in_use.get(id(old)):
            _close(old)

    def acquire(self, data: Any) -> None:
        """A worker uses *data*: it is not closed when another file is opened meanwhile."""
        self._in_use[id(data)] = self._in_use.get(id(data), 0) + 1

    def release(self, data: Any) -> None:
        """The worker is done with *data*; close it if it is no longer the open data."""
        n = self._in_use.get(id(data), 0) - 1
        if n > 0:
            self._in_use[id(data)] = n
            return
        self._in_use.pop(id(data), None)
        if data is not self.data:
            _close(data)

    def close(self) -> None:
        self.set_data(None, None)  # type: ignore[arg-type]

    def set_roi(self, roi: tuple[int, int, int, int] | None) -> None:
        """Limit region-aware tasks (detect-nuclei) to *roi* (level-0 x, y, w, h), or None for all."""
        self.roi = tuple(int(v) for v in roi) if roi is not None else None
        self.roiChanged.emit()

    def add_result(self, entry: ResultEntry) -> None:
        """Keep *entry* (by task name) and announce it; a result type with no presenter is refused
        with :class:`~desktop.presenters.UnknownResultError` before any view sees it."""
        from desktop.presenters import presenter_for

        presenter_for(entry.result)
        self.results[entry.task] = entry
        self.resultAdded.emit(entry.task)

    @property
    def analysis_data(self) -> Any:
        """What the views draw and the tasks run on: the open data through :attr:`montage`."""
        return self.data if self._montaged is None else self._montaged

    def set_montage(self, name: str) -> None:
        """Read the open EEG through montage *name*; results made on the old one are cleared.

        Raises :class:`engine.io.montages.MontageError` (nothing changes) when it cannot be built.
        """
        from engine.io.montages import apply_montage

        derived = apply_montage(self.data, name)
        self.montage, self._montaged = name, (None if derived is self.data else derived)
        self.clear_results()
        self.montageChanged.emit()

    def clear_results(self) -> None:
        self.results.clear()
        self.resultsCleared.emit()

    def set_overlay(self, **changes: Any) -> None:
        for k, v in changes.items():
            if not hasattr(self.overlay, k):
                raise AttributeError(f"unknown overlay setting {k!r}")
            setattr(self.overlay, k, v)
        self.overlayChanged.emit()

    def focus(self, x: float, y: float = 0.0) -> None:
        self.focusRequested.emit(float(x), float(y))


def _close(data: Any) -> None:
    if hasattr(data, "close"):
        try:
            data.close()
        except Exception:  # noqa: BLE001 - closing a reader must never break the UI
            pass
