"""CT slice view: window/level by mouse and presets, HU under the cursor, slice scrolling,
zoom and pan, orientation labels, and the reconstruction / anomaly layers.

Mouse: right-drag = window (horizontal) and level (vertical); wheel = slice;
Ctrl+wheel = zoom; left-drag = pan (or window/level with the W/L tool).
Keys: Up/Down, PageUp/PageDown, Home/End move through the slices.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

from desktop.session import Session
from desktop.views.anomaly_colorbar import AnomalyColorBar
from desktop.views.ct_hotspot import hottest_slice
from desktop.views.image_pane import ImagePane, lay_out_compare
from desktop.views.overlays import gray_rgb, heat_rgba

__all__ = ["CtView", "window_presets", "orientation_labels"]

_FALLBACK_PRESETS = {
    "Soft tissue": (40.0, 400.0),
    "Lung": (-600.0, 1500.0),
    "Bone": (400.0, 1800.0),
    "Brain": (40.0, 80.0),
    "Liver": (60.0, 160.0),
    "Mediastinum": (50.0, 350.0),
}


def window_presets() -> dict[str, tuple[float, float]]:
    """Window presets name -> (level, width) in HU, from the engine when it has them."""
    try:
        from engine.ct_windows import WINDOW_PRESETS

        presets = {str(k).capitalize(): (float(v[0]), float(v[1])) for k, v in dict(WINDOW_PRESETS).items()}
        return presets or dict(_FALLBACK_PRESETS)
    except Exception:  # noqa: BLE001 - module absent or a different shape: use ours
        return dict(_FALLBACK_PRESETS)


def _axis_letters(v) -> str:
    # DICOM patient axes (LPS): +x = Left, +y = Posterior, +z = Head.
    pos, neg = ("L", "P", "H"), ("R", "A", "F")
    v = np.asarray(v, float)
    out = ""
    for i in np.argsort(-np.abs(v)):
        if abs(v[i]) < 0.25 or len(out) >= 2:
            break
        out += pos[i] if v[i] > 0 else neg[i]
    return out


def orientation_labels(direction) -> dict[str, str]:
    """Edge labels of an image from its ImageOrientationPatient (row then column cosines).

    >>> orientation_labels((1, 0, 0, 0, 1, 0))
    {'left': 'R', 'right': 'L', 'top': 'A', 'bottom': 'P'}
    """
    if direction is None or len(direction) < 6:
        return {}
    row, col = np.asarray(direction[:3], float), np.asarray(direction[3:6], float)
    return {"left": _axis_letters(-row), "right": _axis_letters(row),
            "top": _axis_letters(-col), "bottom": _axis_letters(col)}


class CtView(QWidget):
    """Slice viewer for a CT :class:`engine.data.Image` held in a :class:`Session`."""

    statusMessage = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.volume: np.ndarray | None = None
        self.spacing = (1.0, 1.0, 1.0)
        self.index = 0
        self.level, self.width = 40.0, 400.0
        self.presets = window_presets()
        self.recon: np.ndarray | None = None
        self.anomaly: np.ndarray | None = None
        self.anomaly_mask: np.ndarray | None = None
        self.rect = QRectF(0, 0, 1, 1)
        self._build()
        session.dataChanged.connect(self._on_data)
        session.resultAdded.connect(self._on_result)
        session.resultsCleared.connect(self._clear_results)
        session.overlayChanged.connect(self._redraw)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    # ---- construction -------------------------------------------------------------
    def _build(self) -> None:
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        self.preset_box = QComboBox()
        self.preset_box.addItem("Window preset…")
        self.preset_box.addItems(list(self.presets))
        self.preset_box.setToolTip("Window/level presets (HU). Right-drag on the image to adjust.")
        self.preset_box.activated.connect(self._on_preset)
        self.wl_tool = QToolButton()
        self.wl_tool.setText("W/L")
        self.wl_tool.setCheckable(True)
        self.wl_tool.setToolTip("Window/level tool: left-drag adjusts window (x) and level (y)")
        self.wl_tool.toggled.connect(self._on_wl_tool)
        self.fit_btn = QToolButton()
        self.fit_btn.setText("Fit")
        self.fit_btn.setToolTip("Zoom to fit the slice")
        self.fit_btn.clicked.connect(self.fit)
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
        self.hot_btn.setToolTip("Go to the slice holding the anomaly map's maximum (H)")
        self.hot_btn.setEnabled(False)
        self.hot_btn.clicked.connect(self.go_to_hottest)
        self.colorbar = AnomalyColorBar(self.session)
        self.colorbar.setVisible(False)
        for w in (self.preset_box, self.wl_tool, self.fit_btn, self.compare_box, self.hot_btn, self.colorbar):
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
        self.panes[0].vb.addItem(self.heat)
        self.grid = lay_out_compare(self, bar, self.panes)

    # ---- data ----------------------------------------------------------------------
    def _on_data(self) -> None:
        data = self.session.data
        if data is None or getattr(data, "modality", None) != "ct":
            self.volume = None
            return
        vol = np.asarray(data.array)
        if vol.ndim == 2:
            vol = vol[None]
        self.volume = vol
        sp = tuple(data.spacing or (1.0, 1.0, 1.0))
        self.spacing = (sp + (1.0, 1.0, 1.0))[:3] if len(sp) >= 3 else (1.0,) + tuple(sp)
        self._clear_results()
        lvl, wid = self._initial_window(data)
        self.level, self.width = lvl, wid
        self.slider.blockSignals(True)
        self.slider.setRange(0, vol.shape[0] - 1)
        self.slider.setValue(vol.shape[0] // 2)
        self.slider.blockSignals(False)
        self.index = vol.shape[0] // 2
        # physical extent in mm; applied after every setImage (pyqtgraph scales by the image size)
        self.rect = QRectF(0, 0, vol.shape[2] * self.spacing[2], vol.shape[1] * self.spacing[1])
        labels = orientation_labels(data.direction)
        for pane in self.panes:
            pane.set_orientation(labels)
        self._redraw()
        self.fit()

    def _initial_window(self, data) -> tuple[float, float]:
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
        for name in ("Soft tissue", "Mediastinum", "Abdomen"):
            if name in self.presets:
                return self.presets[name]
        return 40.0, 400.0

    def _on_result(self, task: str) -> None:
        if task != "reconstruct" or self.volume is None:
            return
        res = self.session.results[task].result
        rec = np.asarray(res.reconstruction.array, np.float32)
        ano = np.asarray(res.anomaly.array, np.float32)
        self.recon = rec[None] if rec.ndim == 2 else rec
        self.anomaly = ano[None] if ano.ndim == 2 else ano
        mask = res.anomaly.mask
        self.anomaly_mask = None if mask is None else (mask[None] if mask.ndim == 2 else mask)
        self.compare_box.setEnabled(True)
        self.hot_btn.setEnabled(True)
        self.colorbar.setVisible(True)
        self._redraw()

    def _clear_results(self) -> None:
        self.recon = self.anomaly = self.anomaly_mask = None
        self.compare_box.setChecked(False)
        self.compare_box.setEnabled(False)
        self.hot_btn.setEnabled(False)
        self.colorbar.setVisible(False)
        self.heat.clear()
        for item in self.images[1:]:
            item.clear()

    # ---- interaction -------------------------------------------------------------
    def set_slice(self, index: int) -> None:
        if self.volume is None:
            return
        index = int(np.clip(index, 0, self.volume.shape[0] - 1))
        if index != self.slider.value():
            self.slider.setValue(index)  # re-enters through valueChanged
            return
        self.index = index
        self._redraw()

    def go_to_hottest(self) -> None:
        """Show the slice holding the anomaly map's maximum (inside its mask)."""
        k = hottest_slice(self.anomaly, self.anomaly_mask)
        if k is None or self.volume is None:
            return
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

    def _on_wl_tool(self, on: bool) -> None:
        for pane in self.panes:
            pane.vb.left_drag_windows = on

    def _on_window_drag(self, dx: float, dy: float) -> None:
        scale = max(1.0, self.width / 200.0)
        self.set_window(self.level - dy * scale, self.width + dx * scale * 2)

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
            self.set_slice(self.volume.shape[0] - 1)
        else:
            super().keyPressEvent(ev)

    def _on_hover(self, x: float, y: float) -> None:
        if self.volume is None:
            return
        col, row = int(np.floor(x / self.spacing[2])), int(np.floor(y / self.spacing[1]))
        if 0 <= row < self.volume.shape[1] and 0 <= col < self.volume.shape[2]:
            hu = float(self.volume[self.index, row, col])
            msg = f"x {col}  y {row}  slice {self.index + 1}: {hu:.0f} HU"
            a = self._slice_of(self.anomaly)
            if a is not None:
                r = int(row * a.shape[0] / self.volume.shape[1])
                c = int(col * a.shape[1] / self.volume.shape[2])
                msg += f"   anomaly {float(a[r, c]):.2f}"
            self.statusMessage.emit(msg)

    # ---- drawing -------------------------------------------------------------------
    def _slice_of(self, arr: np.ndarray | None) -> np.ndarray | None:
        if arr is None or self.volume is None:
            return None
        i = int(round(self.index * (arr.shape[0] - 1) / max(1, self.volume.shape[0] - 1)))
        return arr[int(np.clip(i, 0, arr.shape[0] - 1))]

    def _show(self, item: pg.ImageItem, arr: np.ndarray, levels) -> None:
        item.setImage(arr, levels=levels, autoLevels=False)
        item.setRect(self.rect)  # after setImage: maps any array size onto the slice's extent

    def _redraw(self) -> None:
        if self.volume is None:
            return
        levels = (self.level - self.width / 2, self.level + self.width / 2)
        self._show(self.images[0], self.volume[self.index], levels)
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
        n = self.volume.shape[0]
        self.slice_label.setText(f"{self.index + 1} / {n}")
        z = self.index * self.spacing[0]
        info = f"W {self.width:.0f}  L {self.level:.0f}   slice {self.index + 1}/{n}  ({z:.1f} mm)"
        self.panes[0].set_info(info)
        self.panes[1].set_info(f"W {self.width:.0f}  L {self.level:.0f}")
        self.panes[2].set_info("0 … 2 (calibrated)" + (f"   slice max {float(np.nanmax(ano)):.2f}"
                                                      if ano is not None and ano.size else ""))
        e = self.session.results.get("reconstruct")
        if e is not None:
            stats = getattr(e.result.anomaly, "stats", {}) or {}
            extra = f"  max {stats['max']:.2f}" if "max" in stats else ""
            self.panes[0].set_title(f"Original + anomaly ({e.model}){extra}")
        else:
            self.panes[0].set_title("Original")
