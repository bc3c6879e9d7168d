"""The analysis tasks the GUI and the CLI offer: the one task registry.

Each task lives in its own sub-package (``engine/tasks/<task>/``) whose ``__init__``
exposes a generator function ``run(data, *, model=None, device=None, **options)``
that yields :class:`~engine.jobs.Progress` and returns one typed result (see
:mod:`engine.results`), plus a ``write(result, data, out_dir) -> list[Path]`` that
saves that result atomically. This module is pure data: it names each task's
runner, writer, result type and default model per modality, and imports a task's
package only when the task is used. Task packages ask it for their default model
(:func:`default_model`); it never imports them at import time, so there is no cycle.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from engine.errors import ModelError

__all__ = ["TaskSpec", "TASKS", "get_task", "default_model", "bundled_defaults", "task_for_result"]


@dataclass(frozen=True)
class TaskSpec:
    """One task: what it is called, what data it takes, where its code lives, what it returns."""

    name: str
    title: str
    #: modality -> the bundled model the task uses when none is given (the one source of truth)
    defaults: dict[str, str]
    package: str
    run: str
    write: str
    #: the class name in :mod:`engine.results` that ``run`` returns
    result: str
    #: ``summarize(result, data, *, outputs=()) -> dict``: the one summary the JSON file, CLI and GUI show
    summarize: str = "summarize"
    #: optional inputs the GUI may pass to ``run`` (e.g. ``"roi"``: a level-0 ``(x, y, w, h)`` region)
    options: tuple[str, ...] = ()

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.defaults)

    def runner(self):
        """The task's generator function."""
        return getattr(importlib.import_module(self.package), self.run)

    def writer(self):
        """The task's ``write(result, data, out_dir)`` function."""
        return getattr(importlib.import_module(self.package), self.write)

    def summarizer(self):
        """The task's ``summarize(result, data, *, outputs=()) -> dict`` function."""
        return getattr(importlib.import_module(self.package), self.summarize)

    def result_type(self) -> type:
        """The result class ``run`` returns (a frozen dataclass of :mod:`engine.results`)."""
        import engine.results

        return getattr(engine.results, self.result)


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("reconstruct", "Reconstruct + anomaly map",
                 {"ct": "ct-dae", "histology": "histo-cae", "ecg": "ecg-dae", "eeg": "eeg-cae"},
                 "engine.tasks.reconstruct", "reconstruct_task", "write_reconstruction", "ReconstructionResult"),
        TaskSpec("detect-nuclei", "Detect nuclei", {"histology": "histo-nuclei"},
                 "engine.tasks.nuclei", "detect_task", "write_detections", "Detections", options=("roi",)),
        TaskSpec("denoise", "Denoise signal", {"ecg": "ecg-dae", "eeg": "eeg-cae"},
                 "engine.tasks.denoise", "denoise_task", "write_denoised", "DenoisedSignal"),
        TaskSpec("score-beats", "Score beats", {"ecg": "ecg-beats"},
                 "engine.tasks.score_beats", "score_beats_task", "write_beat_scores", "BeatScores"),
        TaskSpec("score-segments", "Score segments", {"eeg": "eeg-seizure"},
                 "engine.tasks.score_segments", "score_segments_task", "write_segment_scores", "SegmentScores"),
    )
}


def get_task(name: str) -> TaskSpec:
    """The task registered under *name*; an unknown name lists the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise ModelError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None


def default_model(task: str, modality: str) -> str:
    """The bundled model *task* uses on *modality* data when the user names none."""
    spec = get_task(task)
    if modality not in spec.defaults:
        raise ModelError(f"task {task!r} does not apply to {modality} data; "
                         f"it applies to: {', '.join(spec.modalities)}")
    return spec.defaults[modality]


def bundled_defaults() -> dict[tuple[str, str], str]:
    """Every ``(task, modality) -> default model`` pair, for listings."""
    return {(t.name, m): name for t in TASKS.values() for m, name in t.defaults.items()}


def task_for_result(result) -> TaskSpec:
    """The task whose ``run`` returns objects of *result*'s type (dispatch on types, not names)."""
    for spec in TASKS.values():
        if type(result).__name__ == spec.result:
            return spec
    raise ModelError(f"no task returns {type(result).__name__} results")
