"""Worker threads: progress arrives, Cancel closes the engine generator at its next yield,
errors become messages (a missing task module is "not available", never a crash)."""
from __future__ import annotations

import time

import numpy as np
import pytest

from desktop.jobs import JobRunner, describe_error


def _training_job(closed: list, epochs: int = 500):
    """A real engine generator with many steps: training a tiny 1-D autoencoder."""
    import torch

    from engine.models import build_model
    from engine.training.loop import train

    torch.manual_seed(0)
    model = build_model("conv", spatial_dims=1, in_channels=1, channels=(4, 8))
    x = np.random.default_rng(0).standard_normal((64, 1, 64)).astype(np.float32)

    def job():
        try:
            return (yield from train(model, x, epochs=epochs, batch_size=16, patience=None, device="cpu"))
        finally:
            closed.append(True)

    return job()


def test_cancel_closes_the_engine_generator(qtbot):
    runner = JobRunner()
    closed: list = []
    progress: list = []
    results: list = []
    thread = runner.start(lambda: _training_job(closed), name="train", on_result=results.append,
                          on_progress=lambda f, m: progress.append(f))
    qtbot.waitUntil(lambda: len(progress) >= 2, timeout=60_000)
    t0 = time.perf_counter()
    with qtbot.waitSignal(thread.cancelled, timeout=30_000):
        thread.cancel()
    assert time.perf_counter() - t0 < 10
    qtbot.waitUntil(lambda: not runner.running, timeout=10_000)
    assert closed == [True], "the generator's finally block must run (closed at the next yield)"
    assert results == []
    assert max(progress) < 0.5, "cancelled long before the end"
    runner.shutdown()


def test_progress_and_result_arrive_in_order(qtbot):
    from engine.jobs import Progress

    def job():
        for i in range(5):
            yield Progress((i + 1) / 5, f"step {i + 1}")
        return "done"

    runner = JobRunner()
    seen, results = [], []
    runner.start(job, on_progress=lambda f, m: seen.append((f, m)), on_result=results.append)
    qtbot.waitUntil(lambda: results == ["done"], timeout=10_000)
    assert len(seen) == 5 and seen[-1] == (1.0, "step 5")  # every progress before the result
    assert not runner.running
    runner.shutdown()


def test_errors_become_messages(qtbot):
    from engine.errors import WeightsError

    runner = JobRunner()

    def missing():
        import engine.no_such_task_module  # noqa: F401

    messages = []
    runner.start(missing, on_error=messages.append)
    qtbot.waitUntil(lambda: bool(messages), timeout=10_000)
    assert "not available in this build" in messages[0]
    assert describe_error(WeightsError("x: bad")) == "x: bad"
    assert describe_error(ValueError("boom\nmore")).startswith("Unexpected ValueError: boom")
    runner.shutdown()


def test_missing_weights_show_an_error_and_keep_the_app(qtbot, window, data_dir, errors, monkeypatch):
    """A task whose model cannot be loaded reports it in a dialog; the window stays usable."""
    from desktop_helpers import open_and_wait

    open_and_wait(qtbot, window, data_dir / "histo" / "crchisto" / "img1" / "img1.png")
    assert window.analysis.run_task("detect-nuclei", "/nonexistent/model.safetensors")
    qtbot.waitUntil(lambda: not window.analysis.busy, timeout=120_000)
    assert errors and "model.safetensors" in errors[-1]
    assert "detect-nuclei" not in window.session.results
    assert window.analysis.run_btn.isEnabled()


@pytest.mark.parametrize("task,modality_file", [("score-beats", "eeg/eegmmidb/S001R03.edf")])
def test_inapplicable_task_is_refused(qtbot, window, data_dir, errors, task, modality_file):
    from desktop_helpers import open_and_wait

    open_and_wait(qtbot, window, data_dir / modality_file)
    i = window.analysis.task_box.findData(task)
    assert not window.analysis.task_box.model().item(i).isEnabled()
    assert not window.analysis.run_task(task)
    assert errors and "does not apply to eeg" in errors[-1]


def test_many_signal_emissions_do_not_exhaust_bool_references():
    """PySide6 6.12's SignalInstance.emit() drops a reference to True on every call; the
    desktop package neutralises that (see desktop._protect_bool_singletons)."""
    import gc
    import sys

    from PySide6.QtCore import QObject, Signal

    import desktop  # noqa: F401 - applies the protection

    class Emitter(QObject):
        ping = Signal()

    e = Emitter()
    for _ in range(20_000):
        e.ping.emit()
    gc.collect()
    if sys.version_info < (3, 12):
        assert sys.getrefcount(True) > 1 << 39
