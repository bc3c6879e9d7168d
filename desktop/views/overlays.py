"""Overlay drawing shared by the views: the anomaly heat-map on its fixed scale, markers.

The heat-map is computed here as an RGBA array so that colormap, opacity and
threshold behave the same in every view.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from desktop.session import ANOMALY_DISPLAY_MAX, OverlaySettings

__all__ = ["COLORMAPS", "lut", "heat_rgba", "gray_rgb", "downsample_for_display",
           "MAX_OVERLAY_PIXELS"]

#: Colormaps offered for the anomaly overlay (all bundled with pyqtgraph).
COLORMAPS = ("inferno", "magma", "plasma", "viridis", "turbo", "CET-L3")

#: Overlays bigger than this are shown downsampled (a slide-sized map is never drawn whole).
MAX_OVERLAY_PIXELS = 4096 * 4096


@lru_cache(maxsize=16)
def lut(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table for colormap *name*."""
    import pyqtgraph as pg

    try:
        cmap = pg.colormap.get(name)
    except Exception:  # noqa: BLE001 - unknown names fall back to inferno
        cmap = pg.colormap.get("inferno")
    table = cmap.getLookupTable(0.0, 1.0, 256, alpha=False)
    return np.ascontiguousarray(np.asarray(table, dtype=np.uint8)[:, :3])


def heat_rgba(anomaly: np.ndarray, overlay: OverlaySettings,
              vmax: float = ANOMALY_DISPLAY_MAX) -> np.ndarray:
    """Map a 2-D anomaly array on the calibrated scale to RGBA uint8.

    The colour spans ``0..vmax`` whatever the image (never auto-scaled); pixels
    below ``overlay.threshold`` are transparent and the rest use ``overlay.opacity``.
    """
    a = np.nan_to_num(np.asarray(anomaly, dtype=np.float32), nan=0.0)
    idx = np.clip(a / vmax * 255.0, 0, 255).astype(np.uint8)
    rgba = np.empty(a.shape + (4,), np.uint8)
    rgba[..., :3] = lut(overlay.colormap)[idx]
    alpha = int(round(255 * float(np.clip(overlay.opacity, 0.0, 1.0))))
    rgba[..., 3] = np.where(a >= overlay.threshold, alpha, 0).astype(np.uint8)
    return rgba


def gray_rgb(anomaly: np.ndarray, overlay: OverlaySettings, vmax: float = ANOMALY_DISPLAY_MAX) -> np.ndarray:
    """The anomaly as an opaque colour image (for the 'error' pane), same fixed scale."""
    a = np.nan_to_num(np.asarray(anomaly, dtype=np.float32), nan=0.0)
    idx = np.clip(a / vmax * 255.0, 0, 255).astype(np.uint8)
    return lut(overlay.colormap)[idx]


def downsample_for_display(arr: np.ndarray, max_pixels: int = MAX_OVERLAY_PIXELS) -> tuple[np.ndarray, int]:
    """Stride *arr* (rows, cols, ...) so it has at most *max_pixels*; return it and the step."""
    step = 1
    while (arr.shape[0] // step) * (arr.shape[1] // step) > max_pixels:
        step *= 2
    return (arr[::step, ::step] if step > 1 else arr), step
