"""The task registry is the one source of defaults and dispatch; sub-generators keep their progress and cleanup."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import ModelError
from engine.jobs import Progress, rescaled, run_job
from engine.results import Provenance
from engine.tasks import TASKS, bundled_defaults, default_model, get_task, task_for_result


def test_every_task_resolves_its_parts_and_bundled_defaults():
    from engine._shared.resources import resources_dir

    manifest = json.loads((resources_dir() / "models" / "manifest.json").read_text())
    names = set(manifest)  # bundled model name -> file and sha256
    for spec in TASKS.values():
        assert callable(spec.runner()) and callable(spec.writer()) and callable(spec.summarizer())
        assert issubclass(spec.result_type(), Provenance)
        for modality, model in spec.defaults.items():
            assert model in names, (spec.name, modality, model)
    assert bundled_defaults()[("detect-nuclei", "histology")] == "histo-nuclei"


def test_default_model_errors_name_the_valid_choices():
    with pytest.raises(ModelError, match="applies to: ecg"):
        default_model("score-beats", "ct")
    with pytest.raises(ModelError, match="valid tasks: reconstruct"):
        get_task("segment-liver")


def test_dispatch_on_result_type():
    from engine.results import BeatScores

    r = BeatScores(sample=np.zeros(0, np.int64), symbol=(), score=np.zeros(0, np.float32), model="m", sha256="s",
                   params={"channel": 0})
    assert task_for_result(r).name == "score-beats"
    assert r.provenance() == {"model": "m", "sha256": "s", "parameters": {"channel": 0}}
    with pytest.raises(ModelError, match="no task returns"):
        task_for_result(object())


def test_rescaled_maps_fractions_keeps_result_and_closes_the_inner_job():
    closed = []

    def inner():
        try:
            for i in range(4):
                yield Progress(i / 4, f"step {i}", {"i": i})
            return "done"
        finally:
            closed.append(True)

    seen = []
    assert run_job(rescaled(inner(), 0.5, 1.0, prefix="b: ", info={"part": 2}), seen.append) == "done"
    assert [p.fraction for p in seen] == [0.5, 0.625, 0.75, 0.875]
    assert seen[1].message == "b: step 1" and seen[1].info == {"i": 1, "part": 2}
    closed.clear()
    outer = rescaled(inner(), 0.0, 0.5)
    next(outer)
    outer.close()  # cancelling the outer job runs the inner job's finally block
    assert closed == [True]
