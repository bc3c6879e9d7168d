"""Nucleus outlines: a seeded watershed of the hematoxylin channel around each detected centre.

Works at the model's resolution (the rescaled tile the detector saw), so every bound is
in microns: each nucleus grows from its detected peak over the hematoxylin-positive
pixels (Otsu threshold of the smoothed hematoxylin optical density, never below a floor
so that a tile without nuclei grows nothing), downhill in hematoxylin from the seed, and
never farther than :data:`MAX_RADIUS_UM` from it. A nucleus that the threshold misses
keeps a small disk (:data:`MIN_RADIUS_UM`) so that every detection has an outline.

The result per nucleus is its pixel area and one polygon (``(K, 2)`` x, y), traced
around the label with :func:`skimage.measure.find_contours` and simplified within
half a pixel (Douglas-Peucker, :func:`cv2.approxPolyDP`).
"""
from __future__ import annotations

import numpy as np

__all__ = ["outline_nuclei", "approximate_polygon", "MAX_RADIUS_UM", "MIN_RADIUS_UM", "H_FLOOR"]

#: A nucleus reaches at most this far from its centre (microns): a 14 µm wide nucleus fits.
MAX_RADIUS_UM = 7.0
#: Every detection keeps at least a disk of this radius (microns).
MIN_RADIUS_UM = 1.5
#: The hematoxylin threshold never drops below this optical density (skimage units).
H_FLOOR = 0.04


