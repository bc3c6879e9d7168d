"""The ``reconstruct`` task: reconstruction + calibrated anomaly map for any modality.

Public entry points (all generators yielding :class:`~engine.jobs.Progress`):

- :func:`reconstruct_task` — the task the GUI and ``python -m engine reconstruct`` run;
- :func:`infer_image` — reconstruction of a CT volume or H&E image with any image model;
- :func:`engine.inference.windows.infer_signal` — windowed reconstruction/denoising of a signal
  (re-exported here), used by the denoising and scoring tasks.

and :func:`write_reconstruction`, which writes the results atomically. Models are
described by the metadata schema of :mod:`engine.inference.preprocess`.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Generator

import numpy as np

from engine.data import Image
from engine.errors import ModalityMismatchError
from engine.inference.pipelines import image_pipeline
from engine.inference.preprocess import IMAGE_MODALITIES, validate_meta
from engine.inference.windows import infer_signal, signal_anomaly
from engine.io.montages import montage_params
from engine.jobs import Progress
from engine.results import AnomalyMap, Reconstruction, ReconstructionResult
from engine.tasks._models import resolve_model
from engine.tasks.reconstruct.write import estimate_reconstruction_bytes, write_reconstruction

__all__ = ["reconstruct_task", "write_reconstruction", "estimate_reconstruction_bytes", "infer_image", "infer_signal",
           "check_modality", "summarize"]

logger = logging.getLogger("engine")


def check_modality(loaded, data) -> None:
    """Raise ModalityMismatchError when *loaded* was trained for another modality than *data*."""
    if loaded.modality != data.modality:
        raise ModalityMismatchError(
            f"model {loaded.name!r} was trained on {loaded.modality or 'unknown'} data, but "
            f"{data.path} is {data.modality}; choose a {data.modality} model (python -m engine models)")


def infer_image(loaded, image: Image, *, device=None, batch_size: int | None = None,
                ) -> Generator[Progress, None, np.ndarray]:
    """Reconstruct a CT volume (HU, ``(planes, rows, cols)``) or H&E image (``(H, W, 3)`` 0..255 float32)."""
    check_modality(loaded, image)
    validate_meta(loaded.meta, where=loaded.name)
    recon, _, _ = yield from image_pipeline(loaded, image, device=device, batch_size=batch_size, overlap=None)
    return _to_input_layout(recon, image.modality)


def _to_input_layout(recon: np.ndarray, modality: str) -> np.ndarray:
    if modality != "histology":
        return recon
    step = 512
    for r in range(0, recon.shape[1], step):  # model units -> 0..255 in place (may be disk-backed)
        recon[:, r:r + step] *= 255.0
    return np.moveaxis(recon, 0, -1)


def reconstruct_task(data, *, model=None, device=None, batch_size: int | None = None,
                     overlap: int | None = None, **options) -> Generator[Progress, None, ReconstructionResult]:
    """Reconstruct *data* (Image or Signal) and compute its anomaly map on the model's calibrated scale.

    Parameters
    ----------
    data : engine.data.Image or engine.data.Signal
    model : str, path, LoadedModel or None
        None -> the bundled default for the data's modality (:func:`engine.tasks.default_model`).
    device : str, optional
        ``"cpu"``, ``"cuda"``... (default: CUDA, then MPS, then CPU).
    batch_size, overlap : optional overrides of the model's defaults (overlap in MODEL pixels or
        samples, i.e. after resampling to the model's spacing or rate).
    """
    from engine._shared.device import choose_device, device_name

    t0 = time.perf_counter()
    yield Progress(0.0, "loading model")
    loaded = resolve_model(model, "reconstruct", data.modality)
    check_modality(loaded, data)
    validate_meta(loaded.meta, where=loaded.name)
    dev = choose_device(device)
    t_load = time.perf_counter() - t0
    params: dict[str, Any] = {"input": loaded.meta["input"], "preprocessing": loaded.meta["preprocessing"],
                              "anomaly": loaded.meta.get("anomaly", {}), "batch_size": batch_size,
                              "overlap": overlap}
    if data.modality == "histology":
        from engine.inference.histology import model_scale

        params["model_pixels_per_input_pixel"] = model_scale(data, loaded.meta["preprocessing"])
        params["input_mpp"] = data.mpp
    if data.modality in IMAGE_MODALITIES:
        recon, amap, mask = yield from image_pipeline(loaded, data, device=dev, batch_size=batch_size, overlap=overlap)
        t_inf = time.perf_counter() - t0 - t_load
        from engine.inference.anomaly import anomaly_stats

        stats = anomaly_stats(amap, mask)
        stats["mask_fraction"] = float(np.mean(mask))
        recon = _to_input_layout(recon, data.modality)
        units = "HU" if data.modality == "ct" else "RGB (0-255, float)"
    else:
        bs = batch_size or 64
        recon = yield from infer_signal(loaded, data, device=dev, batch_size=bs, overlap=overlap)
        t_inf = time.perf_counter() - t0 - t_load
        yield Progress(1.0, "anomaly")
        amap, stats = signal_anomaly(loaded, data, recon)
        mask = None
        units = ",".join(sorted(set(data.units)))
        params["sfreq_in"] = float(data.sfreq)
        params.update(montage_params(data))  # the montage the recording was read through
    total = time.perf_counter() - t0
    cal = loaded.meta.get("calibration") or {}
    summary = {
        "task": "reconstruct",
        "input": {"path": data.path, "modality": data.modality, "shape": [int(s) for s in data.shape]},
        "model": {"name": loaded.name, "file": str(loaded.path), "sha256": loaded.sha256,
                  "architecture": loaded.meta.get("architecture")},
        "device": device_name(dev),
        "timings_s": {"load_model": round(t_load, 3), "inference": round(t_inf, 3),
                      "anomaly": round(total - t_load - t_inf, 3), "total": round(total, 3)},
        "anomaly": {"scale": {k: cal.get(k) for k in ("low", "high", "p50", "p95", "p99") if k in cal},
                    "calibrated": bool(cal), "stats": stats,
                    "meaning": "0 = typical of the model's normal validation data, 1 = its high percentile"},
        "parameters": params,
    }
    rec = Reconstruction(array=recon, units=units, model=loaded.name, sha256=loaded.sha256)
    an = AnomalyMap(array=amap, scale={k: v for k, v in cal.items() if isinstance(v, (int, float))},
                    model=loaded.name, sha256=loaded.sha256, mask=mask, stats=stats)
    yield Progress(1.0, "done")
    return ReconstructionResult(reconstruction=rec, anomaly=an, summary=summary)


def summarize(result: ReconstructionResult, data=None, *, outputs=()) -> dict[str, Any]:
    """Provenance, calibration and anomaly statistics of one reconstruction (built by the task)."""
    return result.summary
