"""CT slice view: axial, coronal and sagittal planes (multi-planar reformat), window/level by
mouse and presets, HU under the cursor, a scale bar and a ruler in mm, orientation labels,
and the reconstruction / anomaly layers.

Mouse: right-drag = window (horizontal) and level (vertical), a step proportional to the
width; wheel = slice; Ctrl+wheel = zoom; left-drag = pan (window/level with the W/L tool,
a distance with the Ruler tool). Keys: Up/Down, PageUp/PageDown, Home/End move through the
slices; Delete removes the rulers of the slice shown.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

from desktop.presenters import presenter_for
from desktop.session import Session
from desktop.views import ct_mpr
from desktop.views.anomaly_colorbar import AnomalyColorBar
from desktop.views.ct_hotspot import hottest_slice
from desktop.views.ct_mpr import orientation_labels
from desktop.views.ct_notice import SkippedBanner
from desktop.views.ct_ruler import RulerLayer, format_length
from desktop.views.ct_window import drag_window, file_window, preset_label, window_presets
from desktop.views.image_pane import ImagePane, lay_out_compare
from desktop.views.overlays import gray_rgb, heat_rgba
from desktop.views.slide_view import ScaleBar
from engine.ct_windows import preset

__all__ = ["CtView", "window_presets", "orientation_labels", "DEFAULT_WINDOW"]

#: The window a series without its own (DICOM WindowCenter/WindowWidth) opens in.
DEFAULT_WINDOW = "mediastinum"


class CtView(QWidget):
    """Slice viewer for a CT :class:`engine.data.Image` held in a :class:`Session`.

    :attr:`axis` is the view plane (the volume axis held fixed: 0 = the acquired slices) and
    :attr:`index` the slice shown in it.
    """

    statusMessage = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.data = None
        self.volume: np.ndarray | None = None
        self.spacing = (1.0, 1.0, 1.0)
        self.axis, self.index = 0, 0
        self._cursor = [0, 0, 0]  # the slice last shown in each plane
        self.plane_names = ct_mpr.DEFAULT_NAMES
        self.level, self.width = 40.0, 400.0
        self.file_window: tuple[float, float] | None = None
        self.presets = window_presets()
        self.recon: np.ndarray | None = None
        self.anomaly: np.ndarray | None = None
        self.anomaly_mask: np.ndarray | None = None
        self.result_title = ""  # the first pane's title while a result is drawn
        self.rect = QRectF(0, 0, 1, 1)
        self._hover: tuple[float, float] | None = None  # the last point under the mouse (view mm)
        self._build()
        session.dataChanged.connect(self._on_data)
        session.resultAdded.connect(self._on_result)
        session.resultsCleared.connect(self._clear_results)
        session.overlayChanged.connect(self._redraw)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # ---- construction -------------------------------------------------------------
    def _tool(self, text: str, tip: str, slot, checkable: bool = False) -> QToolButton:
        b = QToolButton(text=text)
        b.setToolTip(tip)
        b.setCheckable(checkable)
        (b.toggled if checkable else b.clicked).connect(slot)
        return b

    def _build(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        self.preset_box = QComboBox()
        self.preset_box.addItem("Window preset…")
        self.preset_box.addItems(list(self.presets))
        self.preset_box.setToolTip("Window/level presets (HU). Right-drag on the image to adjust.")
        self.preset_box.activated.connect(self._on_preset)
        self.plane_box = QComboBox()
        self.plane_box.addItems(list(self.plane_names))
        self.plane_box.setToolTip("View plane: the acquired slices or a reformat of the volume")
        self.plane_box.activated.connect(self.set_plane)
        self.wl_tool = self._tool("W/L", "Window/level tool: left-drag adjusts window (x) and level (y)",
                                  self._on_wl_tool, True)
        self.ruler_tool = self._tool("Ruler", "Ruler: left-drag measures a distance in mm (Delete removes)",
                                     self._on_ruler_tool, True)
        self.fit_btn = self._tool("Fit", "Zoom to fit the slice", self.fit)
        self.compare_box = QCheckBox("Compare")
        self.compare_box.setToolTip("Show original, reconstruction and anomaly side by side (linked)")
        self.compare_box.setEnabled(False)
        self.compare_box.toggled.connect(self._on_compare)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setMinimumWidth(120)
        self.slider.valueChanged.connect(self.set_slice)
        self.slice_label = QLabel("–")
        self.slice_label.setMinimumWidth(70)
        self.hot_btn = QToolButton()
        self.hot_btn.setText("Hottest slice")
        self.hot_btn.setToolTip("Go to the axial slice holding the anomaly map's maximum (H)")
        self.hot_btn.setEnabled(False)
        self.hot_btn.clicked.connect(self.go_to_hottest)
        self.colorbar = AnomalyColorBar(self.session)
        self.colorbar.setVisible(False)
        for w in (self.preset_box, self.plane_box, self.wl_tool, self.ruler_tool, self.fit_btn, self.compare_box,
                  self.hot_btn, self.colorbar):
            bar.addWidget(w)
        bar.addWidget(QLabel("Slice"))
        bar.addWidget(self.slider, 1)
        bar.addWidget(self.slice_label)

        self.panes = [ImagePane("Original"), ImagePane("Reconstruction"), ImagePane("Anomaly")]
        self.images = [pg.ImageItem() for _ in self.panes]
        self.heat = pg.ImageItem()
        self.heat.setZValue(10)
        for pane, item in zip(self.panes, self.images):
            pane.vb.addItem(item)
            pane.vb.wheel_scrolls = True
            pane.vb.right_drag_windows = True
            pane.vb.windowDrag.connect(self._on_window_drag)
            pane.vb.wheelStep.connect(lambda step: self.set_slice(self.index + step))
            pane.hoveredPoint.connect(self._on_hover)
            pane.view.installEventFilter(self)  # the mouse leaving ends the read-out
        main = self.panes[0]
        main.vb.addItem(self.heat)
        main.vb.measureDrag.connect(self._on_measure)
        self.rulers = RulerLayer(main.vb)
        self.scale_bar = ScaleBar(main.view)
        main.scale_bar = self.scale_bar
        main.vb.sigRangeChanged.connect(self._update_scale_bar)
        main.vb.sigResized.connect(self._update_scale_bar)
        self.grid = lay_out_compare(self, bar, self.panes)
        self.banner = SkippedBanner(self)
        self.layout().insertWidget(1, self.banner)

    # ---- data ----------------------------------------------------------------------
    def _on_data(self) -> None:
        data = self.session.data
        if data is None or getattr(data, "modality", None) != "ct":
            self.volume = self.data = None
            self.banner.hide()
            return
        vol = np.asarray(data.array)
        if vol.ndim == 2:
            vol = vol[None]
        self.data, self.volume = data, vol
        sp = tuple(data.spacing or (1.0, 1.0, 1.0))
        self.spacing = (sp + (1.0, 1.0, 1.0))[:3] if len(sp) >= 3 else (1.0,) + tuple(sp)
        self._clear_results()
        self.rulers.clear()
        self._hover = None
        self.file_window = file_window(data)
        self.level, self.width = self.file_window or preset(DEFAULT_WINDOW)
        md = getattr(data, "metadata", None) or {}
        self.plane_names = ct_mpr.plane_names(data.direction, md.get("slice_direction"))
        for i, name in enumerate(self.plane_names):
            self.plane_box.setItemText(i, name)
        self.banner.show_skipped(md.get("skipped"), vol.shape[0])
        self.plane_box.setEnabled(vol.shape[0] > 1)  # one slice has no reformat to show
        self._cursor = [n // 2 for n in vol.shape]
        self.axis, self.index = 0, self._cursor[0]
        self.set_plane(0)

    def _initial_window(self, data) -> tuple[float, float]:
        return file_window(data) or preset(DEFAULT_WINDOW)

    def set_plane(self, axis: int) -> None:
        """Show view plane *axis* (0 = the acquired slices, 1 and 2 = reformats) at its last slice."""
        if self.volume is None:
            return
        self._cursor[self.axis] = self.index
        self.axis, self.index = int(axis), self._cursor[int(axis)]
        self.plane_box.setCurrentIndex(self.axis)
        self.slider.blockSignals(True)
        self.slider.setRange(0, self.volume.shape[self.axis] - 1)
        self.slider.setValue(self.index)
        self.slider.blockSignals(False)
        # physical extent in mm; applied after every setImage (pyqtgraph scales by the image size)
        self.rect = QRectF(0, 0, *ct_mpr.extent_mm(self.volume.shape, self.spacing, self.axis))
        md = getattr(self.data, "metadata", None) or {}
        cos = ct_mpr.plane_cosines(self.data.direction, md.get("slice_direction"), self.axis)
        labels = orientation_labels(cos)
        for pane in self.panes:
            pane.set_orientation(labels)
        self._hover = None
        self.rulers.show_plane(self.axis, self.index)
        self._redraw()
        self.fit()

    def _on_result(self, task: str) -> None:
        entry = self.session.results.get(task)
        if entry is not None and self.volume is not None:
            presenter_for(entry.result).draw_ct(self, entry)

    def show_reconstruction(self, recon, anomaly, mask=None, *, title: str = "") -> None:
        """The reconstruction (HU) and its anomaly map (calibrated scale) as layers; enables Compare."""
        rec = np.asarray(recon, np.float32)
        ano = np.asarray(anomaly, np.float32)
        self.recon = rec[None] if rec.ndim == 2 else rec
        self.anomaly = ano[None] if ano.ndim == 2 else ano
        self.anomaly_mask = None if mask is None else (mask[None] if mask.ndim == 2 else mask)
        self.result_title = title
        self.compare_box.setEnabled(True)
        self.hot_btn.setEnabled(True)
        self.colorbar.setVisible(True)
        self._redraw()

    def _clear_results(self) -> None:
        self.recon = self.anomaly = self.anomaly_mask = None
        self.result_title = ""
        self.compare_box.setChecked(False)
        self.compare_box.setEnabled(False)
        self.hot_btn.setEnabled(False)
        self.colorbar.setVisible(False)
        self.heat.clear()
        for item in self.images[1:]:
            item.clear()

    # ---- interaction -------------------------------------------------------------
    def set_slice(self, index: int) -> None:
        """Show slice *index* of the current view plane."""
        if self.volume is None:
            return
        index = int(np.clip(index, 0, self.volume.shape[self.axis] - 1))
        if index != self.slider.value():
            self.slider.setValue(index)  # re-enters through valueChanged
            return
        self.index = index
        self.rulers.show_plane(self.axis, self.index)
        self._redraw()
        if self._hover is not None:  # the read-out follows the slice under a still mouse
            self._on_hover(*self._hover)

    def go_to_hottest(self) -> None:
        """Show the slice holding the anomaly map's maximum (inside its mask)."""
        k = hottest_slice(self.anomaly, self.anomaly_mask)
        if k is None or self.volume is None:
            return
        if self.axis != 0:  # the map's planes are the acquired (axial) slices
            self.set_plane(0)
        n = self.anomaly.shape[0]
        self.set_slice(int(round(k * (self.volume.shape[0] - 1) / max(1, n - 1))) if n != self.volume.shape[0] else k)
        self.statusMessage.emit(f"hottest slice {self.index + 1}: anomaly max {float(np.nanmax(self.anomaly[k])):.2f}")

    def set_window(self, level: float, width: float) -> None:
        self.level, self.width = float(level), max(1.0, float(width))
        self._redraw()

    def fit(self) -> None:
        self.panes[0].vb.autoRange(padding=0.02)

    def _on_preset(self, i: int) -> None:
        if i > 0:
            name = self.preset_box.itemText(i)
            self.set_window(*self.presets[name])

    def _sync_preset(self) -> None:
        """The box names the preset shown, or says Custom / From file (never a stale preset)."""
        box = self.preset_box
        name = preset_label(self.level, self.width, self.presets, current=box.currentText(),
                            file_window=self.file_window)
        if name in self.presets:
            box.setCurrentIndex(box.findText(name))
        else:
            box.setItemText(0, name)
            box.setCurrentIndex(0)

    def _on_wl_tool(self, on: bool) -> None:
        if on:
            self.ruler_tool.setChecked(False)
        for pane in self.panes:
            pane.vb.left_drag_windows = on

    def _on_ruler_tool(self, on: bool) -> None:
        if on:
            self.wl_tool.setChecked(False)
        self.panes[0].vb.left_drag_measures = on

    def _on_measure(self, start, end, finished: bool) -> None:
        self.rulers.drag(self.axis, self.index, start, end, finished)
        if finished and self.rulers.on_plane():
            self.statusMessage.emit(f"Distance {format_length(self.rulers.on_plane()[-1].length_mm)}")

    def _on_window_drag(self, dx: float, dy: float) -> None:
        self.set_window(*drag_window(self.level, self.width, dx, dy))

    def _on_compare(self, on: bool) -> None:
        for pane in self.panes[1:]:
            pane.setVisible(on)
        self._redraw()

    def keyPressEvent(self, ev):  # noqa: N802 - Qt override
        k = ev.key()
        steps = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1,
                 Qt.Key.Key_PageUp: -10, Qt.Key.Key_PageDown: 10}
        if self.volume is not None and k in steps:
            self.set_slice(self.index + steps[k])
        elif self.volume is not None and k == Qt.Key.Key_Home:
            self.set_slice(0)
        elif self.volume is not None and k == Qt.Key.Key_H and self.hot_btn.isEnabled():
            self.go_to_hottest()
        elif self.volume is not None and k == Qt.Key.Key_End:
            self.set_slice(self.volume.shape[self.axis] - 1)
        elif k in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.rulers.clear(plane_only=True)
        else:
            super().keyPressEvent(ev)

    def eventFilter(self, obj, ev):  # noqa: N802 - Qt override
        if ev.type() == QEvent.Type.Leave:
            self._hover = None
        return False

    def _on_hover(self, x: float, y: float) -> None:
        if self.volume is None:
            return
        self._hover = (x, y)
        k, row, col = ct_mpr.voxel_at(self.axis, self.index, x, y, self.spacing)
        if all(0 <= v < n for v, n in zip((k, row, col), self.volume.shape)):
            hu = float(self.volume[k, row, col])
            msg = f"slice {k + 1}  row {row}  col {col}: {hu:.0f} HU"
            a = self.anomaly
            if a is not None:
                n0 = self.volume.shape[0]
                ak = int(round(k * (a.shape[0] - 1) / max(1, n0 - 1)))
                r, c = (min(int(v * a.shape[d] / self.volume.shape[d]), a.shape[d] - 1)
                        for d, v in ((1, row), (2, col)))
                msg += f"   anomaly {float(a[ak, r, c]):.2f}"
            self.statusMessage.emit(msg)

    # ---- drawing -------------------------------------------------------------------
    def _slice_of(self, arr: np.ndarray | None) -> np.ndarray | None:
        if arr is None or self.volume is None:
            return None
        return ct_mpr.take_scaled(arr, self.volume.shape, self.axis, self.index)

    def _show(self, item: pg.ImageItem, arr: np.ndarray, levels) -> None:
        item.setImage(arr, levels=levels, autoLevels=False)
        item.setRect(self.rect)  # after setImage: maps any array size onto the slice's extent

    def _update_scale_bar(self, *_) -> None:
        mm_per_px = self.panes[0].vb.viewPixelSize()[0] if self.volume is not None else None
        self.scale_bar.set_scale(mm_per_px * 1000.0 if mm_per_px else None)  # it takes µm
        self.panes[0]._place()

    def _redraw(self) -> None:
        if self.volume is None:
            return
        self._sync_preset()
        levels = (self.level - self.width / 2, self.level + self.width / 2)
        self._show(self.images[0], ct_mpr.take(self.volume, self.axis, self.index), levels)
        ov = self.session.overlay
        ano = self._slice_of(self.anomaly)
        if ano is not None:
            m = self._slice_of(self.anomaly_mask)
            if m is not None and m.shape == ano.shape:
                ano = np.where(m, ano, 0.0)
            if ov.visible:
                self._show(self.heat, heat_rgba(ano, ov), (0, 255))
            else:
                self.heat.clear()
            if self.compare_box.isChecked():
                self._show(self.images[1], self._slice_of(self.recon), levels)
                self._show(self.images[2], gray_rgb(ano, ov), (0, 255))
        n = self.volume.shape[self.axis]
        self.slice_label.setText(f"{self.index + 1} / {n}")
        pos = ct_mpr.slice_position(self.data, self.axis, self.index)
        name = self.plane_names[self.axis]
        info = f"W {self.width:.0f}  L {self.level:.0f}   {name} {self.index + 1}/{n}  ({pos})"
        self.panes[0].set_info(info)
        self.panes[1].set_info(f"W {self.width:.0f}  L {self.level:.0f}")
        self.panes[2].set_info("0 … 2 (calibrated)" + (f"   slice max {float(np.nanmax(ano)):.2f}"
                                                      if ano is not None and ano.size else ""))
        self.panes[0].set_title(self.result_title or "Original")
