"""Model resolution shared by the task packages: a name, a file, an already loaded model, or None."""
from __future__ import annotations

from engine.tasks import default_model

__all__ = ["resolve_model"]


def resolve_model(model, task: str, modality: str):
    """A :class:`~engine.weights.LoadedModel` from a LoadedModel, bundled name, file path or None.

    None means the registry's default for *task* on *modality* data (:func:`engine.tasks.default_model`).
    """
    from engine import weights

    if isinstance(model, weights.LoadedModel):
        return model
    return weights.load(default_model(task, modality) if model is None else model)
