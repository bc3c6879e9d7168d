"""CT coronal/sagittal reformats with the aspect from the spacing, and the ruler in mm
(issue 19 item 5, part two), on the shared LIDC-IDRI-0001 series."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtWidgets import QApplication


def _choose_plane(view, name: str) -> None:
    i = view.plane_box.findText(name)
    assert i >= 0, [view.plane_box.itemText(k) for k in range(view.plane_box.count())]
    view.plane_box.setCurrentIndex(i)
    view.plane_box.activated.emit(i)


def _extent(item):
    r = item.mapRectToParent(item.boundingRect())
    return r.width(), r.height()


@pytest.mark.parametrize("name, axis", [("Coronal", 1), ("Sagittal", 2)])
def test_reformatted_planes_from_the_volume_with_the_spacing_aspect(view, lidc, qtbot, name, axis):
    vol, (dz, dy, dx) = lidc.array, lidc.spacing
    _choose_plane(view, name)
    assert view.axis == axis and view.slider.maximum() == vol.shape[axis] - 1
    shown = view.images[0].image
    expect = vol[:, view.index, :] if axis == 1 else vol[:, :, view.index]
    np.testing.assert_array_equal(shown, expect)
    # 77 slices of 2.5 mm are 192.5 mm tall; 512 pixels of 0.703 mm are 360 mm wide
    assert _extent(view.images[0]) == pytest.approx((512 * (dx if axis == 1 else dy), 77 * dz))
    labels = {k: lab.text() for k, lab in view.panes[0].orient.items()}
    assert labels == ({"left": "R", "right": "L", "top": "H", "bottom": "F"} if axis == 1
                      else {"left": "A", "right": "P", "top": "H", "bottom": "F"})
    # the position is the patient coordinate of the plane (y for coronal, x for sagittal)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    i = view.index
    origin = lidc.origin[1] + i * dy if axis == 1 else lidc.origin[0] + i * dx
    assert f"{'y' if axis == 1 else 'x'} {origin:.1f} mm" in view.panes[0].info.text()
    # the read-out names the voxel of the volume under the mouse
    msgs: list[str] = []
    view.statusMessage.connect(msgs.append)
    view.panes[0].hoveredPoint.emit(100 * (dx if axis == 1 else dy) + 0.1, 20 * dz + 0.1)
    k, r, c = (20, i, 100) if axis == 1 else (20, 100, i)
    assert msgs[-1].startswith(f"slice {k + 1}  row {r}  col {c}: {vol[k, r, c]:.0f} HU")
    # back to axial keeps its slice
    _choose_plane(view, "Axial")
    assert view.axis == 0 and view.index == 38 and view.images[0].image.shape == (512, 512)


def test_anomaly_layer_follows_the_reformat(view, lidc):
    anomaly = np.zeros(lidc.shape, np.float32)
    anomaly[30:40, 200:260, 300:380] = 1.8
    view.show_reconstruction(lidc.array, anomaly)
    _choose_plane(view, "Coronal")
    view.set_slice(230)
    heat = view.heat.image
    assert heat.shape == (77, 512, 4) and _extent(view.heat) == pytest.approx(_extent(view.images[0]))
    assert (heat[32:38, 310:370, 3] > 0).all() and (heat[:25, :, 3] == 0).all()


def _drag(qtbot, view, start_mm, end_mm) -> None:
    """A real left-drag on the first pane between two points given in view mm."""
    pane = view.panes[0]
    vp = pane.view.viewport()

    def at(p):
        return pane.view.mapFromScene(pane.vb.mapViewToScene(QPointF(*p)))

    a, b = at(start_mm), at(end_mm)
    # a press within the double-click interval of the last release is a double click, not a new drag
    qtbot.wait(QApplication.doubleClickInterval() + 50)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=a)
    for t in np.linspace(0.1, 1.0, 6):
        qtbot.mouseMove(vp, pos=a + (b - a) * float(t))  # QPoint arithmetic, whole pixels
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=b)


def test_ruler_measures_a_distance_in_mm(view, lidc, qtbot):
    dz, dy, dx = lidc.spacing
    msgs: list[str] = []
    view.statusMessage.connect(msgs.append)
    view.ruler_tool.setChecked(True)
    before = view.panes[0].vb.viewRange()
    _drag(qtbot, view, (100 * dx, 250 * dy), (200 * dx, 250 * dy))  # 100 pixels across
    assert view.panes[0].vb.viewRange() == before, "the ruler drag panned the view"
    (m,) = view.rulers.measurements
    px_mm = view.panes[0].vb.viewPixelSize()[0]  # the ends land on whole screen pixels
    assert m.length_mm == pytest.approx(100 * dx, abs=2 * px_mm)
    assert msgs[-1] == f"Distance {m.length_mm:.1f} mm"
    _line, label = m.items
    assert label.isVisible() and label.toPlainText() == f"{m.length_mm:.1f} mm"
    # another slice does not show it; its own slice does
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert not label.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_Up)
    assert label.isVisible()
    # on a coronal view a vertical ruler over 20 slices is 20 x 2.5 mm
    _choose_plane(view, "Coronal")
    assert not label.isVisible()
    _drag(qtbot, view, (250 * dx, 10 * dz), (250 * dx, 30 * dz))
    coronal = view.rulers.on_plane()
    assert len(coronal) == 1 and coronal[0].length_mm == pytest.approx(20 * dz, abs=2 * px_mm)
    qtbot.keyClick(view, Qt.Key.Key_Delete)
    assert view.rulers.on_plane() == [] and len(view.rulers.measurements) == 1
    # with the tool off, a left-drag pans again
    view.ruler_tool.setChecked(False)
    _drag(qtbot, view, (250 * dx, 10 * dz), (300 * dx, 30 * dz))
    assert len(view.rulers.measurements) == 1 and view.panes[0].vb.viewRange() != before
