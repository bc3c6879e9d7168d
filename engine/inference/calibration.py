"""Calibrating a model's anomaly scale on NORMAL data (stored as ``meta["calibration"]``).

:func:`normal_error_values` runs the exact inference pipeline with calibration off and
returns the post-processed error values inside the foreground mask; :func:`calibrate_on`
turns the values of several normal inputs into percentiles (:func:`engine.inference.anomaly.calibrate`).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from engine.inference.anomaly import calibrate
from engine.inference.pipelines import image_pipeline
from engine.inference.preprocess import IMAGE_MODALITIES
from engine.jobs import run_job

__all__ = ["normal_error_values", "calibrate_on"]


def normal_error_values(loaded, data, *, planes=None, device="cpu", max_values: int = 2_000_000,
                        seed: int = 0) -> np.ndarray:
    """Uncalibrated, post-processed errors inside the mask for one normal input (subsampled)."""
    if data.modality in IMAGE_MODALITIES:
        _, err, mask = run_job(image_pipeline(loaded, data, device=device, calibrated=False, planes=planes))
        v = np.asarray(err)[mask]
    else:
        from engine.inference.windows import infer_signal, signal_anomaly

        recon = run_job(infer_signal(loaded, data, device=device))
        err, _ = signal_anomaly(loaded, data, recon, calibrated=False)
        v = err.ravel()
    v = np.asarray(v, np.float32)
    if v.size > max_values:
        v = np.random.default_rng(seed).choice(v, max_values, replace=False)
    return v


def calibrate_on(loaded, items: Iterable, *, data_note: str = "", **kw) -> dict:
    """Percentile calibration over several ``data`` or ``(data, planes)`` normal inputs."""
    vals = []
    for it in items:
        data, planes = it if isinstance(it, tuple) else (it, None)
        vals.append(normal_error_values(loaded, data, planes=planes, **kw))
    return calibrate(np.concatenate(vals), data=data_note)
