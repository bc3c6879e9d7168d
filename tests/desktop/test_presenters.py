"""The {ResultType: presenter} map: every result an engine task returns has a presenter, a result
without one is refused with a clear error, and the display decisions follow the type, not the name."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from desktop.presenters import PRESENTERS, Presenter, UnknownResultError, presenter_for, presenter_for_task
from desktop.session import ResultEntry, Session
from engine.data import Signal
from engine.results import AnomalyMap, BeatScores, Detections, Reconstruction, ReconstructionResult
from engine.tasks import TASKS

DESKTOP = Path(__file__).resolve().parents[2] / "desktop"


@dataclasses.dataclass(frozen=True)
class Tractography:
    """A result type no presenter knows (what a new engine task might return)."""

    fibres: int = 3


@pytest.mark.parametrize("task", list(TASKS))
def test_every_task_result_type_has_its_presenter(task):
    result_type = TASKS[task].result_type()
    presenter = PRESENTERS[result_type]
    assert isinstance(presenter, Presenter) and presenter.result_type is result_type
    assert presenter_for_task(task) is presenter


def test_the_map_holds_only_task_result_types():
    assert set(PRESENTERS) == {spec.result_type() for spec in TASKS.values()}


def test_an_unknown_result_type_is_a_clear_error():
    with pytest.raises(UnknownResultError, match=r"no presenter for Tractography results .*ReconstructionResult"):
        presenter_for(Tractography())
    with pytest.raises(UnknownResultError, match="Reconstruction results"):  # a part of a result is not one
        presenter_for(Reconstruction(np.zeros(3), "mV", "m", "0" * 64))


def test_a_subclass_is_shown_as_its_parent():
    @dataclasses.dataclass(frozen=True, eq=False)
    class TunedDetections(Detections):
        pass

    det = TunedDetections(np.zeros((0, 2)), np.zeros(0, np.float32), "m", "0" * 64)
    assert presenter_for(det) is PRESENTERS[Detections]


def test_the_session_refuses_a_result_it_cannot_show(qtbot):
    session = Session()
    added = []
    session.resultAdded.connect(added.append)
    with pytest.raises(UnknownResultError, match="Tractography"):
        session.add_result(ResultEntry(task="tractography", result=Tractography(), model="m"))
    assert session.results == {} and added == []


def test_a_task_result_without_presenter_fails_the_run_with_its_message(qtbot, window, errors):
    data = Signal.from_array(np.zeros((1, 1000)), sfreq=100.0, modality="ecg")
    window.session.set_data(data, "<array>")
    failed = []
    window.analysis.taskFailed.connect(lambda task, msg: failed.append((task, msg)))
    window.analysis._finished("tractography", "m", Tractography(), 0.1, data)
    assert failed and failed[0][0] == "tractography" and "no presenter for Tractography" in failed[0][1]
    assert errors and "no presenter for Tractography" in errors[-1]  # the user is told, in a dialog
    assert window.session.results == {}


def test_status_and_summary_come_from_the_presenter(qtbot, window):
    data = Signal.from_array(np.zeros((1, 3600)), sfreq=360.0, modality="ecg")
    window.session.set_data(data, "<array>")
    beats = BeatScores(np.array([100, 1000, 2000]), ("N", "V", "N"), np.array([0.1, 0.9, 0.2], np.float32),
                       "ecg-test", "b" * 64, threshold=0.5)
    window.session.add_result(ResultEntry(task="score-beats", result=beats, model="ecg-test", seconds=0.2))
    assert window.statusBar().currentMessage() == "Beats: 3; above threshold: 1 (threshold 0.5)"
    assert window.results.summary.text().splitlines() == [
        "Beats: 3; above threshold: 1 (threshold 0.5)", f"Model: ecg-test  sha256 {'b' * 12}…",
        "Time: 0.2 s on this machine"]


def test_framing_follows_the_result():
    ecg = Signal.from_array(np.zeros((1, 3600)), sfreq=360.0, modality="ecg")
    beats = BeatScores(np.array([0, 720, 1800]), ("N", "V", "N"), np.array([np.nan, 0.9, 0.2], np.float32),
                       "m", "0" * 64)
    assert presenter_for(beats).framing(beats, ecg).seconds == pytest.approx(2.0)  # NaN first beat skipped
    ano = np.zeros((1, 3600), np.float32)
    ano[0, 1080] = 3.0
    rec = ReconstructionResult(Reconstruction(ecg.data, "mV", "m", "0" * 64), AnomalyMap(ano, {}, "m", "0" * 64))
    f = presenter_for(rec).framing(rec, ecg)
    assert f.seconds == pytest.approx(3.0) and f.slice is None and not f.compare

    from engine.data import Image

    vol = np.zeros((9, 4, 4), np.float32)
    ct = Image(modality="ct", shape=vol.shape, spacing=(1.0, 1.0, 1.0), units="HU", path="<array>", array=vol)
    ano = np.zeros((5, 4, 4), np.float32)  # the map may have fewer planes than the series
    ano[3, 1, 1] = 2.0
    rec = ReconstructionResult(Reconstruction(vol, "HU", "m", "0" * 64), AnomalyMap(ano, {}, "m", "0" * 64))
    f = presenter_for(rec).framing(rec, ct)
    assert f.slice == 6 and f.compare


def test_selftest_check_refuses_a_result_of_another_task():
    from desktop.selftest import CheckFailed, check_result

    data = Signal.from_array(np.zeros((1, 100)), sfreq=100.0, modality="ecg")
    det = Detections(np.zeros((0, 2)), np.zeros(0, np.float32), "m", "0" * 64)
    with pytest.raises(CheckFailed, match="reconstruct returned a Detections, not the ReconstructionResult"):
        check_result("reconstruct", data, det, "m", {})


def test_no_desktop_module_chooses_a_display_by_task_name():
    """Display decisions dispatch on result types; a new task must not need an `if task == ...` here."""
    names = "|".join(re.escape(t) for t in TASKS)
    pattern = re.compile(rf"""(==|!=|\bin\b)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=|\bin\b)""")
    hits = [f"{p.relative_to(DESKTOP)}:{i}: {line.strip()}"
            for p in sorted(DESKTOP.rglob("*.py")) for i, line in enumerate(p.read_text().splitlines(), 1)
            if pattern.search(line)]
    assert hits == []


def test_panel_counts_are_the_engine_summary_numbers():
    """A beat scoring exactly the threshold is not 'above' it, in the panel as in the summary JSON."""
    from desktop.presenters import presenter_for
    from engine.tasks.score_beats import summarize

    data = Signal.from_array(np.zeros((1, 3600)), sfreq=360.0, modality="ecg")
    beats = BeatScores(np.array([100, 1000, 2000]), ("N", "V", "N"), np.array([0.5, 0.9, 0.2], np.float32),
                       "ecg-test", "b" * 64, threshold=0.5)
    line = presenter_for(beats).summary(beats, data)[0]
    assert summarize(beats, data)["n_above_threshold"] == 1
    assert line == "Beats: 3; above threshold: 1 (threshold 0.5)"
