"""Helpers shared by the desktop tests: open a file, run a task, and wait for them."""
from __future__ import annotations

OPEN_TIMEOUT_MS = 60_000
TASK_TIMEOUT_MS = 240_000


def open_and_wait(qtbot, win, path, **options):
    """Open *path* in *win* and wait until the reader is done; returns the session data."""
    opened: list[str] = []
    win.opener.opened.connect(opened.append)
    win.open_path(str(path), **options)
    qtbot.waitUntil(lambda: not win.opener.busy, timeout=OPEN_TIMEOUT_MS)
    qtbot.wait(10)  # deliver the queued result signal
    assert opened, f"{path} did not open"
    return win.session.data


def run_and_wait(qtbot, win, task, model=None):
    """Run *task* through the analysis panel and wait for its result (fails with its message)."""
    failures: list[str] = []
    win.analysis.taskFailed.connect(lambda t, msg: failures.append(msg))
    assert win.analysis.run_task(task, model), f"{task} could not start"
    qtbot.waitUntil(lambda: not win.analysis.busy, timeout=TASK_TIMEOUT_MS)
    assert not failures, failures
    assert task in win.session.results, f"{task} gave no result"
    return win.session.results[task]
