"""Analysis panel: choose a task and a model, see the device, Run with progress and Cancel.

The task runs in a worker thread through its engine generator (``TASKS[task].runner()``);
the window never waits for it. A task whose module is not in this build is listed
as not available and explains itself instead of failing.
"""
from __future__ import annotations

import importlib.util
import logging
import time

from PySide6.QtCore import Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QVBoxLayout, QWidget)

from desktop.dialogs import messages
from desktop.jobs import JobRunner, JobThread
from desktop.session import ResultEntry, Session

logger = logging.getLogger("desktop")

__all__ = ["AnalysisPanel", "task_available", "bundled_models", "installed_models"]

LOAD_WEIGHTS = "__load__"


def task_available(task: str) -> bool:
    """Whether the engine module behind *task* is in this build (without importing it)."""
    from engine.tasks import TASKS

    try:
        return importlib.util.find_spec(TASKS[task].package) is not None
    except (ImportError, ValueError):
        return False


def bundled_models(task: str, modality: str) -> list[str]:
    """Names of bundled models for *task* on *modality*, the default one first."""
    from engine.tasks import TASKS

    default = TASKS[task].defaults.get(modality) if task in TASKS else None
    names: list[str] = []
    try:
        from engine.weights import list_models

        for m in list_models():
            tasks = m.get("tasks") or [m.get("task")]
            if m.get("modality") in (None, modality) and (task in tasks or m.get("name") == default):
                names.append(str(m["name"]))
    except Exception as exc:  # noqa: BLE001 - no manifest yet: offer the default name only
        logger.debug("bundled models unavailable: %s", exc)
    if default and default not in names:
        names.insert(0, default)
    elif default:
        names.remove(default)
        names.insert(0, default)
    return names


def user_model_labels() -> dict[str, str]:
    """``{name: "name (yours, from PARENT)"}`` for the models in the per-user folder."""
    try:
        from engine.weights import list_user

        return {str(m["name"]): f"{m['name']} (yours, from {(m.get('parent') or {}).get('name', '?')})"
                for m in list_user()}
    except Exception:  # noqa: BLE001 - no user folder: none
        return {}


def installed_models() -> set[str]:
    """Names of the bundled models present in this build."""
    try:
        from engine.weights import list_models

        return {str(m["name"]) for m in list_models()}
    except Exception:  # noqa: BLE001 - no manifest: nothing installed
        return set()


