"""Results panel: overlay layer settings, a summary of each result and its table.

The summary and the table rows come from the result's presenter (:mod:`desktop.presenters`);
clicking a row centres the view on it.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox,
                               QHeaderView, QLabel, QSlider, QTableView, QVBoxLayout, QWidget)

from desktop.presenters import MAX_TABLE_ROWS, presenter_for
from desktop.session import ANOMALY_DISPLAY_MAX, Session
from desktop.settings import settings
from desktop.views.overlays import COLORMAPS

__all__ = ["ResultsPanel", "ArrayTableModel", "summarise", "MAX_TABLE_ROWS"]


class ArrayTableModel(QAbstractTableModel):
    """A read-only table over numpy columns (fast for hundreds of thousands of rows), sortable by any
    column; :meth:`source_row` maps a shown row back to the presenter's row."""

    def __init__(self, headers, columns, formats, parent=None):
        super().__init__(parent)
        self.headers, self.columns, self.formats = list(headers), [np.asarray(c) for c in columns], list(formats)
        self.n = len(self.columns[0]) if self.columns else 0
        self.order = np.arange(self.n)  # shown row -> presenter row

    def source_row(self, row: int) -> int:
        return int(self.order[row])

    def sort(self, column, order=Qt.SortOrder.AscendingOrder):
        """Sort by *column* (a negative column: the presenter's own order); stable, so ties keep it."""
        self.layoutAboutToBeChanged.emit()
        if 0 <= column < len(self.columns):
            keys = self.columns[column]
            idx = np.argsort(keys, kind="stable")
            self.order = idx[::-1] if order == Qt.SortOrder.DescendingOrder else idx
        else:
            self.order = np.arange(self.n)
        self.layoutChanged.emit()

    def rowCount(self, parent=QModelIndex()):  # noqa: N802 - Qt override
        return 0 if parent.isValid() else self.n

    def columnCount(self, parent=QModelIndex()):  # noqa: N802 - Qt override
        return 0 if parent.isValid() else len(self.headers)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and index.isValid():
            return self.formats[index.column()](self.columns[index.column()][self.order[index.row()]])
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headers[section]
        return None


def summarise(entry, data) -> str:
    """A few lines describing a result (its presenter's, then the model and the time), for the panel."""
    r = entry.result
    presenter = presenter_for(r)
    lines = presenter.summary(r, data)
    sha = presenter.provenance(r)[1]
    lines.append(f"Model: {entry.model}" + (f"  sha256 {sha[:12]}…" if sha else ""))
    lines.append(f"Time: {entry.seconds:.1f} s on {entry.device or 'this machine'}")
    return "\n".join(lines)