def approximate_polygon(coords: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker simplification, the same as :func:`skimage.measure.approximate_polygon`.

    skimage runs numpy on every segment; an outline has some 20-80 vertices, where numpy's
    per-call overhead was more than half of the outline time (5.1 s of 9.4 s on a 2000^2 region).
    This does the same arithmetic on Python floats (same formulas, same order, same ties:
    the first farthest point wins), so it keeps exactly the vertices skimage keeps.
    """
    import math

    coords = np.asarray(coords)
    if tolerance <= 0:
        return coords
    pts = coords.tolist()
    n = len(pts)
    chain = [False] * n
    chain[0] = chain[-1] = True
    stack = [(0, n - 1)]
    while stack:
        start, end = stack.pop()
        if end - start < 2:  # no point in between: nothing to test (skimage finds none either)
            continue
        r0, c0 = pts[start]
        r1, c1 = pts[end]
        dr, dc = r1 - r0, c1 - c0
        angle = -np.arctan2(dr, dc)  # numpy's, not math's: the same rounding as skimage
        cos_a, sin_a = float(np.cos(angle)), float(np.sin(angle))
        seg = c0 * sin_a + r0 * cos_a
        best, best_d = -1, -math.inf
        for k in range(start + 1, end):
            r, c = pts[k]
            dr0, dc0, dr1, dc1 = r - r0, c - c0, r - r1, c - c1
            if dr0 * dr + dc0 * dc > 0 and -dr1 * dr - dc1 * dc > 0:
                d = abs(r * cos_a + c * sin_a - seg)
            else:
                d = min(math.sqrt(dc0 * dc0 + dr0 * dr0), math.sqrt(dc1 * dc1 + dr1 * dr1))  # numpy's x**2
            if d > best_d:
                best, best_d = k, d
        if best >= 0 and best_d > tolerance:
            stack.append((best, end))
            stack.append((start, best))
            chain[best] = True
    return coords[np.asarray(chain)]


def _simplify(c: np.ndarray, tolerance: float, closed: bool) -> np.ndarray:
    """Douglas-Peucker within *tolerance* by OpenCV's :func:`cv2.approxPolyDP` (C; the Python
    :func:`approximate_polygon` was half of the outline time). A closed ring (first vertex not
    repeated) is simplified as a ring, so OpenCV may choose another starting vertex than skimage;
    the outlines agree (per-nucleus IoU, README "Performance (issue 21)")."""
    import cv2

    # half-pixel grid coordinates are exact in float32 (outlines are at most some 100 px wide)
    out = cv2.approxPolyDP(np.ascontiguousarray(c, np.float32).reshape(-1, 1, 2), float(tolerance), closed)
    return out.reshape(-1, 2).astype(np.float64)


def outline_nuclei(rgb: np.ndarray, xy: np.ndarray, *, mpp: float, hematoxylin_od: np.ndarray | None = None,
                   simplify: float = 0.5, select: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Areas (pixels) and polygons of the nuclei centred at *xy* in an RGB array.

    Parameters
    ----------
    rgb : (rows, cols, 3) uint8
        The image the centres are in (normally at the model's resolution).
    xy : (N, 2) float
        Nucleus centres, x = column, y = row, in *rgb*'s pixels.
    mpp : float
        Microns per pixel of *rgb* (sets the radius bounds and the smoothing).
    hematoxylin_od : (rows, cols) float, optional
        Precomputed hematoxylin optical density of *rgb*.
    select : (N,) bool, optional
        Outline only these nuclei (every centre still seeds the watershed, so each selected
        region is bounded by all its neighbours exactly as without *select*). Tiled detection
        passes the nuclei its tile core owns, so the context margin is not traced twice.

    Returns
    -------
    area_px : (N,) or (select.sum(),) float64
        Pixels in each (selected) nucleus's region.
    polygons : list of (K, 2) float64
        Closed outline of each (selected) nucleus (first vertex not repeated), x, y in *rgb*'s pixels.
    """
    from scipy import ndimage as ndi
    from skimage.filters import threshold_otsu
    from skimage.measure import find_contours
    from skimage.measure import label as skimage_label
    from skimage.segmentation import watershed

    from engine.tasks.nuclei.stain import hematoxylin

    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    n = len(xy)
    chosen = np.arange(n) if select is None else np.flatnonzero(np.asarray(select, bool).reshape(n))
    if len(chosen) == 0:
        return np.zeros(0), []
    h = hematoxylin(rgb) if hematoxylin_od is None else np.asarray(hematoxylin_od, np.float32)
    rows, cols = h.shape
    hs = ndi.gaussian_filter(h.astype(np.float32), max(0.5, 0.5 / mpp))
    try:
        thr = float(threshold_otsu(hs[hs > H_FLOOR * 0.5])) if (hs > H_FLOOR * 0.5).sum() > 64 else H_FLOOR
    except ValueError:
        thr = H_FLOOR
    fg = hs > max(thr, H_FLOOR)
    fg = ndi.binary_opening(fg, iterations=1)
    markers = np.zeros((rows, cols), np.int32)
    rc = np.clip(np.round(xy[:, ::-1]).astype(int), 0, [rows - 1, cols - 1])
    markers[rc[:, 0], rc[:, 1]] = np.arange(1, n + 1)
    # distance to the nearest seed bounds every region; a small disk keeps every seed alive
    dist = ndi.distance_transform_edt(markers == 0)
    r_max, r_min = MAX_RADIUS_UM / mpp, MIN_RADIUS_UM / mpp
    mask = (fg & (dist <= r_max)) | (dist <= r_min)
    labels = watershed(-hs, markers, mask=mask)
    # keep, per label, only the part connected to its seed, and the seed's nearest-neighbour bound
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:].astype(np.float64)
    polys: list[np.ndarray] = []
    objs = ndi.find_objects(labels, max_label=n)
    # 4-connected pieces of every label at once (pixels join only pixels of the same label): only a
    # label in more than one piece needs its own ndi.label below, which finds the same pieces (its
    # bounding box holds all of its pixels)
    parts = skimage_label(labels, background=0, connectivity=1)
    label_of_part = np.zeros(int(parts.max()) + 1, np.int64)
    label_of_part[parts.ravel()] = labels.ravel()
    split = np.bincount(label_of_part[1:], minlength=n + 1) > 1
    for i in chosen:
        sl = objs[i]
        if sl is None:
            x, y = xy[i]
            t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
            polys.append(np.stack([x + r_min * np.cos(t), y + r_min * np.sin(t)], 1))
            areas[i] = np.pi * r_min ** 2
            continue
        y0, x0 = max(sl[0].start - 1, 0), max(sl[1].start - 1, 0)
        y1, x1 = min(sl[0].stop + 1, rows), min(sl[1].stop + 1, cols)
        sub = labels[y0:y1, x0:x1] == i + 1
        lab, k = ndi.label(sub) if split[i + 1] else (None, 1)
        if k > 1:  # a region split by its neighbours: keep the piece holding the seed (else the largest)
            sr, sc = rc[i, 0] - y0, rc[i, 1] - x0
            keep = lab[sr, sc] if lab[sr, sc] else int(np.argmax(np.bincount(lab.ravel())[1:]) + 1)
            sub = lab == keep
            areas[i] = float(sub.sum())
        pad = np.zeros((sub.shape[0] + 2, sub.shape[1] + 2), np.float32)
        pad[1:-1, 1:-1] = sub
        cs = find_contours(pad, 0.5)
        c = max(cs, key=len) if cs else np.zeros((0, 2))
        # a closed contour repeats its first vertex exactly (its points lie on the half-pixel grid)
        closed = len(c) > 1 and c[0, 0] == c[-1, 0] and c[0, 1] == c[-1, 1]
        if len(c) >= 4 and simplify > 0:
            s = _simplify(c[:-1] if closed else c, simplify, closed)
            # a one-pixel-wide sliver collapses to a line in OpenCV: keep skimage's (a thin polygon)
            c = s if len(s) >= 3 else approximate_polygon(c, tolerance=simplify)
        if len(c) > 1 and c[0, 0] == c[-1, 0] and c[0, 1] == c[-1, 1]:
            c = c[:-1]
        # contour (row, col) in padded sub coordinates -> x, y in rgb pixels
        polys.append(np.stack([c[:, 1] - 1 + x0, c[:, 0] - 1 + y0], 1) if len(c) else xy[i:i + 1].copy())
    return areas[chosen], polys
