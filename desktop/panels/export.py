"""Export panel: a PNG snapshot of the view, and every result through its task's writer
(CSV/GeoJSON detections, denoised WFDB/EDF, anomaly map TIFF, JSON summary with provenance).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from PySide6.QtCore import QPoint, Signal
from PySide6.QtGui import QImage, QPainter, QRegion
from PySide6.QtWidgets import QFileDialog, QLabel, QListWidget, QPushButton, QVBoxLayout, QWidget

from desktop.dialogs import messages
from desktop.jobs import JobRunner
from desktop.session import Session
from desktop.settings import export_dir, set_export_dir

__all__ = ["ExportPanel", "save_png", "render_view", "export_scale", "write_results"]


#: a view is exported at least this many times its size on screen (text and lines stay sharp) ...
MIN_EXPORT_SCALE = 2.0
#: ... and larger where its images have more pixels than the screen shows, up to this longest side
MAX_EXPORT_SIDE = 8192


def export_scale(widget: QWidget) -> float:
    """How much larger than on screen *widget* is rendered so that every image it shows keeps at least
    one output pixel per image pixel (full resolution), within :data:`MAX_EXPORT_SIDE`."""
    import pyqtgraph as pg

    ratio = MIN_EXPORT_SCALE
    for view in widget.findChildren(pg.GraphicsView):
        if not view.isVisible():
            continue
        vt = view.viewportTransform()
        for item in view.items():
            if isinstance(item, pg.ImageItem) and item.image is not None and item.isVisible():
                t = item.deviceTransform(vt)
                screen_px = math.hypot(t.m11(), t.m12())  # screen pixels per image pixel
                if screen_px > 0:
                    ratio = max(ratio, 1.0 / screen_px)
    size = widget.size()  # not width(): the CT view's `width` is its window width in HU
    return max(1.0, min(ratio, MAX_EXPORT_SIDE / max(1, size.width(), size.height())))


def render_view(widget: QWidget, scale: float | None = None) -> QImage:
    """*widget* drawn at *scale* times its screen size (default :func:`export_scale`), not a screen grab."""
    scale = export_scale(widget) if scale is None else float(scale)
    size = widget.size()
    image = QImage(max(1, round(size.width() * scale)), max(1, round(size.height() * scale)),
                   QImage.Format.Format_ARGB32)
    image.fill(widget.palette().window().color())
    painter = QPainter(image)
    try:
        painter.scale(scale, scale)
        widget.render(painter, QPoint(), QRegion(), QWidget.RenderFlag.DrawChildren
                      | QWidget.RenderFlag.DrawWindowBackground)
    finally:
        painter.end()
    return image


def save_png(widget: QWidget, path: str | os.PathLike, *, scale: float | None = 1.0) -> Path:
    """Save *widget* as a PNG (atomically): as on screen (``scale=1``, the automation's window
    screenshots) or rendered larger (``scale=None``: full resolution, see :func:`export_scale`)."""
    from engine._shared.files import atomic_path

    path = Path(path)
    image = widget.grab().toImage() if scale == 1.0 else render_view(widget, scale)
    with atomic_path(path) as tmp:
        if not image.save(str(tmp), "PNG"):
            raise OSError(f"{path}: the image could not be written")
    return path


def write_results(results: dict, data, out_dir: str | os.PathLike) -> list[Path]:
    """Call each task's writer on its result; returns every file written.

    With several results each goes to a sub-folder named after its task, because the
    writers name files after the input (two ``<stem>.summary.json`` would collide).
    """
    from engine.tasks import TASKS

    written: list[Path] = []
    for task, entry in results.items():
        dest = Path(out_dir) / task if len(results) > 1 else Path(out_dir)
        written += [Path(p) for p in TASKS[task].writer()(entry.result, data, dest)]
    return written


class ExportPanel(QWidget):
    """``exported(list)`` is emitted with the paths written."""

    exported = Signal(list)

    def __init__(self, session: Session, snapshot_widget, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.snapshot_widget = snapshot_widget  # callable returning the widget to grab
        self.runner = JobRunner(self)
        self.runner.busyChanged.connect(self._update)
        self.png_btn = QPushButton("Save view as PNG…")
        self.png_btn.clicked.connect(self.ask_png)
        self.results_btn = QPushButton("Export results…")
        self.results_btn.setToolTip("Write every result with provenance: CSV/GeoJSON detections, denoised "
                                    "WFDB/EDF, anomaly map TIFF, JSON summary")
        self.results_btn.clicked.connect(self.ask_results)
        self.files = QListWidget()
        self.files.setToolTip("Files written in this session")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.png_btn)
        lay.addWidget(self.results_btn)
        lay.addWidget(QLabel("Written:"))
        lay.addWidget(self.files, 1)
        for sig in (session.dataChanged, session.resultAdded, session.resultsCleared):
            sig.connect(self._update)
        self._update()

    def _update(self, *_) -> None:
        self.png_btn.setEnabled(self.session.data is not None)
        self.results_btn.setEnabled(bool(self.session.results) and not self.runner.running)

    def _stem(self) -> str:
        from engine._shared.files import stem_of

        return stem_of(self.session.path) if self.session.path else "latent"

    def ask_png(self) -> None:
        if self.session.data is None:
            return
        default = str(Path(export_dir()) / f"{self._stem()}_view.png")
        path, _ = QFileDialog.getSaveFileName(self, "Save view as PNG", default, "PNG image (*.png)")
        if not path:
            return
        if not path.lower().endswith(".png"):
            path += ".png"
        try:
            save_png(self.snapshot_widget(), path, scale=None)  # full resolution, not screen-sized
        except OSError as exc:
            messages.show_error(self, "Could not save the image", str(exc))
            return
        set_export_dir(path)
        self._written([Path(path)])

    def ask_results(self) -> None:
        if not self.session.results:
            messages.show_info(self, "Nothing to export", "Run a task first; its results can then be exported.")
            return
        folder = QFileDialog.getExistingDirectory(self, "Export results to folder", export_dir())
        if folder:
            set_export_dir(folder + "/")
            self.export_to(folder)

    def export_to(self, folder: str | os.PathLike) -> None:
        """Write every result to *folder* in a worker thread."""
        results, data = dict(self.session.results), self.session.analysis_data  # what the results were made from
        self.results_btn.setEnabled(False)
        self.runner.start(lambda: write_results(results, data, folder), name="export",
                          on_result=self._written, on_error=self._failed)

    def _written(self, paths) -> None:
        for p in paths:
            self.files.addItem(str(p))
        self.files.scrollToBottom()
        self._update()
        self.exported.emit([str(p) for p in paths])

    def _failed(self, msg: str) -> None:
        self._update()
        messages.show_error(self, "Export failed", msg)
