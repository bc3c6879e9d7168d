"""Analysis › Adapt model to my data…: fine-tune a bundled or user model in a worker thread.

The dialog collects the parent model, the user's files (and, for the nucleus detector, the
point-annotation files; for the seizure model, a labels CSV) and a few settings, then runs
:func:`engine.training.finetune.finetune` through :class:`desktop.jobs.JobRunner` with progress
and Cancel. The adapted model is written straight into the per-user model folder
(:func:`engine.weights.user_models_dir`), so it is selectable everywhere once ``modelAdapted``
fires; the before/after table and figure are shown in the dialog.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop.dialogs._job_dialog import JobDialogMixin
from desktop.jobs import JobRunner

__all__ = ["AdaptDialog", "open_adapt_dialog", "adaptable_models", "format_validation"]

_HINTS = {
    "reconstruct": "Add NORMAL cases only (no lesion): the model learns what normal looks like on your scanner/lab.",
    "denoise": "Add ECG records of this patient (a few minutes are enough); recorded NSTDB noise is mixed in.",
    "nuclei": "Add H&E images; put NAME.csv (x,y) or NAME.geojson (QuPath points) beside each, or add them below "
              "in the same order.",
    "beats": "Add ECG records of this patient; their normal beats (or every beat, unannotated) are learnt.",
    "seizure": "Add labelled segments and a labels CSV (file,label; 1 = seizure).",
}


def adaptable_models() -> list[tuple[str, str]]:
    """``[(name, kind)]`` of every bundled and user model that can be fine-tuned."""
    from engine.training.finetune import model_kind
    from engine.weights import list_models, model_path, read_metadata

    out = []
    for row in list_models():
        try:
            out.append((row["name"], model_kind(read_metadata(model_path(row["name"])))))
        except Exception:  # noqa: BLE001 - not adaptable (e.g. ecg-beats) or damaged: not offered
            continue
    return out


def format_validation(validation: dict) -> str:
    """A small HTML table of the numeric before/after values."""
    before, after = validation.get("before", {}), validation.get("after", {})
    rows = [f"<tr><td>{k}</td><td align=right>{before[k]:.4g}</td><td align=right>{after[k]:.4g}</td></tr>"
            for k in before if isinstance(before[k], (int, float)) and isinstance(after.get(k), (int, float))]
    return (f"<p>Held out: {validation.get('held_out', '')}</p><table cellspacing=6>"
            "<tr><th align=left>measure</th><th>before</th><th>after</th></tr>" + "".join(rows) + "</table>")


class AdaptDialog(JobDialogMixin, QDialog):
    """Signals: ``modelAdapted(str)`` (the new model's name), ``adaptDone(str)`` ("ok", "error: …", "cancelled")."""

    modelAdapted = Signal(str)
    adaptDone = Signal(str)
    _done_signal = "adaptDone"
    _files_title = "Add your files"
    _folder_title = "Add a folder (a DICOM folder is one input)"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Adapt model to my data")
        self.jobs = JobRunner(self)
        self.result = None
        self.model = QComboBox()
        for name, kind in adaptable_models():
            self.model.addItem(name, (name, kind))
        self.model.currentIndexChanged.connect(self._on_model)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.inputs = QListWidget()
        self.annotations = QListWidget()
        add_files, add_folder, clear = self._input_buttons()
        add_ann, clear_ann = QPushButton("Add annotation files…"), QPushButton("Clear")
        add_ann.clicked.connect(self._ask_annotations)
        clear_ann.clicked.connect(self.annotations.clear)
        self.labels = QLineEdit()
        labels_btn = QPushButton("Browse…")
        labels_btn.clicked.connect(self._ask_labels)
        self.steps = QSpinBox()
        self.steps.setRange(0, 100000)
        self.steps.setSpecialValueText("default")
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(0.0, 0.1)
        self.lr.setSingleStep(1e-4)
        self.lr.setSpecialValueText("default")
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.0, 0.9)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(0.2)
        self.freeze = QCheckBox("Keep the encoder fixed (train the decoder/head only)")
        self.mpp = QDoubleSpinBox()
        self.mpp.setDecimals(3)
        self.mpp.setRange(0.0, 10.0)
        self.mpp.setSpecialValueText("from the file")
        self.name = QLineEdit()
        self.device = QComboBox()
        self.device.addItem("automatic", None)
        self.device.addItem("CPU", "cpu")
        self.device.addItem("GPU (CUDA)", "cuda")
        self.progress = QProgressBar()
        self.progress.setMaximum(1000)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.table = QLabel("")
        self.table.setTextFormat(Qt.TextFormat.RichText)
        self.figure = QLabel("")
        self.figure.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.run_btn, self.cancel_btn, close = QPushButton("Adapt"), QPushButton("Cancel"), QPushButton("Close")
        self.cancel_btn.setEnabled(False)
        self.run_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.jobs.cancel_all)
        close.clicked.connect(self.close)

        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow("", self.hint)
        form.addRow("Your data", self.inputs)
        form.addRow("", _row(add_files, add_folder, clear))
        self.ann_row = _row(self.annotations, _col(add_ann, clear_ann))
        form.addRow("Annotations", self.ann_row)
        self.labels_row = _row(self.labels, labels_btn)
        form.addRow("Labels CSV", self.labels_row)
        form.addRow("Steps", self.steps)
        form.addRow("Learning rate", self.lr)
        form.addRow("Held-out fraction", self.val_fraction)
        form.addRow("", self.freeze)
        form.addRow("Pixel size (µm)", self.mpp)
        form.addRow("New model name", self.name)
        form.addRow("Device", self.device)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        layout.addWidget(self.figure, 1)
        layout.addLayout(_hbox(None, self.run_btn, self.cancel_btn, close))
        self.resize(820, 760)
        self._on_model()

    # ---------------------------------------------------------------- choosing
    @property
    def kind(self) -> str | None:
        d = self.model.currentData()
        return d[1] if d else None

    def _on_model(self) -> None:
        d = self.model.currentData()
        kind = d[1] if d else None
        self.hint.setText(_HINTS.get(kind, ""))
        self.ann_row.setVisible(kind == "nuclei")
        self.labels_row.setVisible(kind == "seizure")
        if d:
            self.name.setPlaceholderText(f"{d[0]}-adapted")

    def select_model(self, name: str) -> None:
        for i in range(self.model.count()):
            if self.model.itemData(i)[0] == name:
                self.model.setCurrentIndex(i)
                return

    def set_inputs(self, paths, annotations=()) -> None:
        self.inputs.clear()
        self.inputs.addItems([str(p) for p in paths])
        self.annotations.clear()
        self.annotations.addItems([str(p) for p in annotations])

    def _ask_annotations(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Point annotations, one per image",
                                                filter="Points (*.csv *.geojson *.json)")
        self.annotations.addItems(paths)

    def _ask_labels(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Labels CSV (file,label)", filter="CSV (*.csv)")
        if path:
            self.labels.setText(path)

    # ---------------------------------------------------------------- running
    def options(self) -> dict:
        """The keyword arguments for :func:`engine.training.finetune.finetune` from the dialog."""
        from engine.weights import user_models_dir

        d = self.model.currentData()
        anns = [self.annotations.item(i).text() for i in range(self.annotations.count())]
        return dict(model=d[0] if d else None, data=[self.inputs.item(i).text() for i in range(self.inputs.count())],
                    out_dir=str(user_models_dir()), name=self.name.text().strip() or None,
                    steps=self.steps.value() or None, lr=self.lr.value() or None,
                    val_fraction=self.val_fraction.value(), freeze="encoder" if self.freeze.isChecked() else "none",
                    device=self.device.currentData(), mpp=self.mpp.value() or None,
                    annotations=anns if (self.kind == "nuclei" and anns) else None,
                    labels=self.labels.text().strip() or None if self.kind == "seizure" else None)

    def start(self) -> None:
        """Run the fine-tuning with the dialog's choices (in a worker thread)."""
        from engine.training.finetune import finetune

        opts = self.options()
        if not opts["model"] or not opts["data"]:
            self.status.setText("Choose a model and add your data first.")
            return
        self.result = None
        self.table.setText("")
        self.figure.clear()
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)
        model, data = opts.pop("model"), opts.pop("data")
        opts["command"] = "desktop: Analysis > Adapt model to my data"

        def make_job():
            return finetune(model, data, **opts)

        self.jobs.start(make_job, name="adapt", on_result=self._done, on_error=self._failed,
                        on_cancel=self._cancelled, on_progress=self._progress)

    def _progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(1000 * fraction)))
        self.status.setText(message)

    def _done(self, result: dict) -> None:
        self.result = result
        self.progress.setValue(1000)
        self.table.setText(format_validation(result["validation"]))
        if result.get("figures"):
            pix = QPixmap(result["figures"][0])
            if not pix.isNull():
                self.figure.setPixmap(pix.scaledToWidth(min(780, pix.width()),
                                                        Qt.TransformationMode.SmoothTransformation))
        self._finish(f"Saved {result['name']} ({Path(result['model']).parent}) in {result['seconds']:.0f} s; "
                     "it is now selectable in the Analysis panel.", "ok")
        self.modelAdapted.emit(result["name"])

    def _cancelled(self) -> None:
        self._finish("Cancelled: nothing was saved.", "cancelled")


def _hbox(*widgets) -> QHBoxLayout:
    lay = QHBoxLayout()
    for w in widgets:
        if w is None:
            lay.addStretch(1)
        else:
            lay.addWidget(w)
    return lay


def _row(*widgets) -> QWidget:
    w = QWidget()
    lay = _hbox(*widgets)
    lay.setContentsMargins(0, 0, 0, 0)
    w.setLayout(lay)
    return w


def _col(*widgets) -> QWidget:
    w = QWidget()
    lay = QVBoxLayout()
    lay.setContentsMargins(0, 0, 0, 0)
    for x in widgets:
        lay.addWidget(x)
    w.setLayout(lay)
    return w


def open_adapt_dialog(parent: QWidget | None = None, on_adapted=None) -> AdaptDialog:
    """Show the (non-modal) dialog; ``on_adapted(name)`` runs when a model was saved."""
    dlg = AdaptDialog(parent)
    if on_adapted is not None:
        dlg.modelAdapted.connect(on_adapted)
    dlg.show()
    return dlg
