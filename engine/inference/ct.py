"""CT reconstruction and anomaly maps, slice by slice.

Each axial slice is windowed to model units, resampled to the model's pixel spacing,
reconstructed (tiled when large), compared with its input at model resolution, the
error median-filtered and smoothed, mapped back to the slice's own grid, restricted to
the body (or lung) mask and put on the model's calibrated scale. The reconstruction is
returned in HU; values outside the model's HU window come back clipped to it.
"""
from __future__ import annotations

from typing import Generator

import numpy as np

from engine.inference.anomaly import apply_calibration, ct_body_mask, ct_lung_mask, error_map, postprocess_image_error
from engine.inference.morphology import resize_linear
from engine.inference.preprocess import ct_from_model, ct_to_model, resample_slice
from engine.inference.tiles import _alloc, tiled_reconstruct
from engine.jobs import Progress, rescaled

__all__ = ["ct_slice", "reconstruct_ct", "ct_mask", "ct_error"]


def _resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return resize_linear(x, shape)


def ct_mask(hu: np.ndarray, kind: str, spacing_mm: float, *, lung_closing_mm: float | None = None) -> np.ndarray:
    """The foreground of the *kind* named in a model's ``anomaly["mask"]`` on one HU slice."""
    if kind == "ct_lung":
        kw = {} if lung_closing_mm is None else {"closing_mm": float(lung_closing_mm)}
        return ct_lung_mask(hu, spacing_mm=spacing_mm, **kw)
    if kind == "ct_body":
        return ct_body_mask(hu)
    return np.ones(hu.shape, bool)


def ct_error(x: np.ndarray, rec: np.ndarray, mask: np.ndarray, an: dict, prep: dict) -> np.ndarray:
    """Post-processed error at model resolution following the model's ``anomaly`` recipe.

    *x* and *rec* are ``(1, h, w)`` model units, *mask* the foreground on the same grid.
    """
    clip = an.get("error_clip_hu")
    if clip is not None:  # contrast-filled vessels and bone above soft tissue do not score
        t = float(ct_to_model(np.float32(clip), prep))
        x, rec = np.minimum(x, t), np.minimum(rec, t)
    err = error_map(x, rec, kind=an.get("error", "abs"))
    return postprocess_image_error(err, median_size=int(an.get("median_size", 0)),
                                   smooth_sigma=float(an.get("smooth_sigma", 0.0)),
                                   mask=mask if an.get("mask_before_smoothing", False) else None)


def _ct_network(loaded, hu: np.ndarray, spacing_rc, *, device=None, batch_size: int = 4,
                overlap: int | None = None) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray]]:
    """The network half of :func:`ct_slice`: (model-unit slice, its reconstruction) at model resolution."""
    meta = loaded.meta
    prep, inp = meta["preprocessing"], meta["input"]
    x = resample_slice(ct_to_model(hu, prep), spacing_rc, prep.get("target_spacing_mm"))
    ov = int(inp.get("overlap", 32) if overlap is None else overlap)
    job = tiled_reconstruct(loaded.module, lambda y0, x0, y1, x1: x[None, y0:y1, x0:x1], x.shape[0], x.shape[1],
                            tile=int(inp["tile"]), overlap=ov,
                            size_multiple=int(inp.get("size_multiple", 1)), batch_size=batch_size,
                            device=device)
    rec = yield from job
    return x, rec


def _ct_post(loaded, hu: np.ndarray, spacing_rc, x: np.ndarray, rec: np.ndarray, *, calibrated: bool = True,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The numpy/scipy half of :func:`ct_slice` (mask, error map, calibration, back to the slice grid)."""
    meta = loaded.meta
    prep, an = meta["preprocessing"], meta.get("anomaly", {})
    mask = ct_mask(hu, an.get("mask", "ct_body"), float(np.mean(spacing_rc)),
                   lung_closing_mm=an.get("lung_closing_mm"))
    err = ct_error(x[None], rec, _resize(mask.astype(np.float32), x.shape) > 0.5, an, prep)
    err = _resize(err, hu.shape)
    amap = apply_calibration(err, meta.get("calibration") if calibrated else None) * mask
    recon_hu = ct_from_model(_resize(rec[0], hu.shape), prep)
    return recon_hu, amap.astype(np.float32), mask


def ct_slice(loaded, hu: np.ndarray, spacing_rc, *, device=None, batch_size: int = 4,
             calibrated: bool = True, overlap: int | None = None,
             ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One HU slice -> (reconstruction in HU, calibrated anomaly, foreground mask), all in the slice's grid."""
    x, rec = yield from _ct_network(loaded, hu, spacing_rc, device=device, batch_size=batch_size, overlap=overlap)
    return _ct_post(loaded, hu, spacing_rc, x, rec, calibrated=calibrated)


#: Planes post-processed at once beside the network when a core is free (scipy.ndimage releases the GIL).
CT_POST_WORKERS = 2


def reconstruct_ct(loaded, image, *, device=None, batch_size: int = 4, calibrated: bool = True,
                   planes=None, overlap: int | None = None, pipeline: bool | None = None,
                   ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Every plane (or *planes*) of a CT :class:`~engine.data.Image`: (recon HU, anomaly, mask) volumes.

    *pipeline*: post-process planes in :data:`CT_POST_WORKERS` worker threads while the network runs on
    the next plane (the same output); ``None`` (default) when
    :func:`engine._shared.threads.concurrent_calls` leaves a core free.
    """
    from engine._shared.background import InOrder
    from engine._shared.threads import concurrent_calls

    vol = image.array
    ks = list(range(vol.shape[0])) if planes is None else list(planes)
    shape = (len(ks),) + vol.shape[1:]
    recon, amap = _alloc(shape), _alloc(shape)
    mask = np.zeros(shape, bool)
    spacing = image.spacing[1:]
    workers = CT_POST_WORKERS if (concurrent_calls() > 1 if pipeline is None else pipeline) else 0

    def store(j):
        def done(result):
            recon[j], amap[j], mask[j] = result
        return done

    with InOrder(workers, "latent-ct-post") as post:
        for j, k in enumerate(ks):
            net = _ct_network(loaded, vol[k], spacing, device=device, batch_size=batch_size, overlap=overlap)
            x, rec = yield from rescaled(net, j / len(ks), (j + 1) / len(ks), prefix=f"slice {j + 1}/{len(ks)}: ")
            post.submit(store(j), _ct_post, loaded, vol[k], spacing, x, rec, calibrated=calibrated)
        post.drain()
    return recon, amap, mask
