"""Calibrating a model's anomaly scale on NORMAL data (stored as ``meta["calibration"]``).

:func:`normal_error_values` runs the exact inference pipeline with calibration off and
returns the post-processed error values inside the foreground mask (:func:`normal_error_units`:
the same, one array per CT plane); :func:`calibrate_on` turns the units of several normal inputs
into the fixed scale by THE definition (:func:`engine.inference.anomaly.calibrate`). Every
producer of a calibration (bundled training scripts, ``train``, ``finetune``, ``calibrate``)
goes through :func:`calibrate_on` or :func:`calibrate_units`.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from engine.inference.anomaly import calibrate
from engine.inference.pipelines import image_pipeline
from engine.inference.preprocess import IMAGE_MODALITIES
from engine.jobs import run_job

__all__ = ["normal_error_values", "normal_error_units", "collect_units", "calibrate_units", "calibrate_on"]


def normal_error_units(loaded, data, *, planes=None, device="cpu", max_values: int = 2_000_000,
                       seed: int = 0) -> list[np.ndarray]:
    """Uncalibrated, post-processed errors inside the mask of one normal input, one array per
    independent unit: per CT plane for a CT volume, else the whole input (subsampled to
    *max_values* in all)."""
    if data.modality in IMAGE_MODALITIES:
        _, err, mask = run_job(image_pipeline(loaded, data, device=device, calibrated=False, planes=planes))
        err, mask = np.asarray(err), np.asarray(mask, bool)
        if data.modality == "ct" and err.ndim == 3:
            units = [err[i][mask[i]] for i in range(err.shape[0])]
        else:
            units = [err[mask]]
    else:
        from engine.inference.windows import infer_signal, signal_anomaly

        recon = run_job(infer_signal(loaded, data, device=device))
        err, _ = signal_anomaly(loaded, data, recon, calibrated=False)
        units = [np.asarray(err).ravel()]
    units = [np.asarray(u, np.float32) for u in units]
    total = sum(u.size for u in units)
    if total > max_values:
        rng = np.random.default_rng(seed)
        units = [rng.choice(u, max(1, int(round(u.size * max_values / total))), replace=False) if u.size else u
                 for u in units]
    return units


def normal_error_values(loaded, data, *, planes=None, device="cpu", max_values: int = 2_000_000,
                        seed: int = 0) -> np.ndarray:
    """Uncalibrated, post-processed errors inside the mask for one normal input (subsampled), pooled."""
    return np.concatenate(normal_error_units(loaded, data, planes=planes, device=device,
                                             max_values=max_values, seed=seed))


def calibrate_units(units, *, data_note: str = "") -> dict:
    """The fixed scale from already measured units (:func:`engine.inference.anomaly.calibrate`)."""
    return calibrate([u for u in units if np.asarray(u).size], data=data_note)


def collect_units(loaded, items: Iterable, **kw) -> list[np.ndarray]:
    """The units of several ``data`` or ``(data, planes)`` normal inputs, in order."""
    units = []
    for it in items:
        data, planes = it if isinstance(it, tuple) else (it, None)
        units += normal_error_units(loaded, data, planes=planes, **kw)
    return units


def calibrate_on(loaded, items: Iterable, *, data_note: str = "", **kw) -> dict:
    """Calibration over several ``data`` or ``(data, planes)`` normal inputs (each CT plane one unit)."""
    return calibrate_units(collect_units(loaded, items, **kw), data_note=data_note)
