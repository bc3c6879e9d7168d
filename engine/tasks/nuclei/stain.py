"""H&E stain helpers: colour deconvolution and Reinhard colour normalisation.

Colour deconvolution uses the Ruifrok & Johnston stain vectors as in
:func:`skimage.color.rgb2hed`; optical densities are in skimage's units
(``-log(I) / -log(1e-6)`` per channel, so about 0.05-0.2 for hematoxylin in nuclei).
"""
from __future__ import annotations

import numpy as np

__all__ = ["hematoxylin", "rgb_to_hed", "reinhard_normalize"]


def _as_rgb_float(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"expected an RGB(A) image (rows, cols, 3|4), got shape {rgb.shape}")
    rgb = rgb[..., :3]
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    return rgb.astype(np.float32)


def rgb_to_hed(rgb: np.ndarray) -> np.ndarray:
    """Hematoxylin, eosin, DAB optical densities ``(rows, cols, 3)`` float32 (as skimage.color.rgb2hed).

    *rgb* is uint8 (0-255) or float in [0, 1].

    >>> px = np.array([[[255, 255, 255]]], np.uint8)  # white background: no stain
    >>> float(abs(rgb_to_hed(px)).max()) < 1e-6
    True
    """
    from skimage.color import hed_from_rgb

    x = np.maximum(_as_rgb_float(rgb), 1e-6)
    od = np.log(x) / np.log(1e-6)
    return np.maximum(od @ hed_from_rgb.astype(np.float32), 0.0)


def hematoxylin(rgb: np.ndarray) -> np.ndarray:
    """The hematoxylin optical density ``(rows, cols)`` float32 (>= 0; nuclei are high)."""
    from skimage.color import hed_from_rgb

    x = np.maximum(_as_rgb_float(rgb), 1e-6)
    od = np.log(x) / np.float32(np.log(1e-6))
    return np.maximum(od @ hed_from_rgb[:, 0].astype(np.float32), 0.0)


def reinhard_normalize(rgb: np.ndarray, *, target_mean=(66.0, 18.0, -12.0), target_std=(15.0, 9.0, 7.0),
                       mask_background: bool = True) -> np.ndarray:
    """Reinhard colour normalisation in CIE Lab to a target mean/std; returns uint8 RGB.

    Statistics are taken over tissue pixels (Lab L < 90) when *mask_background* is set,
    so white background does not dominate.
    """
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(_as_rgb_float(rgb))
    sel = lab[..., 0] < 90 if mask_background else np.ones(lab.shape[:2], bool)
    if sel.sum() < 100:
        sel = np.ones(lab.shape[:2], bool)
    mean = lab[sel].mean(0)
    std = lab[sel].std(0) + 1e-6
    out = (lab - mean) / std * np.asarray(target_std) + np.asarray(target_mean)
    rgb_out = lab2rgb(out)
    return np.clip(np.round(rgb_out * 255), 0, 255).astype(np.uint8)
