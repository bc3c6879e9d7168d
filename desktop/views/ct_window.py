"""CT window/level helpers for the slice view: the preset names, the mouse drag, the
preset box label (no widgets)."""
from __future__ import annotations

from engine.ct_windows import WINDOW_PRESETS

__all__ = ["window_presets", "file_window", "drag_window", "preset_label", "DRAG_PIXELS_PER_WIDTH", "CUSTOM", "FROM_FILE"]

#: A drag over this many screen pixels changes the level (vertical) by one window width and the
#: width (horizontal) by the width itself: the step per pixel scales with the width, as in
#: Weasis and 3D Slicer (1 HU/px in a 400 HU window, 3.75 HU/px in the lung window).
DRAG_PIXELS_PER_WIDTH = 400.0
#: The preset box's label for a window set by hand / the series' own window.
CUSTOM, FROM_FILE = "Custom", "From file"
_MIN_WIDTH = 1.0


def window_presets() -> dict[str, tuple[float, float]]:
    """The preset box's entries: label -> (level, width) in HU, exactly :data:`engine.ct_windows.WINDOW_PRESETS`."""
    return {name.capitalize(): (float(lw[0]), float(lw[1])) for name, lw in WINDOW_PRESETS.items()}


def drag_window(level: float, width: float, dx: float, dy: float) -> tuple[float, float]:
    """The (level, width) after a drag of (*dx*, *dy*) screen pixels: right widens, up raises the level.

    >>> drag_window(40.0, 400.0, 10.0, -5.0)
    (45.0, 410.0)
    """
    step = max(width, _MIN_WIDTH) / DRAG_PIXELS_PER_WIDTH
    return level - dy * step, max(_MIN_WIDTH, width + dx * step)


def preset_label(level: float, width: float, presets: dict, *, current: str = "",
                 file_window: tuple[float, float] | None = None) -> str:
    """The preset box's text for a window: *current* or the first preset with these values,
    else :data:`FROM_FILE` (the series' own window) or :data:`CUSTOM`."""
    def same(lw) -> bool:
        return lw is not None and abs(lw[0] - level) < 1e-6 and abs(lw[1] - width) < 1e-6

    if current in presets and same(presets[current]):
        return current
    for name, lw in presets.items():
        if same(lw):
            return name
    return FROM_FILE if same(file_window) else CUSTOM


def file_window(data) -> tuple[float, float] | None:
    """The series' own window (DICOM WindowCenter/WindowWidth, first value) or None."""
    md = getattr(data, "metadata", {}) or {}
    try:
        c, w = md.get("window_center"), md.get("window_width")
        if c is not None and w is not None:
            c = float(c[0] if isinstance(c, (list, tuple)) else c)
            w = float(w[0] if isinstance(w, (list, tuple)) else w)
            if w > 1:
                return c, w
    except (TypeError, ValueError):
        pass
    return None
