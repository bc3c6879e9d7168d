"""One image pane: a pyqtgraph view box with corner labels, used by the CT and slide views.

Mouse: left-drag pans, Ctrl+wheel or the pinch zooms; the owner decides what the
plain wheel and the right-drag do (slice scrolling and window/level for CT, zoom
for slides) through :attr:`SliceViewBox.wheel_scrolls` and :attr:`SliceViewBox.right_drag_windows`.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLayout, QVBoxLayout, QWidget

__all__ = ["SliceViewBox", "ImagePane", "lay_out_compare"]

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

_LABEL_STYLE = ("color: #f0f0f0; background: rgba(0,0,0,110); padding: 1px 4px; "
                "border-radius: 3px; font-weight: 600;")


class SliceViewBox(pg.ViewBox):
    """A ViewBox whose right-drag and wheel can be given to the owner."""

    windowDrag = Signal(float, float)  # dx, dy in screen pixels
    wheelStep = Signal(int)  # +1 = next slice
    measureDrag = Signal(object, object, bool)  # start, current (view QPointF), finished

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.wheel_scrolls = False
        self.right_drag_windows = False
        self.left_drag_windows = False  # the W/L tool
        self.left_drag_measures = False  # the ruler tool
        self.setMenuEnabled(False)

    def mouseDragEvent(self, ev, axis=None):
        button = ev.button()
        if ((self.right_drag_windows and button == Qt.MouseButton.RightButton)
                or (self.left_drag_windows and button == Qt.MouseButton.LeftButton)):
            ev.accept()
            d = ev.screenPos() - ev.lastScreenPos()
            self.windowDrag.emit(float(d.x()), float(d.y()))
            return
        if self.left_drag_measures and button == Qt.MouseButton.LeftButton:
            ev.accept()
            self.measureDrag.emit(self.mapSceneToView(ev.buttonDownScenePos()),
                                  self.mapSceneToView(ev.scenePos()), bool(ev.isFinish()))
            return
        if button == Qt.MouseButton.RightButton:
            ev.ignore()
            return
        super().mouseDragEvent(ev, axis)

    def wheelEvent(self, ev, axis=None):
        mods = ev.modifiers()
        if self.wheel_scrolls and not (mods & Qt.KeyboardModifier.ControlModifier):
            delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
            if delta:
                self.wheelStep.emit(-1 if delta > 0 else 1)
            ev.accept()
            return
        super().wheelEvent(ev, axis)


class ImagePane(QWidget):
    """A GraphicsView holding a :class:`SliceViewBox`, with a title and corner labels."""

    hoveredPoint = Signal(float, float)  # view coordinates under the mouse

    def __init__(self, title: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.view = pg.GraphicsView(self)
        self.view.setBackground("k")
        # keys (slices, pages) go to the owning viewer, not to QGraphicsView's scrolling
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.vb = SliceViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view.setCentralItem(self.vb)
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.view)
        self.title = self._label(title)
        self.info = self._label("")
        self.orient = {k: self._label("") for k in ("left", "right", "top", "bottom")}
        self.scale_bar: QWidget | None = None

    def _label(self, text: str) -> QLabel:
        lab = QLabel(text, self.view)
        lab.setStyleSheet(_LABEL_STYLE)
        lab.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        lab.setVisible(bool(text))
        return lab

    def set_title(self, text: str) -> None:
        self.title.setText(text)
        self.title.setVisible(bool(text))
        self._place()

    def set_info(self, text: str) -> None:
        self.info.setText(text)
        self.info.setVisible(bool(text))
        self._place()

    def set_orientation(self, labels: dict[str, str] | None) -> None:
        for key, lab in self.orient.items():
            text = (labels or {}).get(key, "")
            lab.setText(text)
            lab.setVisible(bool(text))
        self._place()

    def resizeEvent(self, ev):  # noqa: N802 - Qt override
        super().resizeEvent(ev)
        self._place()

    def _place(self) -> None:
        w, h = self.view.width(), self.view.height()
        for lab in (self.title, self.info, *self.orient.values()):
            lab.adjustSize()
        self.title.move(6, 6)
        self.info.move(6, max(0, h - self.info.height() - 6))
        o = self.orient
        o["left"].move(4, (h - o["left"].height()) // 2)
        o["right"].move(max(0, w - o["right"].width() - 4), (h - o["right"].height()) // 2)
        # the top/bottom letters go under/over the title/info when they would overlap them
        tx = (w - o["top"].width()) // 2
        ty = 4 if (not self.title.isVisible() or tx > self.title.x() + self.title.width() + 4) \
            else self.title.y() + self.title.height() + 4
        o["top"].move(tx, ty)
        bx = (w - o["bottom"].width()) // 2
        by = h - o["bottom"].height() - 4
        if self.info.isVisible() and bx <= self.info.x() + self.info.width() + 4:
            by = self.info.y() - o["bottom"].height() - 4
        o["bottom"].move(bx, max(0, by))
        if self.scale_bar is not None:
            self.scale_bar.adjustSize()
            self.scale_bar.move(max(0, w - self.scale_bar.width() - 10),
                                max(0, h - self.scale_bar.height() - 10))

    def _on_mouse_moved(self, scene_pos) -> None:
        if self.vb.sceneBoundingRect().contains(scene_pos):
            p = self.vb.mapSceneToView(scene_pos)
            self.hoveredPoint.emit(float(p.x()), float(p.y()))


def lay_out_compare(view: QWidget, bar: QLayout, panes: list[ImagePane]) -> QHBoxLayout:
    """Lay out *view*: its tool *bar* above the *panes* in one row; returns that row.

    The panes after the first follow the first one's pan and zoom and stay hidden until
    compare mode shows them (the CT and slide views share this layout).
    """
    for pane in panes[1:]:
        pane.vb.setXLink(panes[0].vb)
        pane.vb.setYLink(panes[0].vb)
        pane.setVisible(False)
    # compare: three equal panes (linked views with locked aspect need equal sizes)
    grid = QHBoxLayout()
    grid.setContentsMargins(0, 0, 0, 0)
    grid.setSpacing(2)
    for pane in panes:
        grid.addWidget(pane)
    lay = QVBoxLayout(view)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(0)
    lay.addLayout(bar)
    lay.addLayout(grid, 1)
    return grid
