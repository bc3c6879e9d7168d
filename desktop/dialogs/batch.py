"""File › Batch…: run one task over many files with :func:`engine.batch.batch_task` in a worker thread.

The dialog only collects the task, inputs, output folder and worker count, and shows a
status line per finished input; the engine generator does the work (on a local Dask
cluster) and Cancel closes it, which cancels the unfinished inputs and shuts the cluster down.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.dialogs._job_dialog import JobDialogMixin
from desktop.jobs import JobRunner

__all__ = ["BatchDialog", "open_batch_dialog", "relay_rows"]


def relay_rows(job, on_row):
    """Pass *job*'s progress on unchanged, calling ``on_row(row)`` for each finished input.

    Closing this generator closes *job* (Cancel reaches the batch's cleanup).
    """
    while True:
        try:
            p = next(job)
        except StopIteration as stop:
            return stop.value
        if "row" in p.info:
            on_row(p.info["row"])
        try:
            yield p
        except GeneratorExit:
            job.close()
            raise


class BatchDialog(JobDialogMixin, QDialog):
    """Choose a task, inputs and an output folder; run; watch per-file status; cancel.

    Signals
    -------
    rowFinished(dict)
        A finished input's manifest row (emitted from the worker thread, delivered queued).
    batchDone(str)
        ``"ok"``, ``"error: <message>"`` or ``"cancelled"`` when the run ends.
    """

    rowFinished = Signal(dict)
    batchDone = Signal(str)
    _done_signal = "batchDone"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        from engine.tasks import TASKS

        self.setWindowTitle("Batch")
        self.jobs = JobRunner(self)
        self.result = None
        self.task = QComboBox()
        for name, spec in TASKS.items():
            self.task.addItem(spec.title, name)
        self.inputs = QListWidget()
        add_files, add_folder, clear = self._input_buttons()
        self.out_dir = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._ask_out)
        self.workers = QSpinBox()
        self.workers.setRange(1, 64)
        self.resume = QCheckBox("Skip inputs already done (resume)")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Input", "Status", "Message"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.run_btn, self.cancel_btn, close = QPushButton("Run"), QPushButton("Cancel"), QPushButton("Close")
        self.cancel_btn.setEnabled(False)
        self.run_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.jobs.cancel_all)
        close.clicked.connect(self.close)
        self.rowFinished.connect(self._add_row)

        form = QFormLayout()
        form.addRow("Task", self.task)
        buttons = QHBoxLayout()
        for b in (add_files, add_folder, clear):
            buttons.addWidget(b)
        form.addRow("Inputs", self.inputs)
        form.addRow("", _wrap(buttons))
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir)
        out_row.addWidget(browse)
        form.addRow("Output folder", _wrap(out_row))
        form.addRow("Workers", self.workers)
        form.addRow("", self.resume)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        for b in (self.run_btn, self.cancel_btn, close):
            bottom.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(bottom)
        self.resize(760, 560)

    # ---------------------------------------------------------------- choosing
    def _ask_out(self) -> None:
        from desktop.settings import export_dir, set_export_dir

        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.out_dir.text() or export_dir())
        if folder:
            set_export_dir(folder + "/")
            self.out_dir.setText(folder)

    def set_inputs(self, paths) -> None:
        self.inputs.clear()
        self.inputs.addItems([str(p) for p in paths])

    # ---------------------------------------------------------------- running
    def start(self) -> None:
        """Run the batch with the dialog's choices (in a worker thread)."""
        from engine.batch import batch_task

        inputs = [self.inputs.item(i).text() for i in range(self.inputs.count())]
        if not inputs or not self.out_dir.text().strip():
            self.status.setText("Add inputs and choose an output folder first.")
            return
        task, out, workers, resume = (self.task.currentData(), self.out_dir.text().strip(),
                                      self.workers.value(), self.resume.isChecked())
        self.table.setRowCount(0)
        self.result = None
        self.run_btn.setEnabled(False)
        self.cancel_btn.setEnabled(True)

        def make_job():
            return relay_rows(batch_task(inputs, task=task, out_dir=out, workers=workers, resume=resume),
                              self.rowFinished.emit)

        self.jobs.start(make_job, name="batch", on_result=self._done, on_error=self._failed,
                        on_cancel=self._cancelled, on_progress=self._progress)

    def _progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(1000 * fraction)))
        self.progress.setMaximum(1000)
        self.status.setText(message)

    def _add_row(self, row: dict) -> None:
        from pathlib import Path

        r = self.table.rowCount()
        self.table.insertRow(r)
        for c, text in enumerate((Path(row["input"]).name, row["status"], row["message"])):
            self.table.setItem(r, c, QTableWidgetItem(text))

    def _done(self, result) -> None:
        self.result = result
        self._finish(f"{result.count('ok')} ok, {result.count('error')} error, {result.count('skipped')} "
                     f"skipped in {result.seconds:.1f} s; manifest: {result.manifest}", "ok")

    def _cancelled(self) -> None:
        self._finish("Cancelled: finished inputs are in the manifest; the others were not run.", "cancelled")


def _wrap(layout) -> QWidget:
    w = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    w.setLayout(layout)
    return w


def open_batch_dialog(parent: QWidget | None = None) -> BatchDialog:
    """Show the (non-modal) batch dialog and return it."""
    dlg = BatchDialog(parent)
    dlg.show()
    return dlg
