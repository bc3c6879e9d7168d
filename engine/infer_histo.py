"""Histology reconstruction and anomaly maps in bounded memory.

Tiles are read with :meth:`Image.read_region` (a whole slide is never loaded); the
reconstruction accumulates in disk-backed arrays above a size threshold. The anomaly
map is then computed block by block (error, median filter, Gaussian blur, tissue mask,
calibration) with a margin so block seams do not show.
"""
from __future__ import annotations

from typing import Generator

import numpy as np

from engine.anomaly import apply_calibration, error_map, postprocess_image_error, tissue_mask
from engine.infer_image import _alloc, tiled_reconstruct
from engine.preprocess import rgb_to_model
from engine.types import Progress

__all__ = ["reconstruct_histology", "BLOCK"]

BLOCK = 2048


def _read(image, prep):
    def read(y0, x0, y1, x1):
        return rgb_to_model(image.read_region(0, x0, y0, x1 - x0, y1 - y0), prep)
    return read


def reconstruct_histology(loaded, image, *, device=None, batch_size: int = 8, calibrated: bool = True,
                          overlap: int | None = None,
                          ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return ``(recon (3, H, W) model units [0, 1], anomaly (H, W), tissue mask (H, W))`` at level 0."""
    meta = loaded.meta
    prep, inp, an = meta["preprocessing"], meta["input"], meta.get("anomaly", {})
    h, w = int(image.shape[0]), int(image.shape[1])
    read = _read(image, prep)
    ov = int(inp.get("overlap", 32) if overlap is None else overlap)
    job = tiled_reconstruct(loaded.module, read, h, w, tile=int(inp["tile"]), overlap=ov,
                            size_multiple=int(inp.get("size_multiple", 1)), batch_size=batch_size,
                            device=device)
    recon = None
    while True:
        try:
            p = next(job)
        except StopIteration as stop:
            recon = stop.value
            break
        yield Progress(0.9 * p.fraction, p.message)
    med, sig = int(an.get("median_size", 0)), float(an.get("smooth_sigma", 0.0))
    margin = int(med + 4 * sig + 2)
    amap = _alloc((h, w))
    mask = np.zeros((h, w), bool)
    cal = meta.get("calibration") if calibrated else None
    blocks = [(y, x) for y in range(0, h, BLOCK) for x in range(0, w, BLOCK)]
    for i, (y, x) in enumerate(blocks):
        y0, x0 = max(0, y - margin), max(0, x - margin)
        y1, x1 = min(h, y + BLOCK + margin), min(w, x + BLOCK + margin)
        rgb = image.read_region(0, x0, y0, x1 - x0, y1 - y0)
        err = error_map(rgb_to_model(rgb, prep), recon[:, y0:y1, x0:x1], kind=an.get("error", "abs"))
        err = postprocess_image_error(err, median_size=med, smooth_sigma=sig)
        m = tissue_mask(rgb) if an.get("mask", "tissue") == "tissue" else np.ones(err.shape, bool)
        by, bx = min(BLOCK, h - y), min(BLOCK, w - x)
        sl = (slice(y - y0, y - y0 + by), slice(x - x0, x - x0 + bx))
        amap[y:y + by, x:x + bx] = apply_calibration(err[sl], cal) * m[sl]
        mask[y:y + by, x:x + bx] = m[sl]
        yield Progress(0.9 + 0.1 * (i + 1) / len(blocks), f"anomaly block {i + 1}/{len(blocks)}")
    return recon, amap, mask
