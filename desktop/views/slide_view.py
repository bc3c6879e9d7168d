"""Histology view: zoom and pan over large images read lazily, tile by tile.

The pyramid level is chosen from the zoom; only the tiles in view are read (through
``Image.read_region``) and kept in a small LRU cache, so a whole slide is never held
in memory. A scale bar in µm is shown when the microns-per-pixel are known.
Detections, the anomaly heat-map and the reconstruction are drawn as layers.

Nucleus detections are drawn with a level of detail: when more than
:data:`LOD_MAX_MARKERS` would be in view, or they would be closer than
:data:`LOD_MIN_SPACING` screen pixels on average, a density heat-map (nuclei per
bin, the whole image) replaces the markers; zoomed in, only the markers in view are
drawn. The **Region** button lets the user drag a rectangle that limits the next
detection (``Session.roi``). A banner (:mod:`desktop.views.scale_banner`) says when
the pixel size was estimated from the image and asks to confirm or set it.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QCheckBox, QGraphicsRectItem, QHBoxLayout, QLabel, QToolButton, QWidget

from desktop.presenters import presenter_for
from desktop.session import Session
from desktop.views.image_pane import ImagePane, lay_out_compare
from desktop.views.overlays import downsample_for_display, gray_rgb, heat_rgba
from desktop.views.scale_banner import ScaleBanner
from desktop.views.slide_nuclei import LOD_MAX_MARKERS, NucleusLayer, density_rgba
from desktop.views.scales import nice_length

__all__ = ["SlideView", "ScaleBar", "nice_length", "choose_level", "density_rgba", "LOD_MAX_MARKERS"]

TILE = 512
MAX_TILES_IN_VIEW = 48
MAX_LOADS_PER_PASS = 6  # tiles read per event-loop pass (keeps the UI responsive)
CACHE_TILES = 160
MAX_BACKGROUND_PIXELS = 2048 * 2048
def choose_level(downsamples, level0_px_per_screen_px: float) -> int:
    """The coarsest level that still has at least one pixel per screen pixel."""
    best = 0
    for i, ds in enumerate(downsamples):
        if ds <= max(1.0, level0_px_per_screen_px) * 1.001:
            best = i if ds >= downsamples[best] else best
    return best


class ScaleBar(QWidget):
    """A white bar with its length in µm (or mm), drawn over the image."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.bar_px, self.text = 0, ""
        self.setFixedHeight(30)

    def set_scale(self, um_per_screen_px: float | None) -> None:
        if not um_per_screen_px or um_per_screen_px <= 0 or not math.isfinite(um_per_screen_px):
            self.setVisible(False)
            return
        um = nice_length(120 * um_per_screen_px)
        self.bar_px = int(round(um / um_per_screen_px))
        self.text = f"{um / 1000:g} mm" if um >= 1000 else f"{um:g} µm"
        self.setFixedWidth(max(self.bar_px, 60) + 12)
        self.setVisible(True)
        self.update()

    def paintEvent(self, ev):  # noqa: N802 - Qt override
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(0, 0, 0, 110))
        p.setPen(QPen(QColor("white"), 3))
        x0 = self.width() - 6 - self.bar_px
        p.drawLine(x0, self.height() - 7, self.width() - 6, self.height() - 7)
        p.setPen(QColor("white"))
        p.drawText(self.rect().adjusted(0, 1, -6, -10), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
                   self.text)
        p.end()


