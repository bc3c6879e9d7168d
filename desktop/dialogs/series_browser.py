"""DICOM series browser: one thumbnail per series when a folder holds several."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout

__all__ = ["SeriesBrowser", "list_series_with_thumbnails", "thumbnail_pixmap", "is_image_series",
           "MAX_THUMBNAILS"]

#: DICOM modalities that carry no viewable image (segmentations, structures, reports, ...).
NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "RTPLAN", "SR", "PR", "KO", "REG", "RWV", "DOC", "FID"}


def is_image_series(series) -> bool:
    """Whether a SeriesInfo can be opened as an image (has pixels, not a SEG/RTSTRUCT/SR...)."""
    return bool(series.rows) and (series.modality or "").upper() not in NON_IMAGE_MODALITIES

MAX_THUMBNAILS = 48
THUMB = 128


def list_series_with_thumbnails(path: str) -> list[tuple]:
    """Worker-thread helper: every series in *path* and a thumbnail array (or None) for each."""
    from engine.io.dicom import list_series, read_series_thumbnail

    out = []
    for i, s in enumerate(list_series(path)):
        thumb = None
        if i < MAX_THUMBNAILS and is_image_series(s):
            try:
                thumb = read_series_thumbnail(s, THUMB)
            except Exception:  # noqa: BLE001 - a series without pixels simply has no thumbnail
                thumb = None
        out.append((s, thumb))
    return out


def thumbnail_pixmap(arr: np.ndarray | None, modality: str = "CT") -> QPixmap:
    """A grey pixmap of a thumbnail array (CT shown with a soft-tissue window)."""
    if arr is None:
        pix = QPixmap(THUMB, THUMB)
        pix.fill(Qt.GlobalColor.darkGray)
        return pix
    a = np.asarray(arr, np.float32)
    if modality == "CT":
        lo, hi = -160.0, 240.0
    else:
        lo, hi = np.nanpercentile(a, [1, 99]) if a.size else (0.0, 1.0)
    g = np.clip((a - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
    g = np.ascontiguousarray(g)
    img = QImage(g.data, g.shape[1], g.shape[0], g.strides[0], QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(img)


class SeriesBrowser(QDialog):
    """Pick one series; :attr:`selected_uid` holds the choice after ``exec()``."""

    def __init__(self, path: str, series: list[tuple], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Choose a DICOM series")
        self.selected_uid: str | None = None
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setGridSize(QSize(THUMB + 70, THUMB + 64))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setWordWrap(True)
        enabled = [i for i, (s, _) in enumerate(series) if is_image_series(s)]
        best = max(enabled, key=lambda i: (series[i][0].modality == "CT", series[i][0].n_instances), default=0)
        for i, (s, thumb) in enumerate(series):
            size = f"{s.rows}×{s.cols}" if is_image_series(s) else "not an image"
            text = f"{s.modality} {s.description or '(no description)'}\n{s.n_instances} files, {size}"
            item = QListWidgetItem(QIcon(thumbnail_pixmap(thumb, s.modality)), text)
            item.setData(Qt.ItemDataRole.UserRole, s.uid)
            item.setToolTip(f"SeriesInstanceUID {s.uid}")
            if not is_image_series(s):
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.list.addItem(item)
        self.list.setCurrentRow(best)
        self.list.itemDoubleClicked.connect(lambda *_: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"{path} holds {len(series)} series. Choose the one to open:"))
        lay.addWidget(self.list, 1)
        lay.addWidget(buttons)
        self.resize(720, 460)

    def accept(self) -> None:
        item = self.list.currentItem()
        if item is not None and item.flags() & Qt.ItemFlag.ItemIsEnabled:
            self.selected_uid = item.data(Qt.ItemDataRole.UserRole)
            super().accept()
