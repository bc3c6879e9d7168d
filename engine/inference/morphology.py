"""Binary morphology and labelling of 2-D masks, exactly as scipy.ndimage computes them, by OpenCV.

The CT masks (body, lungs) open, erode and label a 512 x 512 plane several times; scipy's
binary erosion and labelling took ~0.6 s of a 77-plane series, OpenCV's ~10x less. Each
function here returns what the scipy call named in its docstring returns (default
structure: the cross, 4-connectivity; pixels outside the array count as background), checked
plane by plane on real CT in the tests. Masks that are not 2-D go to scipy.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["binary_erosion", "binary_opening", "label", "resize_linear", "squared_distance"]

#: OpenCV's image sides are C ints, but its remap-based kernels are only safe below this.
_CV_MAX_SIDE = 32767


def _cv_ok(a: np.ndarray) -> bool:
    return a.ndim == 2 and a.size > 0 and max(a.shape) < _CV_MAX_SIDE


def _cross():
    import cv2

    return cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def binary_erosion(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """``ndi.binary_erosion(mask, iterations=iterations)`` (cross, border background)."""
    mask = np.asarray(mask, bool)
    if not _cv_ok(mask) or iterations < 1:
        return ndi.binary_erosion(mask, iterations=iterations)
    import cv2

    out = cv2.erode(mask.view(np.uint8), _cross(), iterations=int(iterations),
                    borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return out.astype(bool)


def binary_opening(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """``ndi.binary_opening(mask, iterations=iterations)``: *iterations* erosions then as many dilations."""
    mask = np.asarray(mask, bool)
    if not _cv_ok(mask) or iterations < 1:
        return ndi.binary_opening(mask, iterations=iterations)
    import cv2

    k, n = _cross(), int(iterations)
    e = cv2.erode(mask.view(np.uint8), k, iterations=n, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return cv2.dilate(e, k, iterations=n, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def label(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """``ndi.label(mask)``: (labels, count), 4-connected components numbered 1.. in raster order."""
    mask = np.asarray(mask, bool)
    if not _cv_ok(mask):
        return ndi.label(mask)
    import cv2

    n, lab = cv2.connectedComponents(mask.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
    return lab, int(n) - 1


def squared_distance(x: np.ndarray) -> np.ndarray:
    """``np.rint(ndi.distance_transform_edt(x) ** 2)``: the squared Euclidean distance of every
    nonzero pixel of *x* to the nearest zero pixel, an integer (float64).

    OpenCV's exact transform (``DIST_MASK_PRECISE``, Felzenszwalb's algorithm) returns float32
    distances; squared and rounded they are the same integers while they stay below 2**22
    (relative error of a float32 square root ~6e-8), i.e. on any array under ~2000 px a side.
    """
    x = np.asarray(x, bool)
    if not (_cv_ok(x) and max(x.shape) < 2048 and not x.all()):
        return np.rint(ndi.distance_transform_edt(x) ** 2)
    import cv2

    d = cv2.distanceTransform(x.view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE).astype(np.float64)
    return np.rint(d * d)


def resize_linear(x: np.ndarray, shape) -> np.ndarray:
    """``ndi.zoom(x, order=1, mode="nearest", grid_mode=True)`` to exactly *shape*, float32.

    Both map pixel centres ``(i + 0.5) * in / out - 0.5`` and replicate the edges; OpenCV's
    bilinear resize computes it in float32 (scipy in float64: differences ~1e-7 relative), ~10x
    faster on a CT plane.
    """
    x = np.asarray(x, np.float32)
    shape = (int(shape[0]), int(shape[1]))
    if x.shape == shape:
        return x.copy()
    if not (_cv_ok(x) and max(shape) < _CV_MAX_SIDE and min(shape) > 0):
        f = (shape[0] / x.shape[0], shape[1] / x.shape[1])
        out = ndi.zoom(x, f, order=1, mode="nearest", grid_mode=True)
        return np.ascontiguousarray(out[: shape[0], : shape[1]], np.float32)
    import cv2

    return cv2.resize(np.ascontiguousarray(x), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
