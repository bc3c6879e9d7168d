"""Autoencoder families and task networks, one explicit registry by architecture name.

Every class takes keyword-only hyper-parameters validated in ``__init__`` and keeps
them in ``self.hparams`` (a JSON-able dict) so :func:`build_model` can rebuild it
from a weights file's metadata. Modules are imported only when a model is built.
"""
from __future__ import annotations

import importlib

from engine.errors import ModelError

__all__ = ["MODELS", "build_model", "model_class"]

#: architecture name -> (module, class). Add task networks here, one line each.
MODELS: dict[str, tuple[str, str]] = {
    "conv": ("engine.models.conv", "ConvAE"),
    "sparse": ("engine.models.sparse", "SparseAE"),
    "sparse-conv": ("engine.models.sparse", "SparseConvAE"),
    "stacked-sparse": ("engine.models.sparse", "StackedSparseAE"),
    "denoising": ("engine.models.denoising", "DenoisingAE"),
    "vae": ("engine.models.vae", "VariationalAE"),
    "contractive": ("engine.models.contractive", "ContractiveAE"),
    "signal-unet-dae": ("engine.models.signal_nets", "SignalUNetDAE"),
    "beat-cae": ("engine.models.signal_nets", "BeatAE"),
    "ssae-logreg": ("engine.models.signal_nets", "SegmentClassifier"),
    "nuclei-net": ("engine.models.nuclei_net", "NucleiNet"),
}


def model_class(architecture: str):
    """The class registered under *architecture*; unknown names list the valid ones."""
    try:
        module, cls = MODELS[architecture]
    except KeyError:
        raise ModelError(f"unknown architecture {architecture!r}; valid: {', '.join(sorted(MODELS))}") from None
    return getattr(importlib.import_module(module), cls)


def build_model(architecture: str, **hparams):
    """Instantiate *architecture* with keyword-only *hparams*.

    Bad hyper-parameters raise :class:`~engine.errors.ModelError`.
    """
    cls = model_class(architecture)
    try:
        return cls(**hparams)
    except TypeError as exc:
        raise ModelError(f"{architecture}: {exc}") from None
