"""The nucleus layer of the slide view: level of detail (density map zoomed out, markers zoomed in),
the detection region drawn by the user, and the estimated-scale banner's answers.

:class:`NucleusLayer` is mixed into :class:`desktop.views.slide_view.SlideView`; it uses the view's
``vb``, ``markers``, ``density``, ``roi_item``, ``region_btn``, ``banner``, ``image`` and ``session``.
"""
from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, Qt

__all__ = ["NucleusLayer", "density_rgba", "LOD_MAX_MARKERS", "LOD_MIN_SPACING", "DENSITY_BINS"]

#: Level of detail of the nucleus layer: markers only while at most this many are in view ...
LOD_MAX_MARKERS = 5000
#: ... and they are on average at least this many screen pixels apart; else the density map.
LOD_MIN_SPACING = 6.0
#: The density map has at most this many bins along the image's longer side.
DENSITY_BINS = 512


def density_rgba(xy: np.ndarray, rows: int, cols: int, bins: int = DENSITY_BINS) -> tuple[np.ndarray, float]:
    """A heat-map ``(H, W, 4)`` uint8 of point density over a ``rows x cols`` image, and its bin size (px).

    Empty bins are transparent; the colour (yellow-green to red) and opacity rise with the
    count per bin, on a scale set by the 99th percentile of the non-empty bins.
    """
    size = max(1.0, math.ceil(max(rows, cols) / bins))
    nb_y, nb_x = max(1, int(math.ceil(rows / size))), max(1, int(math.ceil(cols / size)))
    xy = np.asarray(xy, float).reshape(-1, 2)
    counts, _, _ = np.histogram2d(xy[:, 1], xy[:, 0], bins=(nb_y, nb_x),
                                  range=((0, nb_y * size), (0, nb_x * size)))
    out = np.zeros((nb_y, nb_x, 4), np.uint8)
    nz = counts > 0
    if nz.any():
        top = max(1.0, float(np.percentile(counts[nz], 99)))
        t = np.clip(counts / top, 0, 1)
        out[..., 0] = np.round(255 * np.clip(0.2 + 1.6 * t, 0, 1))
        out[..., 1] = np.round(255 * np.clip(1.4 - 1.2 * t, 0, 1))
        out[..., 2] = 40
        out[..., 3] = np.where(nz, np.round(90 + 140 * t), 0).astype(np.uint8)
    return out, size


class NucleusLayer:
    """Nucleus drawing and the detection region (a mixin of the slide view)."""

    def show_markers(self, xy: np.ndarray, params: dict | None = None) -> None:
        """Nuclei at ``(N, 2)`` level-0 pixels (x = column, y = row): a density map when zoomed out,
        markers when zoomed in; the scale banner when the detection estimated the pixel size."""
        self.det_xy = np.asarray(xy, float).reshape(-1, 2)
        rows, cols = int(self.image.shape[0]), int(self.image.shape[1])
        if len(self.det_xy):
            rgba, size = density_rgba(self.det_xy, rows, cols)
            self.density.setImage(rgba, autoLevels=False, levels=(0, 255))
            self.density.setRect(QRectF(0, 0, rgba.shape[1] * size, rgba.shape[0] * size))
        else:
            self.density.clear()
        self.lod_mode = "none"
        self._update_lod(force=True)
        params = params or {}
        if params.get("mpp_source") == "estimated" and params.get("mpp_estimate"):
            self.banner.show_estimate(params["mpp_estimate"])
        else:
            self.banner.clear()

    # ---- nucleus layer: level of detail -------------------------------------------------
    def _update_lod(self, force: bool = False) -> None:
        """Markers for the detections in view when few and far enough apart, else the density map."""
        xy = self.det_xy
        if self.image is None or not len(xy):
            self.lod_mode = "none"
            self.markers.clear()
            self.markers.setVisible(False)
            self.density.setVisible(False)
            return
        (x0, x1), (y0, y1) = self.vb.viewRange()
        inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
        n = int(inside.sum())
        px = self._px_per_screen()
        # the view's part of the image, in screen pixels, per marker
        vis_w = max(0.0, min(x1, self.image.shape[1]) - max(x0, 0)) / max(px, 1e-9)
        vis_h = max(0.0, min(y1, self.image.shape[0]) - max(y0, 0)) / max(px, 1e-9)
        spacing = math.sqrt(vis_w * vis_h / n) if n else float("inf")
        mode = "markers" if n <= LOD_MAX_MARKERS and spacing >= LOD_MIN_SPACING else "density"
        if mode == "markers" and (force or mode != self.lod_mode or n != len(self.markers.data)):
            pts = xy[inside]
            self.markers.setData(pos=pts) if len(pts) else self.markers.clear()
        self.lod_mode = mode
        show = self.session.overlay.show_markers
        self.markers.setVisible(show and mode == "markers")
        self.density.setVisible(show and mode == "density")

    # ---- region of interest ------------------------------------------------------------
    def _on_region_mode(self, on: bool) -> None:
        self.vb.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        if on:
            self.statusMessage.emit("Drag a rectangle on the image to limit the detection to it")

    def _mouse_drag(self, ev, axis=None) -> None:
        """ViewBox drag: pans normally; in Region mode draws the detection rectangle."""
        if not self.region_btn.isChecked() or self.image is None:
            return self._vb_drag(ev, axis) if axis is not None else self._vb_drag(ev)
        ev.accept()
        p0 = self.vb.mapToView(ev.buttonDownPos())
        p1 = self.vb.mapToView(ev.pos())
        rect = QRectF(p0, p1).normalized()
        self.roi_item.setRect(rect)
        self.roi_item.setVisible(True)
        if ev.isFinish():
            self.set_roi(rect.x(), rect.y(), rect.width(), rect.height())
            self.region_btn.setChecked(False)

    def set_roi(self, x: float, y: float, w: float, h: float) -> tuple[int, int, int, int] | None:
        """Limit detection to a level-0 rectangle (clipped to the image); a tiny one clears it."""
        if self.image is None:
            return None
        rows, cols = int(self.image.shape[0]), int(self.image.shape[1])
        x0, y0 = max(0, int(math.floor(x))), max(0, int(math.floor(y)))
        x1, y1 = min(cols, int(math.ceil(x + w))), min(rows, int(math.ceil(y + h)))
        roi = (x0, y0, x1 - x0, y1 - y0) if x1 - x0 >= 8 and y1 - y0 >= 8 else None
        self.session.set_roi(roi)
        return roi

    def _draw_roi(self) -> None:
        roi = getattr(self.session, "roi", None)
        if roi is None or self.image is None:
            self.roi_item.setVisible(False)
            self.statusMessage.emit("Detection region cleared: the whole image")
            return
        x, y, w, h = roi
        self.roi_item.setRect(QRectF(x, y, w, h))
        self.roi_item.setVisible(True)
        self.statusMessage.emit(f"Detection region x {x}, y {y}, {w} × {h} px")

    def _confirm_scale(self, mpp: float) -> None:
        self.confirmed_mpp = float(mpp)
        self.panes[0].set_title(f"{self.image.shape[1]} × {self.image.shape[0]} px  ({mpp:.3g} µm/px, estimated "
                                "and confirmed)")
        self._update_tiles()