class SlideView(NucleusLayer, QWidget):
    """Tile-based viewer for a histology :class:`engine.data.Image`."""

    statusMessage = Signal(str)
    #: The user asks to set the image scale (the suggested µm/px).
    scaleRequested = Signal(float)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.image = None
        self.levels: list[tuple[int, int]] = []
        self.downsamples: list[float] = []
        self.tiles: OrderedDict[tuple[int, int, int], pg.ImageItem] = OrderedDict()
        self.tile_reads = 0  # how many tiles were read (tests check laziness)
        self.current_level = 0
        self.anomaly: np.ndarray | None = None
        self.det_xy = np.zeros((0, 2))
        self.lod_mode = "none"  # "markers", "density" or "none": what the nucleus layer shows now
        self.confirmed_mpp: float | None = None  # an estimated scale the user confirmed
        self._roi_start = None
        self._timer = QTimer(self, singleShot=True, interval=40)
        self._timer.timeout.connect(self._update_tiles)
        self._more_tiles = QTimer(self, singleShot=True, interval=0)
        self._more_tiles.timeout.connect(self._update_tiles)
        self._build()
        session.dataChanged.connect(self._on_data)
        session.resultAdded.connect(self._on_result)
        session.resultsCleared.connect(self._clear_results)
        session.overlayChanged.connect(self._draw_overlay)
        session.focusRequested.connect(self.centre_on)
        if hasattr(session, "roiChanged"):
            session.roiChanged.connect(self._draw_roi)

    def _build(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        self.fit_btn = QToolButton(text="Fit")
        self.fit_btn.setToolTip("Show the whole image")
        self.fit_btn.clicked.connect(self.fit)
        self.one_btn = QToolButton(text="1:1")
        self.one_btn.setToolTip("One image pixel per screen pixel")
        self.one_btn.clicked.connect(self.actual_size)
        self.compare_box = QCheckBox("Compare")
        self.compare_box.setToolTip("Original, reconstruction and anomaly side by side (linked)")
        self.compare_box.setEnabled(False)
        self.compare_box.toggled.connect(self._on_compare)
        self.region_btn = QToolButton(text="Region")
        self.region_btn.setCheckable(True)
        self.region_btn.setToolTip("Drag a rectangle to limit nucleus detection to it "
                                   "(click again without dragging to use the whole image)")
        self.region_btn.toggled.connect(self._on_region_mode)
        self.level_label = QLabel("")
        for w in (self.fit_btn, self.one_btn, self.compare_box, self.region_btn):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.level_label)

        self.panes = [ImagePane("Original"), ImagePane("Reconstruction"), ImagePane("Anomaly")]
        self.vb = self.panes[0].vb
        self.vb.sigRangeChanged.connect(lambda *_: self._timer.start())
        self.scale_bar = ScaleBar(self.panes[0].view)
        self.panes[0].scale_bar = self.scale_bar
        self.background = pg.ImageItem()
        self.background.setZValue(-10)
        self.vb.addItem(self.background)
        self.heat = pg.ImageItem()
        self.heat.setZValue(20)
        self.vb.addItem(self.heat)
        self.markers = pg.ScatterPlotItem(pxMode=True, size=9, symbol="o",
                                          pen=pg.mkPen((0, 255, 90), width=1.6), brush=None)
        self.markers.setZValue(30)
        self.vb.addItem(self.markers)
        self.density = pg.ImageItem()
        self.density.setZValue(29)
        self.vb.addItem(self.density)
        self.roi_item = QGraphicsRectItem()
        pen = QPen(QColor(255, 200, 0), 2)
        pen.setCosmetic(True)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.roi_item.setPen(pen)
        self.roi_item.setZValue(40)
        self.roi_item.setVisible(False)
        self.vb.addItem(self.roi_item)
        self._vb_drag = self.vb.mouseDragEvent
        self.vb.mouseDragEvent = self._mouse_drag
        # the nucleus (or point) selected in the results table, as QuPath rings its selected object
        self.highlight = pg.ScatterPlotItem(pxMode=True, size=22, symbol="o",
                                            pen=pg.mkPen((255, 230, 0), width=3), brush=None)
        self.highlight.setZValue(31)
        self.vb.addItem(self.highlight)
        self.recon_item, self.error_item = pg.ImageItem(), pg.ImageItem()
        self.panes[1].vb.addItem(self.recon_item)
        self.panes[2].vb.addItem(self.error_item)
        for pane in self.panes:
            pane.hoveredPoint.connect(self._on_hover)
        self.grid = lay_out_compare(self, bar, self.panes)
        self.banner = ScaleBanner(self)
        self.layout().insertWidget(1, self.banner)
        self.banner.confirmed.connect(self._confirm_scale)
        self.banner.setScaleRequested.connect(self.scaleRequested.emit)

    # ---- data ------------------------------------------------------------------
    def _on_data(self) -> None:
        data = self.session.data
        self._drop_tiles()
        self.background.clear()
        if data is None or getattr(data, "modality", None) != "histology":
            self.image = None
            return
        self.image = data
        self.confirmed_mpp = None
        self.banner.clear()
        rows, cols = int(data.shape[0]), int(data.shape[1])
        self.levels = [tuple(map(int, lv)) for lv in (data.levels or ((rows, cols),))]
        self.downsamples = [float(d) for d in (data.downsamples or [1.0] * len(self.levels))]
        self._clear_results()
        coarse = int(np.argmax(self.downsamples))
        r, c = self.levels[coarse]
        if r * c <= MAX_BACKGROUND_PIXELS:
            arr = data.read_region(coarse, 0, 0, c, r)
            self.tile_reads += 1
            self.background.setImage(np.ascontiguousarray(arr[..., :3]), autoLevels=False, levels=(0, 255))
            self.background.setRect(QRectF(0, 0, cols, rows))
        mpp = data.mpp
        scale = f"  ({mpp:.3g} µm/px)" if mpp else "  (scale unknown: View › Set image scale)"
        self.panes[0].set_title(f"{cols} × {rows} px" + scale)
        self.fit()
        self._update_tiles()

    def _drop_tiles(self) -> None:
        for item in self.tiles.values():
            self.vb.removeItem(item)
        self.tiles.clear()

    def _on_result(self, task: str) -> None:
        entry = self.session.results.get(task)
        if self.image is not None and entry is not None:
            presenter_for(entry.result).draw_slide(self, entry)

    def show_reconstruction(self, recon, anomaly) -> None:
        """The anomaly heat-map (calibrated scale) and the reconstruction (RGB) as layers; enables Compare."""
        self.anomaly = np.asarray(anomaly, np.float32)
        if self.anomaly.ndim == 3:
            self.anomaly = self.anomaly.max(axis=-1) if self.anomaly.shape[-1] <= 4 else self.anomaly[0]
        rec, _ = downsample_for_display(np.asarray(recon))
        if rec.dtype != np.uint8:
            rec = np.clip(rec * (255.0 if rec.max() <= 1.5 else 1.0), 0, 255).astype(np.uint8)
        self.recon_item.setImage(np.ascontiguousarray(rec), autoLevels=False, levels=(0, 255))
        self._fit_item(self.recon_item)
        self.compare_box.setEnabled(True)
        self._draw_overlay()

    def _clear_results(self) -> None:
        self.markers.clear()
        self.density.clear()
        self.det_xy = np.zeros((0, 2))
        self.lod_mode = "none"
        self.banner.clear()
        self.highlight.clear()
        self.heat.clear()
        self.recon_item.clear()
        self.error_item.clear()
        self.anomaly = None
        self.compare_box.setChecked(False)
        self.compare_box.setEnabled(False)

    def _draw_overlay(self) -> None:
        ov = self.session.overlay
        self.markers.setVisible(ov.show_markers and self.lod_mode == "markers")
        self.density.setVisible(ov.show_markers and self.lod_mode == "density")
        if self.anomaly is None:
            return
        ano, _ = downsample_for_display(self.anomaly)
        if ov.visible:
            self.heat.setImage(heat_rgba(ano, ov), autoLevels=False, levels=(0, 255))
            self._fit_item(self.heat)
        else:
            self.heat.clear()
        self.error_item.setImage(gray_rgb(ano, ov), autoLevels=False, levels=(0, 255))
        self._fit_item(self.error_item)
        self.panes[2].set_info(f"0 … 2 (calibrated)   max {float(np.nanmax(self.anomaly)):.2f}")

    def _fit_item(self, item: pg.ImageItem) -> None:
        """Stretch a (possibly downsampled) layer over the whole image (after setImage)."""
        item.setRect(QRectF(0, 0, self.image.shape[1], self.image.shape[0]))

    # ---- navigation ----------------------------------------------------------------
    def fit(self) -> None:
        if self.image is not None:
            self.vb.setRange(QRectF(0, 0, self.image.shape[1], self.image.shape[0]), padding=0.02)

    def actual_size(self) -> None:
        if self.image is None:
            return
        (x0, x1), (y0, y1) = self.vb.viewRange()
        w, h = max(1, self.vb.width()), max(1, self.vb.height())
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        self.vb.setRange(QRectF(cx - w / 2, cy - h / 2, w, h), padding=0)

    def centre_on(self, x: float, y: float) -> None:
        """Centre the view on level-0 pixel (x, y), zooming in to about 400 px if far out."""
        if self.image is None:
            return
        (x0, x1), (y0, y1) = self.vb.viewRange()
        w, h = x1 - x0, y1 - y0
        if w > 600:
            scale = 400.0 / w
            w, h = w * scale, h * scale
        self.vb.setRange(QRectF(x - w / 2, y - h / 2, w, h), padding=0)
        self.highlight.setData(pos=np.array([[x, y]], float))

    def _on_compare(self, on: bool) -> None:
        for pane in self.panes[1:]:
            pane.setVisible(on)
        self._timer.start()

    def _px_per_screen(self) -> float:
        (x0, x1), _ = self.vb.viewRange()
        return (x1 - x0) / max(1.0, float(self.vb.width()))

    def _mpp(self) -> float | None:
        return (self.image.mpp if self.image is not None and self.image.mpp else None) or self.confirmed_mpp

    def _update_tiles(self) -> None:
        if self.image is None:
            return
        self._update_lod()
        px = self._px_per_screen()
        mpp = self._mpp()
        self.scale_bar.set_scale(px * mpp if mpp else None)
        self.panes[0]._place()
        level = choose_level(self.downsamples, px)
        (x0, x1), (y0, y1) = self.vb.viewRange()
        while True:
            ds = self.downsamples[level]
            rows, cols = self.levels[level]
            tx0, tx1 = max(0, int(x0 / ds) // TILE), min((cols - 1) // TILE, int(x1 / ds) // TILE)
            ty0, ty1 = max(0, int(y0 / ds) // TILE), min((rows - 1) // TILE, int(y1 / ds) // TILE)
            n = max(0, tx1 - tx0 + 1) * max(0, ty1 - ty0 + 1)
            coarser = [i for i, d in enumerate(self.downsamples) if d > ds]
            if n <= MAX_TILES_IN_VIEW or not coarser:
                break
            level = min(coarser, key=lambda i: self.downsamples[i])
        self.current_level = level
        self.level_label.setText(f"level {level} (×{self.downsamples[level]:g})   {1 / max(px, 1e-9):.2f}× zoom")
        # A small image shown whole as background needs no tiles at full view.
        if self.background.image is not None and self.downsamples[level] >= max(self.downsamples):
            self._show_only(set())
            return
        wanted = set()
        loaded = 0
        cx, cy = (x0 + x1) / 2 / ds / TILE, (y0 + y1) / 2 / ds / TILE
        keys = [(level, tx, ty) for ty in range(ty0, ty1 + 1) for tx in range(tx0, tx1 + 1)]
        keys.sort(key=lambda k: (k[1] + 0.5 - cx) ** 2 + (k[2] + 0.5 - cy) ** 2)  # centre first
        for key in keys:
            wanted.add(key)
            if key in self.tiles:
                self.tiles.move_to_end(key)
            elif loaded < MAX_LOADS_PER_PASS:
                self._load_tile(key, rows, cols, ds)
                loaded += 1
        self._show_only(wanted)
        if any(k not in self.tiles for k in wanted):
            # read the rest on the next pass, so the window keeps responding on slow slides
            self._more_tiles.start()

    def _load_tile(self, key, rows, cols, ds) -> None:
        level, tx, ty = key
        x, y = tx * TILE, ty * TILE
        w, h = min(TILE, cols - x), min(TILE, rows - y)
        arr = self.image.read_region(level, x, y, w, h)
        self.tile_reads += 1
        item = pg.ImageItem(np.ascontiguousarray(arr[..., :3]), autoLevels=False, levels=(0, 255))
        item.setRect(QRectF(x * ds, y * ds, w * ds, h * ds))
        item.setZValue(level * -0.01)  # finer levels above coarser ones
        self.vb.addItem(item)
        self.tiles[key] = item
        while len(self.tiles) > CACHE_TILES:
            _, old = self.tiles.popitem(last=False)
            self.vb.removeItem(old)

    def _show_only(self, wanted: set) -> None:
        for key, item in self.tiles.items():
            item.setVisible(key in wanted)

    def _on_hover(self, x: float, y: float) -> None:
        if self.image is None:
            return
        col, row = int(x), int(y)
        if not (0 <= row < self.image.shape[0] and 0 <= col < self.image.shape[1]):
            return
        msg = f"x {col}  y {row}"
        mpp = self._mpp()
        if mpp:
            msg += f"  ({col * mpp / 1000:.3f}, {row * mpp / 1000:.3f}) mm"
        if self.anomaly is not None:
            r = int(row * self.anomaly.shape[0] / self.image.shape[0])
            c = int(col * self.anomaly.shape[1] / self.image.shape[1])
            msg += f"   anomaly {float(self.anomaly[r, c]):.2f}"
        self.statusMessage.emit(msg)
