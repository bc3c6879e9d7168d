"""The one map from engine result types to how they appear: ``{ResultType: presenter}``.

Views, panels, the status bar, the automation and the self-test ask :func:`presenter_for` how a
result appears, never compare task names (napari maps layer types to control widgets the same
way). A new task adds one module here with a :class:`~desktop.presenters.base.Presenter` subclass
and one line in :data:`PRESENTERS`; its result type comes from ``engine.tasks``.
"""
from __future__ import annotations

from desktop.presenters.base import MAX_TABLE_ROWS, Framing, Presenter, ResultTable
from desktop.presenters.beats import BeatScoresPresenter
from desktop.presenters.denoised import DenoisedSignalPresenter
from desktop.presenters.detections import DetectionsPresenter
from desktop.presenters.reconstruction import ReconstructionPresenter
from desktop.presenters.segments import SegmentScoresPresenter

__all__ = ["PRESENTERS", "presenter_for", "presenter_for_task", "UnknownResultError", "Presenter", "ResultTable",
           "Framing", "MAX_TABLE_ROWS"]

#: result type -> its presenter (one instance each; presenters hold no state)
PRESENTERS: dict[type, Presenter] = {p.result_type: p for p in (
    ReconstructionPresenter(),
    DetectionsPresenter(),
    DenoisedSignalPresenter(),
    BeatScoresPresenter(),
    SegmentScoresPresenter(),
)}


class UnknownResultError(LookupError):
    """A result whose type has no presenter: the desktop cannot show it."""


def _lookup(result_type: type) -> Presenter:
    for cls in result_type.__mro__:  # a subclass of a shown result is shown the same way
        if cls in PRESENTERS:
            return PRESENTERS[cls]
    raise UnknownResultError(
        f"the desktop has no presenter for {result_type.__name__} results (it shows "
        f"{', '.join(t.__name__ for t in PRESENTERS)}); register one in desktop/presenters/__init__.py")


def presenter_for(result) -> Presenter:
    """The presenter of *result*'s type; :class:`UnknownResultError` if there is none."""
    return _lookup(type(result))


def presenter_for_task(task: str) -> Presenter:
    """The presenter of the results the task *task* returns (``engine.tasks`` names its type)."""
    from engine.tasks import get_task

    return _lookup(get_task(task).result_type())
