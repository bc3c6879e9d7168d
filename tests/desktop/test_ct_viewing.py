"""CT viewing as a radiologist expects it (issue 19 item 5, part one): the slice position in
patient coordinates, a preset box that never names a stale preset, a hover read-out that
follows key paging, a window/level drag step that scales with the width, a scale bar in mm."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication


def test_slice_position_is_the_dicom_patient_z(view, lidc, qtbot):
    """The middle LIDC slice is at z = -127.5 mm (ImagePositionPatient), not '95.0 mm' from the first."""
    assert view.index == 38
    assert lidc.metadata["plane_positions"][38][2] == pytest.approx(-127.5)
    info = view.panes[0].info.text()
    assert "z -127.5 mm" in info and "95.0" not in info
    qtbot.keyClick(view, Qt.Key.Key_Home)
    assert "z -32.5 mm" in view.panes[0].info.text()
    qtbot.keyClick(view, Qt.Key.Key_End)
    assert "z -222.5 mm" in view.panes[0].info.text()


def test_preset_box_says_custom_after_a_manual_window(view):
    box = view.preset_box
    assert box.currentText() == "From file"  # LIDC carries its own window (-600 / 1600)
    i = box.findText("Lung")
    box.setCurrentIndex(i)
    box.activated.emit(i)
    assert box.currentText() == "Lung" and (view.level, view.width) == (-600.0, 1500.0)
    view._on_window_drag(12.0, 0.0)  # the right-drag path
    assert view.width != 1500.0
    assert box.currentText() == "Custom", "the box still names the preset after a manual change"
    view.set_window(400.0, 1800.0)  # values of a preset select it
    assert box.currentText() == "Bone"


def test_hover_read_out_follows_the_slice_after_key_paging(view, lidc, qtbot):
    msgs: list[str] = []
    view.statusMessage.connect(msgs.append)
    sp = view.spacing
    row, col = 300, 200
    view.panes[0].hoveredPoint.emit(col * sp[2] + 0.1, row * sp[1] + 0.1)
    assert msgs[-1].startswith("slice 39 ") and f"{lidc.array[38, row, col]:.0f} HU" in msgs[-1]
    n = len(msgs)
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert len(msgs) > n, "no new read-out after paging"
    assert msgs[-1].startswith("slice 49 ") and f"row {row}  col {col}" in msgs[-1]
    assert f"{lidc.array[48, row, col]:.0f} HU" in msgs[-1]
    # once the mouse has left the image, paging gives no read-out of a point no longer pointed at
    QApplication.sendEvent(view.panes[0].view, QEvent(QEvent.Type.Leave))
    n = len(msgs)
    qtbot.keyClick(view, Qt.Key.Key_Down)
    assert len(msgs) == n and view.index == 49


def test_window_drag_step_is_proportional_to_the_width(view):
    def step(width: float) -> tuple[float, float]:
        view.set_window(0.0, width)
        view._on_window_drag(1.0, -1.0)  # one pixel right and up
        return view.width - width, view.level

    dw_narrow, dl_narrow = step(80.0)  # brain window
    dw_wide, dl_wide = step(1600.0)  # lung window
    assert dw_wide / dw_narrow == pytest.approx(20.0) and dl_wide / dl_narrow == pytest.approx(20.0)
    assert dw_wide <= 5.0 and dl_wide <= 5.0, "a one-pixel drag must not jump tens of HU"
    assert dl_narrow > 0  # up raises the level


def test_slice_position_without_patient_geometry_is_the_distance_from_the_first():
    from desktop.views.ct_mpr import slice_position
    from engine.data import Image

    vol = np.zeros((40, 4, 4), np.float32)
    plain = Image(modality="ct", shape=vol.shape, spacing=(2.5, 1.0, 1.0), units="HU", path="<array>", array=vol)
    assert slice_position(plain, 0, 38) == "+95.0 mm from first"
    placed = Image(modality="ct", shape=vol.shape, spacing=(2.5, 1.0, 1.0), units="HU", path="<array>", array=vol,
                   origin=(-0.04, 10.0, -32.5), direction=(1, 0, 0, 0, 1, 0),
                   metadata={"slice_direction": (0.0, 0.0, -1.0)})
    assert slice_position(placed, 0, 38) == "z -127.5 mm"  # no plane_positions: origin + k x gap
    assert slice_position(placed, 2, 0) == "x 0.0 mm" and slice_position(placed, 1, 2) == "y 12.0 mm"


def test_ct_view_has_a_scale_bar_in_mm(view, qtbot):
    bar = view.panes[0].scale_bar
    assert bar is not None and bar.isVisible()

    def check() -> float:
        mm_per_px = view.panes[0].vb.viewPixelSize()[0]
        mm = float(bar.text.split()[0])
        assert bar.text.endswith(" mm") and mm in (1, 2, 5, 10, 20, 50, 100, 200)
        assert bar.bar_px * mm_per_px == pytest.approx(mm, rel=0.02)
        return mm

    whole = check()
    view.panes[0].vb.scaleBy((0.25, 0.25))  # zoom in 4x: a shorter round length
    qtbot.wait(10)
    assert check() < whole
    assert np.isfinite(view.panes[0].vb.viewPixelSize()[0])
