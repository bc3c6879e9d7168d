"""What a model expects of its input: the weights-metadata schema and the functions that apply it.

Inference (:mod:`engine.tasks.reconstruct`) is generic: everything modality-specific comes from the
metadata stored with the weights (embedded in the safetensors header and in the JSON
sidecar, see :mod:`engine.weights`). A weights file for the ``reconstruct``/``denoise``
tasks carries, besides ``architecture`` and ``hparams``:

``modality``
    ``"ct"``, ``"histology"``, ``"ecg"`` or ``"eeg"``; checked against the data.
``preprocessing``
    How raw units become model units (and back), one of:

    - CT: ``{"kind": "ct_window", "hu_min": -1000, "hu_max": 500, "target_spacing_mm": 1.4}``.
      HU are clipped to ``[hu_min, hu_max]`` and scaled to [0, 1]; slices are resampled to
      ``target_spacing_mm`` in-plane (``null``: native) and results mapped back.
    - Histology: ``{"kind": "rgb", "scale": 255.0, "expected_mpp": 0.5}``. uint8 RGB / scale
      -> [0, 1]; ``expected_mpp`` is informative (tiles run at native resolution).
    - Signals: ``{"kind": "signal", "units": "mV" | "uV", "scale": 1.0, "baseline": "mean" |
      "median" | "none"}``. Per window and channel the baseline (mean/median) is removed,
      the rest divided by ``scale``; the output is multiplied back and the baseline re-added.
``input``
    - Images: ``{"channels": 1 | 3, "tile": 256, "overlap": 64, "size_multiple": 8}`` —
      tile side in model pixels (multiple of ``size_multiple``), overlap between tiles.
    - Signals: ``{"channels": 1, "channel_mode": "per_channel" | "multi_channel",
      "window": 512, "overlap": 256, "sfreq": 160.0, "size_multiple": 8}`` — window in
      samples at ``sfreq`` Hz (input at another rate is resampled with
      ``scipy.signal.resample_poly`` and mapped back); ``per_channel`` runs every channel
      through a 1-channel model, ``multi_channel`` needs exactly ``channels`` channels.
``anomaly``
    Post-processing of the reconstruction error (:mod:`engine.inference.anomaly`):
    ``{"error": "abs" | "squared", "median_size": 3, "smooth_sigma": 2.0, "mask": "ct_body" |
    "ct_lung" | "tissue" | "none", "smooth_s": 0.05}`` (pixels at model resolution; seconds
    for signals). CT only, all optional: ``"lung_closing_mm"`` (closing of the lung mask,
    default 10 mm; larger takes in juxta-pleural nodules), ``"mask_before_smoothing"``
    (default false: zero the error outside the mask before filtering, so mediastinal edge
    errors do not bleed into a lung mask), ``"error_clip_hu"`` (default null: input and
    reconstruction are clipped at this HU before the error, so contrast-filled vessels,
    bone and metal above soft tissue do not score).
``calibration``
    Percentiles of the post-processed error on normal validation data:
    ``{"p50": .., "p95": .., "p99": .., "low": "p50", "high": "p99", "n": ..., "data": "..."}``.
    The anomaly map is ``(error - low) / (high - low)`` clipped at 0: 0 = typical normal,
    1 = the high percentile of normal.
``training``
    ``{"command": "...", "data": [...], "seconds": ..., "epochs": ...}`` — how to reproduce it.
``metrics``
    Validation numbers.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Iterable, Sequence

import numpy as np

from engine.errors import WeightsError

__all__ = ["validate_meta", "ct_to_model", "ct_from_model", "rgb_to_model", "rgb_from_model",
           "signal_to_model", "signal_from_model", "resample_ratio", "resample", "SCHEMA_KEYS",
           "IMAGE_MODALITIES", "SIGNAL_MODALITIES", "resample_slice", "pad_to_multiple"]

SCHEMA_KEYS = ("architecture", "hparams", "modality", "preprocessing", "input")
IMAGE_MODALITIES = ("ct", "histology")
SIGNAL_MODALITIES = ("ecg", "eeg")


def validate_meta(meta: dict[str, Any], *, where: str = "weights") -> None:
    """Raise WeightsError unless *meta* holds what generic inference needs."""
    missing = [k for k in SCHEMA_KEYS if k not in meta]
    if missing:
        raise WeightsError(f"{where}: metadata lacks {', '.join(missing)} "
                           "(see engine.inference.preprocess for the schema)")
    mod, prep, inp = meta["modality"], meta["preprocessing"], meta["input"]
    want = {"ct": "ct_window", "histology": "rgb", "ecg": "signal", "eeg": "signal"}.get(mod)
    if want is None:
        raise WeightsError(f"{where}: unknown modality {mod!r}")
    if prep.get("kind") != want:
        raise WeightsError(f"{where}: {mod} model needs preprocessing kind {want!r}, found {prep.get('kind')!r}")
    if mod in SIGNAL_MODALITIES:
        for k in ("window", "sfreq"):
            if k not in inp:
                raise WeightsError(f"{where}: signal model input lacks {k!r}")
    elif "tile" not in inp:
        raise WeightsError(f"{where}: image model input lacks 'tile'")


# ------------------------------------------------------------------ CT

def ct_to_model(hu: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """HU (any shape) -> float32 in [0, 1] by clipping to the model's window."""
    lo, hi = float(prep["hu_min"]), float(prep["hu_max"])
    return ((np.clip(hu, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def ct_from_model(x: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """Model units -> HU, clipped to the model's window (values outside it are not recoverable)."""
    lo, hi = float(prep["hu_min"]), float(prep["hu_max"])
    return (np.clip(np.asarray(x, np.float32), 0.0, 1.0) * (hi - lo) + lo).astype(np.float32)


# ------------------------------------------------------------------ histology

def rgb_to_model(rgb: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """``(h, w, 3)`` uint8 -> ``(3, h, w)`` float32 in [0, 1]."""
    x = np.asarray(rgb)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    x = x[..., :3].astype(np.float32) / float(prep.get("scale", 255.0))
    return np.moveaxis(x, -1, 0)


def rgb_from_model(x: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """``(3, h, w)`` model units -> ``(h, w, 3)`` float32 in 0..255 (not rounded)."""
    return np.moveaxis(np.clip(x, 0, None) * float(prep.get("scale", 255.0)), 0, -1).astype(np.float32)


# ------------------------------------------------------------------ signals

def signal_to_model(window: np.ndarray, prep: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(channels, n)`` in the signal's units -> (model input, baseline per channel)."""
    w = np.asarray(window, np.float32)
    mode = prep.get("baseline", "mean")
    if mode == "mean":
        base = w.mean(axis=-1, keepdims=True)
    elif mode == "median":
        base = np.median(w, axis=-1, keepdims=True)
    elif mode == "none":
        base = np.zeros(w.shape[:-1] + (1,), np.float32)
    else:
        raise WeightsError(f"unknown baseline mode {mode!r}")
    return ((w - base) / float(prep.get("scale", 1.0))).astype(np.float32), base.astype(np.float32)


def signal_from_model(y: np.ndarray, base: np.ndarray, prep: dict[str, Any]) -> np.ndarray:
    """Inverse of :func:`signal_to_model`."""
    return (np.asarray(y, np.float32) * float(prep.get("scale", 1.0)) + base).astype(np.float32)


def resample_ratio(sfreq_from: float, sfreq_to: float) -> tuple[int, int]:
    """``(up, down)`` integers with ``up / down ≈ sfreq_to / sfreq_from`` (within 1e-4)."""
    fr = Fraction(float(sfreq_to) / float(sfreq_from)).limit_denominator(1000)
    return fr.numerator, fr.denominator


def resample(x: np.ndarray, sfreq_from: float, sfreq_to: float, n_out: int) -> np.ndarray:
    """Resample the last axis from *sfreq_from* to *sfreq_to* Hz, cropped/padded to *n_out* samples."""
    if abs(sfreq_from - sfreq_to) < 1e-9 * max(sfreq_from, 1.0):
        y = x
    else:
        from scipy.signal import resample_poly

        up, down = resample_ratio(sfreq_from, sfreq_to)
        y = resample_poly(x, up, down, axis=-1, padtype="line")
    if y.shape[-1] >= n_out:
        return np.ascontiguousarray(y[..., :n_out], dtype=np.float32)
    pad = [(0, 0)] * (y.ndim - 1) + [(0, n_out - y.shape[-1])]
    return np.pad(y, pad, mode="edge").astype(np.float32)


def resample_slice(x: np.ndarray, spacing: Sequence[float], target_mm: float | None, *, order: int = 1) -> np.ndarray:
    """Resample a 2-D slice with (row, col) *spacing* in mm to isotropic *target_mm* (None: unchanged)."""
    if not target_mm:
        return np.asarray(x, np.float32)
    from scipy.ndimage import zoom

    f = (float(spacing[0]) / target_mm, float(spacing[1]) / target_mm)
    x = np.asarray(x, np.float32)
    if order == 1 and x.ndim == 2:  # the same pixels by OpenCV (engine.inference.morphology.resize_linear)
        from engine.inference.morphology import resize_linear

        return resize_linear(x, tuple(int(round(n * k)) for n, k in zip(x.shape, f)))  # scipy's output shape
    return zoom(x, f, order=order, mode="nearest", grid_mode=True).astype(np.float32)


def pad_to_multiple(x: np.ndarray, m: int, *, axes: Iterable[int] = (-2, -1), mode: str = "edge") -> np.ndarray:
    """Pad *x* at the end of *axes* so each size is a multiple of *m*."""
    pad = [(0, 0)] * x.ndim
    for a in axes:
        n = x.shape[a]
        pad[a] = (0, (-n) % m)
    return np.pad(x, pad, mode=mode) if any(p[1] for p in pad) else x
