"""CT display windows (level/width in Hounsfield units) as data, and the windowing function.

The presets are the usual clinical values; a window shows ``[level - width/2,
level + width/2]`` HU as black to white.

>>> WINDOW_PRESETS["lung"]
(-600.0, 1500.0)
>>> apply_window(np.array([-1000.0, 40.0, 1000.0]), 40, 400).tolist()
[0.0, 0.5, 1.0]
"""
from __future__ import annotations

import numpy as np

__all__ = ["WINDOW_PRESETS", "window_range", "apply_window", "preset"]

#: name -> (level, width) in HU.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
    "abdomen": (40.0, 400.0),
    "liver": (60.0, 160.0),
}


def preset(name: str) -> tuple[float, float]:
    """The ``(level, width)`` of a preset; an unknown name lists the valid ones."""
    try:
        return WINDOW_PRESETS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown CT window {name!r}; valid: {', '.join(WINDOW_PRESETS)}") from None


def window_range(level: float, width: float) -> tuple[float, float]:
    """The HU shown as black and as white: ``(level - width/2, level + width/2)``."""
    if not width > 0:
        raise ValueError(f"window width must be positive, got {width}")
    return float(level) - float(width) / 2.0, float(level) + float(width) / 2.0


def apply_window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Map HU linearly to display values in ``[0, 1]`` (float32), clipping outside the window.

    Parameters
    ----------
    hu : array_like
        Hounsfield units, any shape.
    level, width : float
        Window centre and width in HU (``width > 0``).
    """
    lo, hi = window_range(level, width)
    out = (np.asarray(hu, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out).astype(np.float32, copy=False)
