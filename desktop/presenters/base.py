"""What a presenter is: how one type of engine result appears in the desktop.

A presenter is stateless and imports no Qt: it turns a result into the results panel's summary
lines and table, the status line, the layers each view draws (through the view's own ``show_*``
methods), the automation's framing for a screenshot, and the self-test's check. A method a
result has nothing for (a table for a denoised signal, markers on a CT) keeps the default here.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["Presenter", "ScoredPresenter", "ResultTable", "Framing", "MAX_TABLE_ROWS"]

#: The results table shows at most this many rows (the most abnormal first where rows are ranked).
MAX_TABLE_ROWS = 200_000


@dataclass(frozen=True, eq=False)
class ResultTable:
    """The rows of the results table: one numpy column and one formatter per header.

    ``focus`` has one ``(x, y)`` per row: image pixels, or ``(seconds, 0)`` for signals; clicking
    the row centres the view there.
    """

    headers: Sequence[str]
    columns: Sequence[np.ndarray]
    formats: Sequence[Callable[[Any], str]]
    focus: np.ndarray


@dataclass(frozen=True)
class Framing:
    """How an unattended run frames a result before its screenshot."""

    seconds: float | None = None  # centre the signal page on this time
    slice: int | None = None  # show this CT slice
    compare: bool = False  # tick Compare (original / reconstruction / anomaly side by side)


class Presenter(ABC):
    """How results of :attr:`result_type` appear; registered once in :mod:`desktop.presenters`."""

    #: the :mod:`engine.results` class this presenter shows
    result_type: type
    #: the bundled sample the self-test runs this result's task on: ``"recording"``, or ``"text"``
    #: for a headerless text segment (the Bonn EEG segments) when there is one
    selftest_sample: str = "recording"

    @abstractmethod
    def summary(self, result, data) -> list[str]:
        """The result's own lines of the results panel's summary (model and time follow them)."""

    def engine_summary(self, result, data) -> dict:
        """The task's own summary of *result* (:func:`engine.tasks.TaskSpec.summarizer`): the one the
        summary JSON and the CLI print, so the panel's figures are the same numbers."""
        from engine.tasks import task_for_result

        return task_for_result(result).summarizer()(result, data)

    def status(self, result, data) -> str:
        """The status-bar message when the result arrives."""
        return self.summary(result, data)[0]

    def provenance(self, result) -> tuple[str, str]:
        """``(model name, sha256 of its weights)`` the result was made with."""
        return str(getattr(result, "model", "") or ""), str(getattr(result, "sha256", "") or "")

    def table(self, result, data) -> ResultTable | None:
        """The rows of the results table, or None for a result without rows."""
        return None

    def draw_ct(self, view, entry) -> None:
        """Show ``entry.result`` on the CT slice view."""

    def draw_slide(self, view, entry) -> None:
        """Show ``entry.result`` on the histology view."""

    def draw_signal(self, view, entry) -> None:
        """Show ``entry.result`` on the ECG/EEG view."""

    def framing(self, result, data) -> Framing:
        """Where an unattended run looks before its screenshot (default: as the view is)."""
        return Framing()

    @abstractmethod
    def check(self, result, data, model: str, manifest: dict[str, dict]) -> str:
        """The self-test's check: a short description, or :class:`~desktop.selftest.checks.CheckFailed`."""


def threshold_note(threshold: float | None) -> str:
    """`` (threshold 0.5)`` or nothing, for the summaries of scored results."""
    return f" (threshold {threshold:.3g})" if threshold is not None else ""


def ranked(score: np.ndarray) -> np.ndarray:
    """Row order of a ranked table: the highest score first, at most :data:`MAX_TABLE_ROWS` rows."""
    return np.argsort(-np.asarray(score))[:MAX_TABLE_ROWS]


class ScoredPresenter(Presenter):
    """Scored events of a recording (beats, segments: ``score`` per event and a ``threshold``): a
    summary line with the threshold, a table ranked by score, and framing on the highest score."""

    @abstractmethod
    def count_line(self, result, data) -> str:
        """The summary's line without the threshold note: how many events, how many above it."""

    @abstractmethod
    def ranked_table(self, result, data, order: np.ndarray) -> ResultTable:
        """The table of the events *order* (indices, highest score first; at least one)."""

    @abstractmethod
    def event_sample(self, result, i: int) -> float:
        """The sample at the centre of event *i*."""

    def summary(self, result, data) -> list[str]:
        return [self.count_line(result, data) + threshold_note(result.threshold)]

    def table(self, result, data) -> ResultTable | None:
        if not len(result.score):
            return None
        return self.ranked_table(result, data, ranked(result.score))

    def framing(self, result, data) -> Framing:
        if not len(result.score):
            return Framing()
        # nanargmax: the first score may be NaN
        return Framing(seconds=self.event_sample(result, int(np.nanargmax(result.score))) / data.sfreq)
