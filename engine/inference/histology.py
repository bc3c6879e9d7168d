"""Histology reconstruction and anomaly maps in bounded memory.

Tiles are read with :meth:`Image.read_region` (a whole slide is never loaded); the
reconstruction accumulates in disk-backed arrays above a size threshold. The anomaly
map is then computed block by block (error, median filter, Gaussian blur, tissue mask,
calibration) with a margin so block seams do not show.

Magnification: when the image's microns per pixel are known (file metadata or ``mpp=``
when reading) and differ from the model's ``preprocessing.expected_mpp`` by more than
:data:`MPP_TOLERANCE`, the model runs on a virtually rescaled image (each tile read at
level 0 and resized) and the results are mapped back to level-0 pixels block by block.
"""
from __future__ import annotations

from typing import Generator

import numpy as np

from engine.inference.anomaly import apply_calibration, error_map, postprocess_image_error, tissue_mask
from engine.inference.preprocess import rgb_to_model
from engine.inference.tiles import _alloc, tiled_reconstruct
from engine.jobs import Progress, rescaled

__all__ = ["reconstruct_histology", "BLOCK"]

BLOCK = 2048
MPP_TOLERANCE = 0.2  # relative difference of microns per pixel tolerated without rescaling


def model_scale(image, prep) -> float:
    """Model pixels per level-0 pixel (1.0 when the mpp is unknown or close enough)."""
    want, have = prep.get("expected_mpp"), image.mpp
    if not want or not have:
        return 1.0
    s = float(have) / float(want)
    return 1.0 if abs(s - 1.0) <= MPP_TOLERANCE else s


class _Rescaled:
    """A read-only view of an image at *s* times its level-0 size (region reads only)."""

    def __init__(self, image, s: float):
        self.image, self.s = image, s
        self.shape = (max(1, int(round(image.shape[0] * s))), max(1, int(round(image.shape[1] * s))), 3)

    def read_region(self, level, x, y, w, h):
        from skimage.transform import resize

        s, (H, W) = self.s, self.image.shape[:2]
        x0, y0 = int(np.floor(x / s)), int(np.floor(y / s))
        x1, y1 = min(W, int(np.ceil((x + w) / s))), min(H, int(np.ceil((y + h) / s)))
        rgb = self.image.read_region(0, x0, y0, max(1, x1 - x0), max(1, y1 - y0))[..., :3]
        # the crop covers [x0, x1) level-0 px = [x0*s, x1*s) model px; resample onto [x, x + w)
        big = resize(rgb.astype(np.float32), (max(1, int(round((y1 - y0) * s))), max(1, int(round((x1 - x0) * s)))),
                     order=1, anti_aliasing=s < 1, preserve_range=True)
        oy, ox = int(round(y - y0 * s)), int(round(x - x0 * s))
        out = np.zeros((h, w, 3), np.float32)
        blk = big[max(0, oy):oy + h, max(0, ox):ox + w]
        out[: blk.shape[0], : blk.shape[1]] = blk
        if blk.shape[0] < h:
            out[blk.shape[0]:] = out[max(0, blk.shape[0] - 1)]
        if blk.shape[1] < w:
            out[:, blk.shape[1]:] = out[:, max(0, blk.shape[1] - 1):max(1, blk.shape[1])]
        return np.clip(out, 0, 255).astype(np.uint8)


def _to_level0(arr: np.ndarray, s: float, shape: tuple[int, int]) -> np.ndarray:
    """Map a model-resolution ``(..., h, w)`` array back to level-0 ``shape`` (linear, block by block)."""
    from scipy.ndimage import map_coordinates

    H, W = shape
    lead = arr.shape[:-2]
    out = _alloc(lead + (H, W))
    for y in range(0, H, BLOCK):
        for x in range(0, W, BLOCK):
            yy = (np.arange(y, min(H, y + BLOCK)) + 0.5) * s - 0.5
            xx = (np.arange(x, min(W, x + BLOCK)) + 0.5) * s - 0.5
            ya, yb = max(0, int(np.floor(yy[0])) - 1), min(arr.shape[-2], int(np.ceil(yy[-1])) + 2)
            xa, xb = max(0, int(np.floor(xx[0])) - 1), min(arr.shape[-1], int(np.ceil(xx[-1])) + 2)
            gy, gx = np.meshgrid(yy - ya, xx - xa, indexing="ij")
            src = np.asarray(arr[..., ya:yb, xa:xb], np.float32).reshape((-1, yb - ya, xb - xa))
            res = [map_coordinates(c, [gy, gx], order=1, mode="nearest") for c in src]
            out[..., y:y + len(yy), x:x + len(xx)] = np.stack(res).reshape(lead + gy.shape)
    return out


def _read(image, prep):
    def read(y0, x0, y1, x1):
        return rgb_to_model(image.read_region(0, x0, y0, x1 - x0, y1 - y0), prep)
    return read


def reconstruct_histology(loaded, image, *, device=None, batch_size: int = 8, calibrated: bool = True,
                          overlap: int | None = None,
                          ) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Return ``(recon (3, H, W) model units [0, 1], anomaly (H, W), tissue mask (H, W))`` at level 0."""
    meta = loaded.meta
    prep = meta["preprocessing"]
    s = model_scale(image, prep)
    if s != 1.0:
        full = (int(image.shape[0]), int(image.shape[1]))
        recon, amap, mask = yield from _native(loaded, _Rescaled(image, s), device=device, batch_size=batch_size,
                                               calibrated=calibrated, overlap=overlap)
        yield Progress(1.0, f"mapping back to the image's resolution (model ran at {s:.3g}x)")
        return (_to_level0(recon, s, full), _to_level0(amap, s, full),
                _to_level0(mask.astype(np.float32), s, full) >= 0.5)
    result = yield from _native(loaded, image, device=device, batch_size=batch_size, calibrated=calibrated,
                                overlap=overlap)
    return result


def _native(loaded, image, *, device, batch_size, calibrated, overlap):
    meta = loaded.meta
    prep, inp, an = meta["preprocessing"], meta["input"], meta.get("anomaly", {})
    h, w = int(image.shape[0]), int(image.shape[1])
    read = _read(image, prep)
    ov = int(inp.get("overlap", 32) if overlap is None else overlap)
    job = tiled_reconstruct(loaded.module, read, h, w, tile=int(inp["tile"]), overlap=ov,
                            size_multiple=int(inp.get("size_multiple", 1)), batch_size=batch_size,
                            device=device)
    recon = yield from rescaled(job, 0.0, 0.9)
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
