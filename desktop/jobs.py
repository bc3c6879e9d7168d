"""Run engine generators in worker threads: progress, cancel, errors.

A job is a zero-argument callable that returns an engine generator (yielding
:class:`engine.jobs.Progress` and returning a result) or, for short work such as
reading a file, a plain value. :class:`JobThread` drives it with
:func:`engine.jobs.run_job`; Cancel closes the generator at its next yield.
No Qt object ever enters the engine.
"""
from __future__ import annotations

import inspect
import logging
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal

logger = logging.getLogger("desktop")

__all__ = ["JobThread", "JobRunner", "describe_error"]


def describe_error(exc: BaseException) -> str:
    """One or two lines a user can act on, for any exception a job raised."""
    from engine.errors import LatentError

    if isinstance(exc, LatentError):
        return str(exc)
    if isinstance(exc, (ImportError, AttributeError)):
        return f"This feature is not available in this build ({type(exc).__name__}: {exc})."
    if isinstance(exc, MemoryError):
        return "Not enough memory for this job. Close other programs or use a smaller input."
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"Unexpected {type(exc).__name__}{': ' + msg if msg else ''} (details in the log)."


class JobThread(QThread):
    """One job in its own thread.

    Signals
    -------
    progress(float, str)
        Fraction in [0, 1] and a message, after every yield.
    succeeded(object)
        The job's result.
    failed(str)
        A message for the user (see :func:`describe_error`).
    cancelled()
        The job was stopped by :meth:`cancel`.
    """

    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, make_job: Callable[[], Any], name: str = "job", parent: QObject | None = None):
        super().__init__(parent)
        self._make_job = make_job
        self.name = name
        self._cancel = False
        self.error: BaseException | None = None

    def cancel(self) -> None:
        """Ask the job to stop at its next yield."""
        self._cancel = True

    @property
    def cancel_requested(self) -> bool:
        return self._cancel

    def run(self) -> None:  # runs in the worker thread
        from engine._shared.memory import apply_malloc_policy
        from engine._shared.threads import apply_thread_policy
        from engine.errors import CancelledError
        from engine.jobs import run_job

        try:
            apply_thread_policy()  # one intra-op thread on small machines (idle OpenMP threads spin)
            apply_malloc_policy()  # once per process: buffers reused instead of page-faulted afresh
            job = self._make_job()
            if inspect.isgenerator(job):
                result = run_job(job, on_progress=self._on_progress, should_cancel=lambda: self._cancel)
            else:
                result = job
            if self._cancel:
                raise CancelledError("cancelled by the user")
        except CancelledError:
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure becomes a message, never a crash
            self.error = exc
            logger.debug("job %s failed:\n%s", self.name, traceback.format_exc())
            from engine.errors import LatentError

            if not isinstance(exc, LatentError):
                logger.error("job %s failed:\n%s", self.name, traceback.format_exc())
            self.failed.emit(describe_error(exc))
        else:
            self.succeeded.emit(result)

    def _on_progress(self, p) -> None:
        self.progress.emit(float(p.fraction), str(p.message))


class JobRunner(QObject):
    """Starts jobs, keeps them alive while they run, and reports their state.

    ``busyChanged(bool)`` says whether any job of this runner is running.
    """

    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._threads: list[JobThread] = []  # alive (until QThread.finished)
        self._active: list[JobThread] = []  # not yet reported (result, error or cancel)

    def start(self, make_job: Callable[[], Any], *, name: str = "job",
              on_result: Callable[[Any], None] | None = None,
              on_error: Callable[[str], None] | None = None,
              on_cancel: Callable[[], None] | None = None,
              on_progress: Callable[[float, str], None] | None = None) -> JobThread:
        thread = JobThread(make_job, name, self)
        # One slot per outcome: the job stops counting as running, then the callback runs,
        # with nothing in between (several queued slots could interleave with other events).

        def outcome(callback):
            def slot(*args, t=thread):
                self._reported(t)
                if callback is not None:
                    callback(*args)
            return slot

        thread.succeeded.connect(outcome(on_result))
        thread.failed.connect(outcome(on_error))
        thread.cancelled.connect(outcome(on_cancel))
        if on_progress is not None:
            thread.progress.connect(on_progress)
        thread.finished.connect(lambda t=thread: self._done(t))
        self._threads.append(thread)
        self._active.append(thread)
        thread.start()
        if len(self._active) == 1:
            self.busyChanged.emit(True)
        return thread

    @property
    def running(self) -> list[JobThread]:
        """Jobs whose outcome has not been reported yet."""
        return list(self._active)

    def cancel_all(self) -> None:
        for t in self._active:
            t.cancel()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel every job and wait for its thread (called when the window closes)."""
        for t in list(self._threads):
            t.cancel()
        for t in list(self._threads):
            t.wait(timeout_ms)

    def _reported(self, thread: JobThread) -> None:
        if thread in self._active:
            self._active.remove(thread)
            if not self._active:
                self.busyChanged.emit(False)

    def _done(self, thread: JobThread) -> None:
        self._reported(thread)
        if thread in self._threads:
            # No deleteLater(): a caller may still hold the thread; Python frees it with its wrapper.
            self._threads.remove(thread)
