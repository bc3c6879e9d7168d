"""Opening files: read off the UI thread, choose a DICOM series, ask for a sampling rate.

Every failure becomes an error dialog (``messages.show_error``) and the app keeps
working with whatever was open before.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QInputDialog, QWidget

from desktop import settings as prefs
from desktop.dialogs import messages
from desktop.jobs import JobRunner
from desktop.session import Session

logger = logging.getLogger("desktop")

__all__ = ["Opener", "needs_sfreq", "describe_data"]


def needs_sfreq(exc: BaseException | None) -> bool:
    """Whether a read failed only because a headerless signal needs its sampling rate."""
    from engine.errors import ReadError

    if not isinstance(exc, ReadError):
        return False
    reason = (exc.reason or "").lower()
    return "give the sampling rate" in reason or ("sampling rate" in reason and "sfreq" in reason)


def _is_dicom_location(path: str) -> bool:
    p = Path(path)
    return p.is_dir() or p.name.upper() == "DICOMDIR"


class Opener(QObject):
    """Signals: ``opened(str)`` with the path, ``failed(str, str)`` with path and message."""

    opened = Signal(str)
    failed = Signal(str, str)
    busyChanged = Signal(bool)

    def __init__(self, session: Session, parent_widget: QWidget):
        super().__init__(parent_widget)
        self.session = session
        self.parent_widget = parent_widget
        self.runner = JobRunner(self)
        self.runner.busyChanged.connect(self.busyChanged)
        self.interactive = True
        self._generation = 0

    @property
    def busy(self) -> bool:
        return bool(self.runner.running)

    def open(self, path: str | os.PathLike, **options) -> None:
        """Open *path* (file, WFDB record, DICOM folder or DICOMDIR) with reader *options*."""
        path = os.path.abspath(os.fspath(path))
        # The latest request wins: a read still running for an earlier one is ignored when it ends.
        self._generation += 1
        self.runner.cancel_all()
        gen = self._generation
        if _is_dicom_location(path) and "series_uid" not in options:
            from desktop.dialogs.series_browser import list_series_with_thumbnails

            self.runner.start(lambda: list_series_with_thumbnails(path), name="list series",
                              on_result=lambda series: self._current(gen) and self._series_listed(path, options, series),
                              on_error=lambda msg: self._current(gen) and self._fail(path, msg))
            return
        self._read(path, options)

    def _current(self, gen: int) -> bool:
        return gen == self._generation

    def _series_listed(self, path: str, options: dict, series: list) -> None:
        from desktop.dialogs.series_browser import SeriesBrowser, is_image_series

        images = [s for s, _ in series if is_image_series(s)]
        if len(images) > 1 and self.interactive:

            dlg = SeriesBrowser(path, series, self.parent_widget)
            try:
                accepted, uid = dlg.exec(), dlg.selected_uid
            finally:
                dlg.deleteLater()  # Qt owns a parented dialog: free it now, not with the window or the GC
            if not accepted or uid is None:
                return
            options = dict(options, series_uid=uid)
        self._read(path, options)

    def _read(self, path: str, options: dict) -> None:
        holder: dict = {}

        def read():
            from engine.io import read as engine_read

            return engine_read(path, **options)

        gen = self._generation
        holder["thread"] = self.runner.start(
            read, name=f"read {Path(path).name}",
            on_result=lambda data: self._current(gen) and self._done(path, options, data),
            on_error=lambda msg: self._current(gen) and self._read_failed(path, options, msg,
                                                                           holder["thread"].error))

    def _read_failed(self, path: str, options: dict, msg: str, exc: BaseException | None) -> None:
        if needs_sfreq(exc) and "sfreq" not in options:
            sfreq = self.ask_sfreq(path)
            if sfreq:
                prefs.settings().setValue("last_sfreq", sfreq)
                self._read(path, dict(options, sfreq=sfreq))
                return
        self._fail(path, msg)

    def ask_sfreq(self, path: str) -> float | None:
        """Ask the user for the sampling rate of a headerless signal (None if cancelled)."""
        if not self.interactive:
            return None
        from engine.tasks.score_segments import model_sfreq

        expected = model_sfreq()  # the rate the bundled EEG segment model was trained at (Bonn: 173.61 Hz)
        try:
            last = float(prefs.settings().value("last_sfreq", expected))
        except (TypeError, ValueError):
            last = expected
        used = "" if abs(last - expected) < 1e-6 else f"; last used: {last:g} Hz"
        value, ok = QInputDialog.getDouble(
            self.parent_widget, "Sampling rate",
            f"{Path(path).name} has no header.\nThe EEG models expect {expected:g} Hz{used}.\n"
            "Sampling rate in Hz:", expected, 0.001, 1_000_000.0, 3)
        return float(value) if ok and value > 0 else None

    def _fail(self, path: str, msg: str) -> None:
        self.failed.emit(path, msg)
        messages.show_error(self.parent_widget, "Cannot open file", msg)

    def _done(self, path: str, options: dict, data) -> None:
        self.session.set_data(data, path, options)
        try:
            prefs.add_recent_file(path)
            prefs.set_last_dir(path)
        except Exception:  # noqa: BLE001 - preferences never stop a file from opening
            logger.debug("could not store recent file", exc_info=True)
        self.opened.emit(path)

    def shutdown(self) -> None:
        self.runner.shutdown()


def describe_data(data) -> str:
    """A one-line description of the open data for the status bar."""
    m = getattr(data, "modality", "?")
    if m == "ct":
        sp = data.spacing or ()
        return f"CT {' × '.join(map(str, data.shape))}, {' × '.join(f'{v:.2f}' for v in sp)} mm"
    if m == "histology":
        mpp = f", {data.mpp:.3g} µm/px" if data.mpp else ", scale unknown"
        return f"H&E {data.shape[1]} × {data.shape[0]} px, {len(data.levels or (1,))} level(s){mpp}"
    if m in ("ecg", "eeg"):
        return (f"{m.upper()} {len(data.channels)} ch, {data.sfreq:g} Hz, {data.duration:.1f} s, "
                f"{len(data.annotations)} annotations")
    return str(m)
