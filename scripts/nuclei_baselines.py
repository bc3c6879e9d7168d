"""Classical scikit-image nucleus detectors, the baselines of ``benchmarks/bench_nuclei.py``.

Both work on the hematoxylin optical density from colour deconvolution
(:func:`engine.tasks.nuclei.stain.hematoxylin`) and return ``(N, 2)`` ``(x, y)`` points in the
pixels of the array they are given.
"""
from __future__ import annotations

import numpy as np

from engine.tasks.nuclei.stain import hematoxylin

__all__ = ["log_blobs", "watershed_centroids", "H_SCALE"]

#: Hematoxylin OD that maps to 1.0 (nuclei are about 0.05-0.2 in skimage units).
H_SCALE = 0.15


def log_blobs(rgb: np.ndarray, *, min_sigma: float = 2.5, max_sigma: float = 6.0, num_sigma: int = 5,
              threshold: float = 0.05, overlap: float = 0.5) -> np.ndarray:
    """Laplacian-of-Gaussian blob centres on the hematoxylin channel (skimage.feature.blob_log)."""
    from skimage.feature import blob_log

    h = np.clip(hematoxylin(rgb) / H_SCALE, 0, 1)
    blobs = blob_log(h, min_sigma=min_sigma, max_sigma=max_sigma, num_sigma=num_sigma,
                     threshold=threshold, overlap=overlap, exclude_border=False)
    if len(blobs) == 0:
        return np.zeros((0, 2))
    return blobs[:, [1, 0]].astype(np.float64)


def watershed_centroids(rgb: np.ndarray, *, smooth: float = 1.0, min_distance: int = 4,
                        min_area: int = 20, offset: float = 0.0) -> np.ndarray:
    """Otsu mask of the hematoxylin channel, distance transform + marker watershed, region centroids."""
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian, threshold_otsu
    from skimage.measure import regionprops
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import watershed

    h = gaussian(np.clip(hematoxylin(rgb) / H_SCALE, 0, 1), sigma=smooth)
    mask = h > threshold_otsu(h) + offset
    mask = remove_small_objects(mask, max_size=min_area) if _new_rso() else remove_small_objects(mask, min_area)
    mask = ndimage.binary_fill_holes(mask)
    dist = ndimage.distance_transform_edt(mask)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=ndimage.label(mask)[0], exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    labels = watershed(-dist, markers, mask=mask)
    pts = [(r.centroid[1], r.centroid[0]) for r in regionprops(labels) if r.area >= min_area]
    return np.asarray(pts, dtype=np.float64).reshape(-1, 2)


def _new_rso() -> bool:
    import inspect

    from skimage.morphology import remove_small_objects

    return "max_size" in inspect.signature(remove_small_objects).parameters