class AnalysisPanel(QWidget):
    """Signals: ``taskStarted(str)``, ``taskFinished(str)``, ``taskFailed(str, str)``, ``taskCancelled(str)``."""

    taskStarted = Signal(str)
    taskFinished = Signal(str)
    taskFailed = Signal(str, str)
    taskCancelled = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.runner = JobRunner(self)
        self.job: JobThread | None = None
        self.device_text = "…"
        self._build()
        session.dataChanged.connect(self._on_data)
        self._on_data()

    def _build(self) -> None:
        self.task_box = QComboBox()
        self.task_box.currentIndexChanged.connect(self._on_task)
        self.user_task: str | None = None  # the task last chosen by the user (or the command line)
        self.task_box.activated.connect(lambda i: setattr(self, "user_task", self.task_box.itemData(i)))
        self.model_box = QComboBox()
        for box in (self.task_box, self.model_box):  # long names must not widen the dock
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(14)
        # the task names are short and fixed: the longest one must stay readable in a narrow dock
        self.task_box.setMinimumContentsLength(len("Reconstruct + anomaly map"))
        self.model_box.setToolTip("Bundled model for this task, or a .safetensors weights file")
        self.model_box.activated.connect(self._on_model_activated)
        self.device_label = QLabel("detecting…")
        self.device_label.setWordWrap(True)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Task", self.task_box)
        form.addRow("Model", self.model_box)
        form.addRow("Device", self.device_label)
        self.run_btn = QPushButton("Run")
        self.run_btn.setToolTip("Run the task on the open data (Ctrl+R)")
        self.run_btn.clicked.connect(lambda: self.run_task())
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the running task at its next step (Esc)")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_btn)
        buttons.addWidget(self.cancel_btn)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.message = QLabel("Open a file to analyse it.")
        self.message.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.progress)
        lay.addWidget(self.message)
        lay.addStretch(1)

    # ---- state ------------------------------------------------------------------------
    def _on_data(self) -> None:
        from engine.tasks import TASKS

        if self.job is not None:  # its result would belong to the previous file
            self.job.cancel()

        modality = self.session.modality
        keep = self.user_task  # the user's task stays chosen for the next file when it applies to it
        self.task_box.blockSignals(True)
        self.task_box.clear()
        model: QStandardItemModel = self.task_box.model()
        first_ok = kept = -1
        for i, (name, spec) in enumerate(TASKS.items()):
            applies = modality in spec.modalities
            avail = task_available(name)
            label = spec.title if avail else f"{spec.title} (not available in this build)"
            self.task_box.addItem(label, name)
            item = model.item(i)
            item.setEnabled(applies and avail)
            item.setToolTip(("" if applies else f"applies to: {', '.join(spec.modalities)}"))
            if applies and avail and first_ok < 0:
                first_ok = i
            if applies and avail and name == keep:
                kept = i
        self.task_box.setCurrentIndex(kept if kept >= 0 else max(first_ok, 0))
        self.task_box.blockSignals(False)
        self._on_task()
        self.progress.setValue(0)
        if modality is None:
            self.message.setText("Open a file to analyse it.")
        elif first_ok < 0:
            self.message.setText(f"No task is available for {modality} data in this build.")
        else:
            self.message.setText("Ready.")

    @property
    def task(self) -> str | None:
        return self.task_box.currentData()

    def select_task(self, task: str) -> None:
        i = self.task_box.findData(task)
        if i >= 0:
            self.user_task = task
            self.task_box.setCurrentIndex(i)

    def _on_task(self) -> None:
        task, modality = self.task, self.session.modality
        self.model_box.clear()
        if task and modality:
            installed, mine = installed_models(), user_model_labels()
            for name in bundled_models(task, modality):
                label = mine.get(name, name) if name in installed else f"{name} (not installed)"
                self.model_box.addItem(label, name)
        self.model_box.addItem("Load weights file…", LOAD_WEIGHTS)
        self._update_buttons()

    def refresh_models(self) -> None:
        """Re-read the bundled and user models (after one was adapted or installed), keeping the choice."""
        current = self.model_box.currentData()
        self._on_task()
        i = self.model_box.findData(current)
        if i >= 0:
            self.model_box.setCurrentIndex(i)

    def _on_model_activated(self, i: int) -> None:
        if self.model_box.itemData(i) != LOAD_WEIGHTS:
            return
        from desktop.settings import last_dir

        path, _ = QFileDialog.getOpenFileName(self, "Load weights", last_dir(), "Safetensors weights (*.safetensors)")
        if path:
            self.model_box.insertItem(0, path.rsplit("/", 1)[-1], path)
            self.model_box.setCurrentIndex(0)
        else:
            self.model_box.setCurrentIndex(0)

    @property
    def model(self) -> str | None:
        data = self.model_box.currentData()
        return None if data in (None, LOAD_WEIGHTS) else str(data)

    def _update_buttons(self) -> None:
        busy = self.job is not None
        item = self.task_box.model().item(self.task_box.currentIndex()) if self.task_box.count() else None
        ok = bool(item is not None and item.isEnabled() and self.session.data is not None)
        self.run_btn.setEnabled(ok and not busy)
        self.cancel_btn.setEnabled(busy)
        # with nothing open there is no task to choose and no model to load (the combo used to
        # offer only "Load weights file…", which looked like the way to start)
        has_data = self.session.data is not None
        self.task_box.setEnabled(has_data and not busy)
        self.model_box.setEnabled(has_data and not busy)

    def set_device_text(self, text: str) -> None:
        self.device_text = text
        self.device_label.setText(text)

    # ---- running ----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.job is not None

    def run_task(self, task: str | None = None, model: str | None = None) -> bool:
        """Start *task* (default: the selected one) on the open data; False if it cannot start."""
        from engine.tasks import TASKS

        task = task or self.task
        data = self.session.analysis_data  # the recording through the montage the user reads it in
        source = self.session.data
        if self.job is not None or data is None or task is None:
            return False
        if task not in TASKS:
            messages.show_error(self, "Unknown task", f"Unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
            return False
        spec = TASKS[task]
        if self.session.modality not in spec.modalities:
            messages.show_error(self, "Task not applicable",
                                f"“{spec.title}” does not apply to {self.session.modality} data; "
                                f"it applies to: {', '.join(spec.modalities)}.")
            return False
        if task != self.task:
            self.select_task(task)
        if model:  # show the model that is used (a path from the command line, say)
            i = self.model_box.findData(model)
            if i < 0:
                self.model_box.insertItem(0, model.replace("\\", "/").rsplit("/", 1)[-1], model)
                i = 0
            self.model_box.setCurrentIndex(i)
        model = model or self.model
        started = time.perf_counter()
        options: dict = {}
        roi = getattr(self.session, "roi", None)
        if "roi" in spec.options and roi is not None:
            options["roi"] = tuple(roi)

        def make_job():
            return spec.runner()(data, model=model, device=None, **options)

        self.progress.setValue(0)
        where = " in the drawn region" if "roi" in options else ""
        self.message.setText(f"Running {spec.title.lower()}{where}…")
        self.session.acquire(source)
        self.job = self.runner.start(
            make_job, name=task,
            on_result=lambda r: self._finished(task, model, r, time.perf_counter() - started, data, source),
            on_error=lambda msg: (self.session.release(source), self._failed(task, msg)),
            on_cancel=lambda: (self.session.release(source), self._cancelled(task)),
            on_progress=self._progress)
        self._update_buttons()
        self.taskStarted.emit(task)
        return True

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.message.setText("Cancelling at the next step…")

    def _progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(1000 * max(0.0, min(1.0, fraction)))))
        if message:
            self.message.setText(message)

    def _finished(self, task, model, result, seconds, data, source=None) -> None:
        self.job = None
        self.session.release(data if source is None else source)
        self._update_buttons()
        if data is not self.session.analysis_data:  # another file or montage was chosen meanwhile
            return
        self.progress.setValue(1000)
        self.message.setText(f"Done in {seconds:.1f} s.")
        from desktop.presenters import UnknownResultError, presenter_for

        try:
            name = presenter_for(result).provenance(result)[0]
            self.session.add_result(ResultEntry(task=task, result=result, model=str(name or model or "default"),
                                                device=self.device_text, seconds=seconds))
        except UnknownResultError as exc:  # an engine task the desktop cannot show yet
            self._failed(task, str(exc))
            return
        self.taskFinished.emit(task)

    def _failed(self, task: str, msg: str) -> None:
        self.job = None
        self._update_buttons()
        self.progress.setValue(0)
        self.message.setText("Failed: " + msg)
        self.taskFailed.emit(task, msg)
        messages.show_error(self, "Analysis failed", msg)

    def _cancelled(self, task: str) -> None:
        self.job = None
        self._update_buttons()
        self.progress.setValue(0)
        self.message.setText("Cancelled.")
        self.taskCancelled.emit(task)

    def shutdown(self) -> None:
        self.runner.shutdown()
