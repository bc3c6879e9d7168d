"""Typed results of the analysis tasks, one frozen dataclass per kind of result.

Every result carries its provenance the same way (``model``: name and sha256 of
the weights that made it, ``parameters``: the options it was run with) and a
``summary`` dict that the CLI prints, the JSON writer saves and the GUI shows.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.data import Signal

__all__ = ["Provenance", "Reconstruction", "AnomalyMap", "Detections", "DenoisedSignal", "BeatScores",
           "SegmentScores", "ReconstructionResult"]


class Provenance:
    """What every task result says about where it came from, in one shape.

    Results have ``model`` (name), ``sha256`` (of the weights file) and ``params`` (the
    options the task ran with); :meth:`provenance` gives them as one dict.
    """

    def provenance(self) -> dict[str, Any]:
        return {"model": self.model, "sha256": self.sha256, "parameters": dict(self.params)}


@dataclass(frozen=True, eq=False)
class Reconstruction:
    """A model's reconstruction of an input, in the input's shape and units."""

    array: np.ndarray
    units: str
    model: str
    sha256: str


@dataclass(frozen=True, eq=False)
class AnomalyMap:
    """Per-pixel (or per-sample) anomaly on the model's calibrated fixed scale.

    ``array`` is dimensionless: 0 = typical of normal validation data, 1 = the
    calibrated high percentile of normal data (``scale`` says which). Values above 1
    are more anomalous than almost all normal data.
    """

    array: np.ndarray
    scale: dict[str, float]
    model: str
    sha256: str
    mask: np.ndarray | None = None
    stats: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class Detections(Provenance):
    """Nucleus detections in full-resolution input pixels (x = column, y = row, 0-based)."""

    xy: np.ndarray  # (N, 2) float64, columns x, y
    score: np.ndarray  # (N,) float32 in [0, 1]
    model: str
    sha256: str
    mpp: float | None = None
    area_px: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    #: Per nucleus (optional): region area in input pixels and in µm² (None where the scale is
    #: unknown), and the outline as an ``(K, 2)`` x, y polygon in input pixels.
    nucleus_area_px: np.ndarray | None = None
    nucleus_area_um2: np.ndarray | None = None
    outlines: tuple | None = None

    @property
    def count(self) -> int:
        return int(self.xy.shape[0])


@dataclass(frozen=True, eq=False)
class DenoisedSignal(Provenance):
    """A denoised recording with the same channels, rate, length and units as its input."""

    signal: Signal
    model: str
    sha256: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class BeatScores(Provenance):
    """Per-beat anomaly scores (higher = more abnormal)."""

    sample: np.ndarray  # (N,) int64 R-peak sample index
    symbol: tuple[str, ...]  # annotation symbol, "" for detected beats
    score: np.ndarray  # (N,) float32
    model: str
    sha256: str
    threshold: float | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class SegmentScores(Provenance):
    """Per-segment or per-window scores (higher = more seizure-like / anomalous)."""

    start: np.ndarray  # (N,) sample index of each segment start
    stop: np.ndarray  # (N,) sample index (exclusive)
    score: np.ndarray  # (N,) float32
    label: np.ndarray  # (N,) int 0/1 at the model's threshold
    model: str
    sha256: str
    threshold: float | None = None
    names: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class ReconstructionResult(Provenance):
    """What the reconstruct task returns: the reconstruction, its anomaly map and a provenance summary."""

    reconstruction: Reconstruction
    anomaly: AnomalyMap
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return self.anomaly.model

    @property
    def sha256(self) -> str:
        return self.anomaly.sha256

    @property
    def params(self) -> dict[str, Any]:
        return self.summary.get("parameters", {})
