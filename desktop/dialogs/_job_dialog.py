"""What the Batch and Adapt dialogs share: the input list's Add files / Add folder / Clear buttons
and the end of a worker-thread run (buttons re-enabled, status line, the dialog's done signal)."""
from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QPushButton


class JobDialogMixin:
    """For a QDialog (listed before it) with ``inputs`` (QListWidget), ``jobs`` (JobRunner), ``run_btn``,
    ``cancel_btn`` and ``status``; ``_done_signal`` names its ``Signal(str)`` for the outcome."""

    _done_signal = ""
    _files_title = "Add inputs"
    _folder_title = "Add a folder of inputs (a DICOM folder is one input)"

    def _input_buttons(self) -> tuple[QPushButton, QPushButton, QPushButton]:
        add_files, add_folder, clear = QPushButton("Add files…"), QPushButton("Add folder…"), QPushButton("Clear")
        add_files.clicked.connect(self._ask_files)
        add_folder.clicked.connect(self._ask_folder)
        clear.clicked.connect(self.inputs.clear)
        return add_files, add_folder, clear

    def _ask_files(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, self._files_title)
        self.inputs.addItems(paths)

    def _ask_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self._folder_title)
        if folder:
            self.inputs.addItem(folder)

    def _finish(self, text: str, outcome: str) -> None:
        self.run_btn.setEnabled(True)
        self.cancel_btn.setEnabled(False)
        self.status.setText(text)
        getattr(self, self._done_signal).emit(outcome)

    def _failed(self, message: str) -> None:
        self._finish(message, f"error: {message}")

    def closeEvent(self, ev) -> None:  # noqa: N802 - Qt override
        self.jobs.shutdown()
        super().closeEvent(ev)
