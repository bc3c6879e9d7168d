"""The main window: menus, docks, status bar and the viewer for the open modality.

No computation happens here: reading is done by :class:`desktop.opener.Opener`,
analysis by :class:`desktop.panels.analysis.AnalysisPanel`, both in worker threads.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QComboBox,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QStackedWidget,
    QWidget,
)

from desktop import settings as prefs
from desktop.dialogs import messages
from desktop.opener import Opener, describe_data
from desktop.panels.analysis import AnalysisPanel
from desktop.panels.export import ExportPanel
from desktop.panels.results import ResultsPanel
from desktop.panels.welcome import welcome_page
from desktop.session import Session
from desktop.session_actions import SessionActions
from desktop.views.signal.notices import truncation_notice

logger = logging.getLogger("desktop")

__all__ = ["MainWindow", "OPEN_FILTER"]

OPEN_FILTER = ("Medical images and signals (*.dcm *.dicom *.ima DICOMDIR *.png *.jpg *.jpeg *.tif *.tiff *.svs "
               "*.ndpi *.mrxs *.scn *.hea *.dat *.edf *.bdf *.gdf *.fif *.fif.gz *.vhdr *.set *.txt *.csv "
               "*.tsv *.asc *.npy);;All files (*)")

class MainWindow(QMainWindow):
    deviceFound = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Latent")
        self.setAcceptDrops(True)
        self.session = Session(self)
        self.opener = Opener(self.session, self)
        self._build_central()
        self._build_docks()
        self._build_menus()
        self._build_status()
        self.sessions = SessionActions(self)  # File › Save/Open session; the questions before results are lost
        self.session.dataChanged.connect(self._on_data)
        self.session.resultAdded.connect(self._on_result)
        self.opener.busyChanged.connect(self._on_open_busy)
        self.opener.failed.connect(lambda path, _msg: self.statusBar().showMessage(
            f"Could not open {Path(path).name}", 8000))
        for sig in (self.session.dataChanged, self.session.resultAdded, self.session.resultsCleared,
                    self.analysis.taskStarted, self.analysis.taskFinished, self.analysis.taskFailed,
                    self.analysis.taskCancelled, self.analysis.task_box.currentIndexChanged):
            sig.connect(self._update_actions)
        self._update_actions()
        self._restore()
        QTimer.singleShot(300, self._detect_device)

    # ---- construction -----------------------------------------------------------------
    def _build_central(self) -> None:
        self.stack = QStackedWidget()
        welcome = welcome_page(self.ask_open, self.ask_open_folder)
        self.welcome = welcome
        self.stack.addWidget(welcome)
        self._views: tuple | None = None  # (ct, slide, signal): built when first needed
        # the viewers (and pyqtgraph, ~0.4 s to import) wait for the first file: the empty window shows sooner
        self.session.dataAboutToChange.connect(self._ensure_views)
        self.setCentralWidget(self.stack)

    def _ensure_views(self) -> tuple:
        """The CT, slide and signal viewers, built (and pyqtgraph imported) on first use."""
        if self._views is None:
            from desktop.views.ct_view import CtView
            from desktop.views.signal import SignalView
            from desktop.views.slide_view import SlideView

            views = (CtView(self.session), SlideView(self.session), SignalView(self.session))
            self._views = views
            for v in views:
                self.stack.addWidget(v)
                v.statusMessage.connect(lambda msg: self.statusBar().showMessage(msg, 4000))
            views[1].scaleRequested.connect(lambda mpp: self.ask_mpp(mpp))
        return self._views

    ct_view = property(lambda self: self._ensure_views()[0])
    slide_view = property(lambda self: self._ensure_views()[1])
    signal_view = property(lambda self: self._ensure_views()[2])

    def _dock(self, title: str, widget: QWidget, name: str) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        for box in widget.findChildren(QComboBox):  # a choice made, the keys page the view again
            box.activated.connect(lambda *_: QTimer.singleShot(0, lambda: self.current_view().setFocus()))
        return dock

    def _build_docks(self) -> None:
        self.analysis = AnalysisPanel(self.session)
        self.results = ResultsPanel(self.session)
        self.export = ExportPanel(self.session, self.current_view)
        self.analysis_dock = self._dock("Analysis", self.analysis, "analysis_dock")
        self.results_dock = self._dock("Results", self.results, "results_dock")
        self.export_dock = self._dock("Export", self.export, "export_dock")
        self.tabifyDockWidget(self.results_dock, self.export_dock)
        self.results_dock.raise_()
        self._docks_sized = False

    def showEvent(self, ev):  # noqa: N802 - Qt override
        super().showEvent(ev)
        if not self._docks_sized and not prefs.settings().value("window/state"):
            self._docks_sized = True
            QTimer.singleShot(0, self._size_docks)

    def _size_docks(self) -> None:
        w = max(280, min(340, self.width() // 4))
        self.resizeDocks([self.analysis_dock], [w], Qt.Orientation.Horizontal)
        # the Analysis panel only needs its own height; the rest goes to Results (its table)
        top = self.analysis_dock.minimumSizeHint().height() + 8
        self.resizeDocks([self.analysis_dock, self.results_dock], [top, max(300, self.height() - top)],
                         Qt.Orientation.Vertical)

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(slot)
        menu.addAction(act)
        return act

    def _open_adapt(self) -> None:
        from desktop.dialogs.adapt import open_adapt_dialog

        self.adapt_dialog = open_adapt_dialog(self, on_adapted=lambda _name: self.analysis.refresh_models())

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        self._action(m, "&Open…", self.ask_open, QKeySequence.StandardKey.Open, "Open an image or a recording")
        self._action(m, "Open DICOM &folder…", self.ask_open_folder, "Ctrl+Shift+O", "Open a folder of DICOM files")
        self.recent_menu = m.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        self.close_act = self._action(m, "&Close", lambda: self.sessions.confirm_discard() and self.session.close(),
                                      QKeySequence.StandardKey.Close)
        self._action(m, "&Batch…", lambda: _dialog("batch", "open_batch_dialog")(self), None,
                     "Run a task over many files")
        m.addSeparator()
        self.png_act = self._action(m, "Save view as &PNG…", self.export.ask_png, "Ctrl+Shift+S")
        self.export_act = self._action(m, "&Export results…", self.export.ask_results, "Ctrl+E")
        m.addSeparator()
        self._action(m, "&Quit", self.close, "Ctrl+Q")  # StandardKey.Quit is empty on Windows and offscreen

        v = bar.addMenu("&View")
        self.fit_act = self._action(v, "&Fit to window", self.fit_view, "Ctrl+0")
        self.compare_act = self._action(v, "&Compare original / reconstruction / anomaly", self.toggle_compare,
                                        "Ctrl+K")
        self.mpp_act = self._action(v, "Set image &scale (µm/px)…", self.ask_mpp,
                                    tip="Microns per pixel of an H&E image whose file does not say it")
        v.addSeparator()
        for dock in (self.analysis_dock, self.results_dock, self.export_dock):
            v.addAction(dock.toggleViewAction())

        a = bar.addMenu("&Analysis")
        self.run_act = self._action(a, "&Run selected task", lambda: self.analysis.run_task(), "Ctrl+R")
        self.cancel_act = self._action(a, "&Cancel", self.analysis.cancel, "Esc")
        a.addSeparator()
        self.adapt_act = self._action(a, "&Adapt model to my data…", self._open_adapt, None,
                                      "Fine-tune a model on your own normal cases, annotations or recordings")
        a.addSeparator()
        self.clear_act = self._action(a, "Clear &results", self.session.clear_results)

        h = bar.addMenu("&Help")
        self.samples_menu = h.addMenu("Open &sample")
        self.samples_menu.aboutToShow.connect(self._fill_samples)
        self._action(h, "&Mouse and keys", lambda: _dialog("about", "show_help")(self), "F1")
        self._action(h, "&About Latent", lambda: _dialog("about", "show_about")(self))
        self._fill_samples()
        self._fill_recent()

    def _build_status(self) -> None:
        self.file_label = QLabel("")
        self.statusBar().addPermanentWidget(self.file_label)
        self.statusBar().showMessage("Ready")

    def _update_actions(self, *_) -> None:
        """Menu items are enabled only when they can do something."""
        has_data = self.session.data is not None
        busy = self.analysis.busy
        self.close_act.setEnabled(has_data)
        self.png_act.setEnabled(has_data)
        self.export_act.setEnabled(bool(self.session.results))
        self.run_act.setEnabled(has_data and not busy and self.analysis.run_btn.isEnabled())
        self.cancel_act.setEnabled(busy)
        self.clear_act.setEnabled(bool(self.session.results) and not busy)
        box = getattr(self.current_view(), "compare_box", None)  # a view enables it when it has layers to compare
        self.compare_act.setEnabled(box is not None and box.isEnabled())
        self.fit_act.setEnabled(has_data)
        self.mpp_act.setEnabled(self.session.modality == "histology" and not busy)

    # ---- opening -----------------------------------------------------------------
    def open_path(self, path: str, **options) -> None:
        if not self.sessions.confirm_discard():  # unsaved results: Save / Discard / Cancel
            return
        self.statusBar().showMessage(f"Opening {Path(path).name}…")
        self.opener.open(path, **options)

    def ask_mpp(self, suggested: float | None = None) -> None:
        """Re-read the open H&E image with a microns-per-pixel value given by the user.

        *suggested* pre-fills the dialog (the scale estimated from the image, say)."""
        from PySide6.QtWidgets import QInputDialog

        data = self.session.data
        if self.session.modality != "histology" or not self.session.path:
            return
        current = float(data.mpp) if getattr(data, "mpp", None) else float(suggested or 0.5)
        value, ok = QInputDialog.getDouble(
            self, "Image scale", f"{Path(self.session.path).name}: microns per pixel at full resolution\n"
            "(0.25 ≈ 40× objective, 0.5 ≈ 20×):", current, 0.01, 100.0, 4)
        if ok and value > 0:
            self.open_with_mpp(float(value))

    def open_with_mpp(self, mpp: float) -> None:
        """Open the current image again with *mpp* overriding its file's scale (results are cleared)."""
        self.open_path(self.session.path, **dict(self.session.read_options, mpp=mpp))

    def ask_open(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open", prefs.last_dir(), OPEN_FILTER)
        if paths:
            self.open_path(paths[0])

    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open DICOM folder", prefs.last_dir())
        if folder:
            self.open_path(folder)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = prefs.recent_files()
        for p in items:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self._open_recent(p))
        if not items:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list").triggered.connect(
                lambda: prefs.settings().setValue("recent_files", []))

    def _open_recent(self, path: str) -> None:
        if not os.path.exists(path) and not os.path.exists(path + ".hea"):
            prefs.remove_recent_file(path)
            messages.show_error(self, "File not found", f"{path}: no longer exists; removed from the recent list.")
            return
        self.open_path(path)

    def _fill_samples(self) -> None:
        from desktop.resources import list_samples

        self.samples_menu.clear()
        samples = list_samples()
        for label, path, opts in samples:
            act = self.samples_menu.addAction(label)
            act.triggered.connect(lambda _=False, p=path, o=opts: self.open_path(p, **o))
        if not samples:
            self.samples_menu.addAction("(no samples bundled in this build)").setEnabled(False)

    def dragEnterEvent(self, ev):  # noqa: N802 - Qt override
        if ev.mimeData().hasUrls():
            ev.acceptProposedAction()

    def dropEvent(self, ev):  # noqa: N802 - Qt override
        urls = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if urls:
            ev.acceptProposedAction()
            self.open_path(urls[0])

    def _on_open_busy(self, busy: bool) -> None:
        if busy:
            self.setCursor(Qt.CursorShape.BusyCursor)
        else:
            self.unsetCursor()

    # ---- state -------------------------------------------------------------------
    def current_view(self) -> QWidget:
        return self.stack.currentWidget()

    def _on_data(self) -> None:
        data, modality = self.session.data, self.session.modality
        name = {"ct": "ct_view", "histology": "slide_view", "ecg": "signal_view", "eeg": "signal_view"}.get(modality)
        view = getattr(self, name) if name else self.welcome
        self.stack.setCurrentWidget(view)
        if data is None:
            self.setWindowTitle("Latent")
            self.file_label.setText("")
            self.statusBar().showMessage("Closed")
            return
        name = Path(self.session.path or "").name
        self.setWindowTitle(f"{name} — Latent")
        self.file_label.setText(describe_data(data))
        notice = truncation_notice(data)  # a truncated file: said until the next message
        self.statusBar().showMessage(" — ".join(filter(None, (f"Opened {name}", notice))), 0 if notice else 5000)
        view.setFocus()

    def _on_result(self, task: str) -> None:
        from desktop.presenters import presenter_for

        result = self.session.results[task].result
        self.statusBar().showMessage(presenter_for(result).status(result, self.session.data), 10000)

    def fit_view(self) -> None:
        view = self.current_view()
        if hasattr(view, "fit"):
            view.fit()
        elif hasattr(view, "auto_scale"):  # the signal view
            view.auto_scale()

    def toggle_compare(self) -> None:
        view = self.current_view()
        box = getattr(view, "compare_box", None)
        if box is not None and box.isEnabled():
            box.setChecked(not box.isChecked())
        else:
            self.statusBar().showMessage("Run “Reconstruct + anomaly map” first to compare.", 4000)

    def _detect_device(self) -> None:
        # A daemon thread, not a QThread: importing torch cannot be interrupted, and quitting
        # the app must not wait for it.
        import threading

        def detect():
            try:
                from engine._shared.device import choose_device, device_name

                text = device_name(choose_device())
            except Exception:  # noqa: BLE001 - no torch: the tasks will say so when run
                text = "CPU (torch unavailable)"
            try:
                self.deviceFound.emit(text)
            except RuntimeError:  # the window is gone
                pass

        self.deviceFound.connect(self.analysis.set_device_text)
        threading.Thread(target=detect, name="latent-device", daemon=True).start()

    # ---- persistence -------------------------------------------------------------
    def _restore(self) -> None:
        prefs.restore_window(self)

    def closeEvent(self, ev):  # noqa: N802 - Qt override
        if not self.sessions.confirm_quit():  # a running task, unsaved results
            ev.ignore()
            return
        s = prefs.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState())
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Stop every worker thread (cancel, then wait)."""
        views = () if self._views is None else (self._views[2],)  # the signal view runs workers
        for obj in (self.analysis, self.opener, self.export, *views):
            obj.runner.shutdown()


def _dialog(module: str, name: str):
    """A dialog opener from ``desktop.dialogs.<module>``, imported when first used (fast start-up)."""
    import importlib

    return getattr(importlib.import_module(f"desktop.dialogs.{module}"), name)
