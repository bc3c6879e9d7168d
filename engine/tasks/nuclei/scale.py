"""Estimate the pixel size (µm/px) of an H&E image from its nuclei, when the file does not say it.

Nuclei have a roughly fixed physical size, so their size in pixels gives the scale. Two
measurements are taken on the hematoxylin optical density (:func:`hematoxylin`):

* the **blob-scale spectrum**: the 99th percentile of the scale-normalised Laplacian of
  Gaussian response ``-s² ∇²G_s * H`` at :data:`SIGMAS` (geometric, 1.5-16 px); its
  response-weighted mean log-scale moves with the nucleus radius in pixels;
* the **inscribed radius** of hematoxylin-positive objects (Otsu threshold of the smoothed
  H, holes filled): the 75th percentile over objects of the largest distance-to-background
  (touching nuclei merge but keep their radius).

``log(mpp) = c0 + c1 * centroid + c2 * log(radius)`` was fitted by least squares on images
whose magnification is known (:data:`CALIBRATION`: CRCHisto 20x, the 13 MoNuSeg *training*
images 40x, MICCAI 2015 20x + 40x, each also resampled by 2 to the other magnification so
that stain and organ are not confounded with scale); the MoNuSeg *test* images were never
used. The continuous estimate (``mpp_raw``) is snapped to the nearest standard scan
resolution (:data:`STANDARD_MPP`: objective powers 80x ... 5x, factor 2 apart), which is what
scanners produce; the confidence falls from 1 (on a standard value, tiles agreeing) to 0
(half-way between two, or tiles disagreeing by an octave). See the README for the
held-out measurements.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["estimate_mpp", "estimate_mpp_array", "scale_features", "SIGMAS", "STANDARD_MPP", "CALIBRATION"]

SIGMAS = np.geomspace(1.5, 16.0, 9)
#: Standard level-0 pixel sizes (µm/px) and the objective power they correspond to.
STANDARD_MPP = {0.125: "80x", 0.25: "40x", 0.5: "20x", 1.0: "10x", 2.0: "5x"}
#: Least-squares coefficients of log(mpp) on (1, spectrum centroid, log inscribed radius); see the module doc.
CALIBRATION = {"coef": (2.8032, -2.2179, -0.2313), "residual_sd_octaves": 0.22,
               "fitted_on": "CRCHisto (20x), MoNuSeg training (40x), MICCAI 2015 (20x, 40x), each also resampled x2"}
#: The estimate is snapped to a standard resolution when within this many octaves of it. On the
#: calibration images (leave-one-image-out) always snapping (0.5) gave the fewest scale errors
#: over 25 % (6.9 % of images, against 19 % when snapping within 0.3 octaves only).
SNAP_OCTAVES = 0.5
#: Tiles (level-0 pixels) read from a large image for the estimate, at most this many.
TILE = 1024
MAX_TILES = 4


def scale_features(h: np.ndarray) -> dict:
    """The two scale measurements of a hematoxylin optical-density array (see the module doc)."""
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu

    h = np.asarray(h, np.float32)
    resp = []
    for s in SIGMAS:
        r = -(s * s) * ndi.gaussian_laplace(h, float(s))
        resp.append(float(np.percentile(r, 99)))
    w = np.maximum(np.asarray(resp), 0.0)
    centroid = float((np.log(SIGMAS) * w).sum() / w.sum()) if w.sum() > 0 else float("nan")
    hs = ndi.gaussian_filter(h, 1.0)
    try:
        t = float(threshold_otsu(hs))
    except ValueError:
        t = float("inf")
    m = ndi.binary_fill_holes(ndi.binary_opening(hs > t))
    lab, n = ndi.label(m)
    radius, objects = float("nan"), 0
    if n:
        dt = ndi.distance_transform_edt(m)
        mx = np.asarray(ndi.maximum(dt, lab, np.arange(1, n + 1)))
        mx = mx[mx >= 1.5]
        objects = int(len(mx))
        if objects >= 3:
            radius = float(np.percentile(mx, 75))
    return {"log_centroid": centroid, "radius_p75": radius, "objects": objects,
            "h_p99": float(np.percentile(h, 99))}


def _log_mpp(f: dict) -> float:
    c0, c1, c2 = CALIBRATION["coef"]
    if not (math.isfinite(f["log_centroid"]) and math.isfinite(f["radius_p75"])):
        return float("nan")
    return c0 + c1 * f["log_centroid"] + c2 * math.log(f["radius_p75"])


def _snap(raw_mpp: float) -> tuple[float, float]:
    """(nearest standard mpp, distance to it in octaves)."""
    best = min(STANDARD_MPP, key=lambda m: abs(math.log2(raw_mpp / m)))
    return best, abs(math.log2(raw_mpp / best))


def _combine(per_tile: list[dict]) -> dict:
    logs = np.array([_log_mpp(f) for f in per_tile], float)
    ok = np.isfinite(logs)
    objects = int(sum(f["objects"] for f in per_tile))
    if not ok.any():
        return {"mpp": None, "mpp_raw": None, "confidence": 0.0, "magnification": "unknown", "tiles": len(per_tile),
                "objects": objects, "method": "nuclei-size", "reason": "no nuclei found to measure"}
    raw = float(math.exp(np.median(logs[ok])))
    raw = min(max(raw, 0.08), 3.0)
    snapped, off = _snap(raw)
    spread = float(np.std(logs[ok]) / math.log(2)) if ok.sum() > 1 else 0.0
    conf = max(0.0, 1.0 - 2.0 * off) * max(0.0, 1.0 - spread) * min(1.0, objects / 30.0)
    # Close to a standard resolution: use it. Half-way between two (a factor-2 error either
    # way would cost more than the estimate's own error): keep the continuous estimate.
    use = snapped if off <= SNAP_OCTAVES else raw
    return {"mpp": round(use, 4), "mpp_raw": round(raw, 4), "snapped": off <= SNAP_OCTAVES,
            "confidence": round(conf, 3),
            "magnification": STANDARD_MPP[snapped], "tiles": int(ok.sum()), "objects": objects,
            "octaves_from_standard": round(off, 3), "tile_spread_octaves": round(spread, 3),
            "method": "nuclei-size (LoG scale spectrum + inscribed radius of hematoxylin objects)"}


def estimate_mpp_array(rgb: np.ndarray) -> dict:
    """Estimate the µm/px of an in-memory RGB array (see :func:`estimate_mpp` for the result)."""
    from engine.tasks.nuclei.stain import hematoxylin

    rgb = np.asarray(rgb)
    tiles = []
    rows, cols = rgb.shape[:2]
    for y in range(0, rows, 2 * TILE):
        for x in range(0, cols, 2 * TILE):
            tiles.append(scale_features(hematoxylin(rgb[y:y + 2 * TILE, x:x + 2 * TILE])))
    return _combine(tiles)


def estimate_mpp(data, roi=None) -> dict:
    """Estimate the µm/px of a histology :class:`engine.data.Image` from its nuclei.

    Reads at most :data:`MAX_TILES` level-0 tiles of :data:`TILE` px, chosen where the
    coarsest level shows the most hematoxylin (within *roi*, ``(x, y, w, h)``, if given).

    Returns
    -------
    dict
        ``mpp`` (the standard pixel size used), ``mpp_raw`` (the continuous estimate),
        ``magnification`` (e.g. ``"40x"``), ``confidence`` in [0, 1], ``tiles``,
        ``objects`` (hematoxylin objects measured), ``method``; ``mpp`` is None when
        no nuclei were found.
    """
    from engine.tasks.nuclei.stain import hematoxylin

    rows, cols = int(data.shape[0]), int(data.shape[1])
    rx, ry, rw, rh = roi if roi is not None else (0, 0, cols, rows)
    if rw * rh <= (2 * TILE) ** 2:
        return estimate_mpp_array(np.asarray(data.read_region(0, rx, ry, rw, rh))[..., :3])
    # choose tiles on the coarsest level: the most hematoxylin per tile
    levels = list(data.levels or ((rows, cols),))
    ds = list(data.downsamples or [1.0] * len(levels))
    lv = int(np.argmax(ds))
    if levels[lv][0] * levels[lv][1] > 4096 * 4096:
        lv = 0
    d = float(ds[lv])
    if lv == 0 or d < 4:
        starts = [(x, y) for y in range(ry, ry + rh - TILE + 1, max(TILE, (rh - TILE) // 2 or TILE))
                  for x in range(rx, rx + rw - TILE + 1, max(TILE, (rw - TILE) // 2 or TILE))][:MAX_TILES]
    else:
        x0, y0 = int(rx / d), int(ry / d)
        w0, h0 = max(1, int(rw / d)), max(1, int(rh / d))
        thumb = hematoxylin(np.asarray(data.read_region(lv, x0, y0, w0, h0))[..., :3])
        k = max(1, int(TILE / d))
        cand = []
        for ty in range(0, max(1, h0 - k + 1), k):
            for tx in range(0, max(1, w0 - k + 1), k):
                cand.append((float(thumb[ty:ty + k, tx:tx + k].mean()), tx, ty))
        cand.sort(reverse=True)
        starts = [(rx + int(tx * d), ry + int(ty * d)) for _, tx, ty in cand[:MAX_TILES]]
    feats = []
    for x, y in starts or [(rx, ry)]:
        w, h = min(TILE, rx + rw - x), min(TILE, ry + rh - y)
        feats.append(scale_features(hematoxylin(np.asarray(data.read_region(0, x, y, w, h))[..., :3])))
    return _combine(feats)