class ResultsPanel(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self._build()
        self._load_settings()
        session.resultAdded.connect(self._on_result)
        session.resultsCleared.connect(self._on_cleared)
        session.dataChanged.connect(self._on_cleared)
        session.dataChanged.connect(self._show_relevant_layers)
        self._show_relevant_layers()

    def _build(self) -> None:
        layers = QGroupBox("Layers")
        form = QFormLayout(layers)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.visible_box = QCheckBox("Anomaly heat-map")
        self.visible_box.setChecked(True)
        self.markers_box = QCheckBox("Nucleus markers")
        self.markers_box.setChecked(True)
        self.trace_box = QCheckBox("Denoised / reconstructed trace")
        self.trace_box.setChecked(True)
        self.cmap_box = QComboBox()
        self.cmap_box.addItems(COLORMAPS)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.threshold = QDoubleSpinBox()
        self.threshold.setRange(0.0, ANOMALY_DISPLAY_MAX)
        self.threshold.setSingleStep(0.05)
        self.threshold.setDecimals(2)
        self.threshold.setToolTip("Anomaly below this value (calibrated scale: 1 = high percentile of "
                                  "normal data) is not coloured")
        form.addRow(self.visible_box)
        form.addRow(self.markers_box)
        form.addRow(self.trace_box)
        form.addRow("Colormap", self.cmap_box)
        form.addRow("Opacity", self.opacity)
        form.addRow("Threshold", self.threshold)
        self.scale_label = QLabel(f"fixed scale 0 … {ANOMALY_DISPLAY_MAX:g}")
        form.addRow("", self.scale_label)
        for w, sig in ((self.visible_box, "toggled"), (self.markers_box, "toggled"), (self.trace_box, "toggled"),
                       (self.cmap_box, "currentTextChanged"), (self.opacity, "valueChanged"),
                       (self.threshold, "valueChanged")):
            getattr(w, sig).connect(self._push)

        self.result_box = QComboBox()
        self.result_box.currentIndexChanged.connect(self._show_selected)
        self.summary = QLabel("No results yet.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableView()
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        # compact rows: at 1366×768 the default row height left room for three rows only
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.setMinimumHeight(6 * (self.fontMetrics().height() + 6))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)  # click a header to sort (the presenter's order until then)
        self.table.clicked.connect(self._row_clicked)
        self.table.setToolTip("Click a row to centre the view on it (and highlight it); click a header to sort")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(layers)
        lay.addWidget(self.result_box)
        lay.addWidget(self.summary)
        lay.addWidget(self.table, 1)
        self.spacer = QWidget()  # takes the room of the table when a result has none
        lay.addWidget(self.spacer, 1)
        self.table.setVisible(False)
        self.result_box.setVisible(False)
        self.focus_points: np.ndarray | None = None  # (N, 2) rows -> (x, y) or (t, 0)

    def _show_relevant_layers(self) -> None:
        """Only the layer switches that apply to the open modality are shown."""
        m = self.session.modality
        self.markers_box.setVisible(m in (None, "histology"))
        self.trace_box.setVisible(m in (None, "ecg", "eeg"))

    def _load_settings(self) -> None:
        s = settings()
        ov = self.session.overlay
        try:
            ov.colormap = str(s.value("overlay/colormap", ov.colormap))
            ov.opacity = float(s.value("overlay/opacity", ov.opacity))
            ov.threshold = float(s.value("overlay/threshold", ov.threshold))
        except (TypeError, ValueError):
            pass
        for w in (self.cmap_box, self.opacity, self.threshold):
            w.blockSignals(True)
        self.cmap_box.setCurrentText(ov.colormap if ov.colormap in COLORMAPS else COLORMAPS[0])
        self.opacity.setValue(int(round(ov.opacity * 100)))
        self.threshold.setValue(ov.threshold)
        for w in (self.cmap_box, self.opacity, self.threshold):
            w.blockSignals(False)

    def _push(self, *_) -> None:
        self.session.set_overlay(visible=self.visible_box.isChecked(), show_markers=self.markers_box.isChecked(),
                                 show_reconstruction=self.trace_box.isChecked(),
                                 colormap=self.cmap_box.currentText(), opacity=self.opacity.value() / 100.0,
                                 threshold=float(self.threshold.value()))
        s = settings()
        s.setValue("overlay/colormap", self.cmap_box.currentText())
        s.setValue("overlay/opacity", self.opacity.value() / 100.0)
        s.setValue("overlay/threshold", float(self.threshold.value()))

    # ---- results ------------------------------------------------------------------
    def _on_cleared(self) -> None:
        self.result_box.clear()
        self.result_box.setVisible(False)  # an empty chooser looked like something to pick from
        self.summary.setText("No results yet." if self.session.data is not None else "")
        self.table.setModel(None)
        self.table.setVisible(False)
        self.spacer.setVisible(True)
        self.focus_points = None

    def _on_result(self, task: str) -> None:
        i = self.result_box.findData(task)
        if i < 0:
            from engine.tasks import TASKS

            self.result_box.addItem(TASKS[task].title if task in TASKS else task, task)
            i = self.result_box.count() - 1
            self.result_box.setVisible(True)
        if self.result_box.currentIndex() == i:
            self._show_selected()
        else:
            self.result_box.setCurrentIndex(i)

    def _show_selected(self, *_) -> None:
        task = self.result_box.currentData()
        entry = self.session.results.get(task) if task else None
        if entry is None:
            return
        data = self.session.data
        self.summary.setText(summarise(entry, data))
        table = presenter_for(entry.result).table(entry.result, data)
        model = None if table is None else ArrayTableModel(table.headers, table.columns, table.formats)
        self.focus_points = None if table is None else table.focus
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setModel(model)
        if model is not None:  # arrow keys move the selection: the view follows it as it does a click
            self.table.selectionModel().currentRowChanged.connect(lambda cur, _prev: self._row_clicked(cur))
        self.table.setVisible(model is not None)
        self.spacer.setVisible(model is None)

    def _row_clicked(self, index: QModelIndex) -> None:
        model = self.table.model()
        if self.focus_points is not None and index.isValid() and model is not None:
            x, y = self.focus_points[model.source_row(index.row())]
            self.session.focus(float(x), float(y))
