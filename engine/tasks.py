"""The analysis tasks the GUI and the CLI offer, one explicit registry.

Each task is a generator function ``run(data, *, model=None, device=None, **options)``
that yields :class:`~engine.types.Progress` and returns one typed result, plus a
``write(result, data, out_dir) -> list[Path]`` that saves that result atomically
in the formats the CLI documents. Modules are imported only when a task is used.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from engine.errors import ModelError

__all__ = ["TaskSpec", "TASKS", "get_task", "default_model", "DEFAULT_MODELS"]


@dataclass(frozen=True)
class TaskSpec:
    name: str
    title: str
    modalities: tuple[str, ...]
    module: str
    run: str
    write: str

    def runner(self):
        return getattr(importlib.import_module(self.module), self.run)

    def writer(self):
        return getattr(importlib.import_module(self.module), self.write)


TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in (
        TaskSpec("reconstruct", "Reconstruct + anomaly map", ("ct", "histology", "ecg", "eeg"),
                 "engine.infer", "reconstruct_task", "write_reconstruction"),
        TaskSpec("detect-nuclei", "Detect nuclei", ("histology",),
                 "engine.nuclei", "detect_task", "write_detections"),
        TaskSpec("denoise", "Denoise signal", ("ecg", "eeg"),
                 "engine.denoise", "denoise_task", "write_denoised"),
        TaskSpec("score-beats", "Score beats", ("ecg",),
                 "engine.ecg", "score_beats_task", "write_beat_scores"),
        TaskSpec("score-segments", "Score segments", ("eeg",),
                 "engine.eeg", "score_segments_task", "write_segment_scores"),
    )
}

#: The bundled model each task uses by default, per modality.
DEFAULT_MODELS: dict[tuple[str, str], str] = {
    ("reconstruct", "ct"): "ct-dae",
    ("reconstruct", "histology"): "histo-cae",
    ("reconstruct", "ecg"): "ecg-dae",
    ("reconstruct", "eeg"): "eeg-cae",
    ("detect-nuclei", "histology"): "histo-nuclei",
    ("denoise", "ecg"): "ecg-dae",
    ("denoise", "eeg"): "eeg-cae",
    ("score-beats", "ecg"): "ecg-beats",
    ("score-segments", "eeg"): "eeg-seizure",
}


def get_task(name: str) -> TaskSpec:
    try:
        return TASKS[name]
    except KeyError:
        raise ModelError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}") from None


def default_model(task: str, modality: str) -> str:
    spec = get_task(task)
    if modality not in spec.modalities:
        raise ModelError(f"task {task!r} does not apply to {modality} data; "
                         f"it applies to: {', '.join(spec.modalities)}")
    return DEFAULT_MODELS[(task, modality)]
