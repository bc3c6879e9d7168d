"""What the signal viewer draws over the traces: per-channel anomaly bands and annotation markers."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF

from desktop.session import OverlaySettings
from desktop.views.overlays import heat_rgba

__all__ = ["draw_heat", "annotation_lines", "annotations_on_page", "marker_line", "set_marker_text", "fmt_time",
           "replace_items", "MAX_MARKERS_PER_PAGE", "MAX_HEAT_COLUMNS"]

MAX_MARKERS_PER_PAGE = 150
MAX_HEAT_COLUMNS = 2000


def replace_items(plot, old, new=()) -> list:
    """Take the items *old* off *plot*, put *new* on it, and return *new* as a list (the new holder)."""
    for item in old:
        plot.removeItem(item)
    new = list(new)
    for item in new:
        plot.addItem(item)
    return new


def fmt_time(t: float) -> str:
    """``mm:ss.s`` or ``hh:mm:ss.s``."""
    t = max(0.0, t)
    h, rem = divmod(t, 3600)
    m, s = divmod(rem, 60)
    return f"{int(h):02d}:{int(m):02d}:{s:04.1f}" if h else f"{int(m):02d}:{s:04.1f}"


def draw_heat(item: pg.ImageItem, anomaly: np.ndarray | None, signal, s0: int, s1: int, vis: list[int],
              overlay: OverlaySettings) -> None:
    """Each visible channel's anomaly on the page ``[s0, s1)`` as a coloured band behind its lane.

    Lane *k* is centred on ``y = -k``; the anomaly is on the calibrated fixed scale, block-max
    downsampled to at most :data:`MAX_HEAT_COLUMNS` columns so peaks stay visible.
    """
    if anomaly is None or not vis or not overlay.visible or s1 <= s0:
        item.clear()
        return
    n = signal.n_samples
    a0 = int(s0 * anomaly.shape[1] / n)
    a1 = max(a0 + 1, int(np.ceil(s1 * anomaly.shape[1] / n)))
    rows = anomaly[[min(c, anomaly.shape[0] - 1) for c in vis], a0:a1]
    step = max(1, rows.shape[1] // MAX_HEAT_COLUMNS)
    if step > 1:
        m = rows.shape[1] // step * step
        rows = rows[:, :m].reshape(len(vis), -1, step).max(axis=2)
    item.setImage(heat_rgba(rows[::-1], overlay), autoLevels=False, levels=(0, 255))
    sf = signal.sfreq
    # after setImage: row 0 (the last visible channel) sits lowest, at y = -(len(vis) - 1)
    item.setRect(QRectF(s0 / sf, -len(vis) + 0.5, (s1 - s0) / sf, len(vis)))


def annotations_on_page(annotations, t0: float, t1: float) -> list:
    """The annotations with onsets in ``[t0, t1)``, thinned to at most MAX_MARKERS_PER_PAGE."""
    anns = [a for a in annotations if t0 <= a.onset < t1]
    if len(anns) > MAX_MARKERS_PER_PAGE:
        anns = anns[:: int(np.ceil(len(anns) / MAX_MARKERS_PER_PAGE))]
    return anns


def _label_format(text: str) -> str:
    # pyqtgraph formats the label with str.format(value=...): braces in a description stay text
    return text.replace("{", "{{").replace("}", "}}")


def marker_line(onset: float, text: str) -> pg.InfiniteLine:
    """A vertical annotation marker at *onset* (s) labelled *text* (it always has a label item,
    so that a kept line can be relabelled)."""
    return pg.InfiniteLine(pos=onset, angle=90, movable=False, pen=pg.mkPen((40, 110, 230, 160), width=1),
                           label=_label_format(text),
                           labelOpts={"position": 0.97, "color": (20, 80, 200),
                                      # text just right of the line: centred, the line struck
                                      # through it and a label at the page start was cut in half
                                      "anchors": [(-0.05, 0), (-0.05, 0)]})


def set_marker_text(line: pg.InfiniteLine, text: str) -> None:
    """Relabel a marker made by :func:`marker_line` (nothing happens when the text is the same)."""
    fmt = _label_format(text)
    if line.label.format != fmt:
        line.label.setFormat(fmt)


def annotation_lines(annotations, t0: float, t1: float) -> list[pg.InfiniteLine]:
    """Vertical labelled lines for the annotations in ``[t0, t1)`` (at most MAX_MARKERS_PER_PAGE)."""
    return [marker_line(a.onset, (a.description or "").strip()[:12]) for a in annotations_on_page(annotations, t0, t1)]
