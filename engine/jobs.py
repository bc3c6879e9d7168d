"""Long work is a generator that yields :class:`Progress` and returns its result.

The desktop runs such a generator in a worker thread and stops it at the next
yield on Cancel; the CLI drives it here with an optional progress callback.

>>> def job():
...     for i in range(3):
...         yield Progress((i + 1) / 3, f"step {i + 1}")
...     return "done"
>>> run_job(job())
'done'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generator, TypeVar

from engine.errors import CancelledError

__all__ = ["Progress", "Job", "run_job", "rescaled"]


@dataclass(frozen=True)
class Progress:
    """What a long job reports at each step: a fraction in [0, 1] and a message."""

    fraction: float
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)


T = TypeVar("T")
Job = Generator[Progress, None, T]


def run_job(job: Job, on_progress: Callable[[Progress], None] | None = None,
            should_cancel: Callable[[], bool] | None = None) -> T:
    """Drive *job* to completion and return its result.

    ``should_cancel`` is asked after every yield; when it returns True the generator
    is closed (its ``finally`` blocks run) and :class:`CancelledError` is raised.
    """
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(progress)
        if should_cancel is not None and should_cancel():
            job.close()
            raise CancelledError("cancelled by the user")


def rescaled(job: Job, start: float = 0.0, stop: float = 1.0, *, prefix: str = "",
             info: dict[str, Any] | None = None) -> Job:
    """Drive the sub-generator *job* inside another job: its fractions map onto ``[start, stop]``.

    Use as ``result = yield from rescaled(inner, 0.0, 0.9)``. Messages get *prefix*; with
    *info* the step's own info is kept and updated with it, otherwise steps carry no info.
    Closing the outer generator closes *job* (its ``finally`` blocks run).

    >>> def inner():
    ...     yield Progress(0.5, "half")
    ...     return 42
    >>> steps = []
    >>> run_job(rescaled(inner(), 0.2, 0.6, prefix="a: "), steps.append)
    42
    >>> steps[0].fraction, steps[0].message
    (0.4, 'a: half')
    """
    try:
        while True:
            try:
                p = next(job)
            except StopIteration as done:
                return done.value
            yield Progress(start + (stop - start) * p.fraction, prefix + p.message,
                           {} if info is None else {**p.info, **info})
    finally:
        job.close()
