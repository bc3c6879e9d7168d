"""Issue 15 item 3: 'go to the hottest slice' and the fixed-scale colour bar in the CT view."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from desktop.session import ANOMALY_DISPLAY_MAX, ResultEntry, Session
from desktop.views.anomaly_colorbar import AnomalyColorBar, colorbar_rgb
from desktop.views.ct_hotspot import hottest_slice
from desktop.views.ct_view import CtView
from desktop.views.overlays import lut


def _ct(planes=12, size=64):
    from engine.data import Image

    vol = np.full((planes, size, size), -800.0, np.float32)
    return Image(modality="ct", shape=vol.shape, spacing=(2.5, 0.7, 0.7), units="HU", array=vol,
                 path="synthetic.dcm", dtype="float32")


def _result(anomaly, mask=None):
    from engine.results import AnomalyMap, Reconstruction, ReconstructionResult

    rec = Reconstruction(array=np.zeros_like(anomaly), units="HU", model="m", sha256="0" * 64)
    am = AnomalyMap(array=anomaly, scale={}, model="m", sha256="0" * 64, mask=mask)
    return ResultEntry(task="reconstruct", result=ReconstructionResult(reconstruction=rec, anomaly=am), model="m")


def test_hottest_slice_known_answers():
    a = np.zeros((5, 8, 8), np.float32)
    a[3, 2, 2] = 1.7
    a[1, 7, 7] = 5.0  # hotter, but outside the mask below
    mask = np.ones(a.shape, bool)
    mask[:, 7, 7] = False
    assert hottest_slice(a) == 1
    assert hottest_slice(a, mask) == 3
    assert hottest_slice(a, mask[0]) == 3  # one 2-D mask for every plane
    a[3, 2, 2] = np.nan
    assert hottest_slice(a, mask) == 0  # NaN ignored; all-zero planes: the first
    assert hottest_slice(None) is None
    assert hottest_slice(a, np.zeros(a.shape, bool)) is None


def test_go_to_hottest_slice_action(qtbot):
    session = Session()
    view = CtView(session)
    qtbot.addWidget(view)
    session.set_data(_ct(), "synthetic.dcm")
    assert not view.hot_btn.isEnabled() and view.colorbar.isHidden()
    a = np.zeros((12, 64, 64), np.float32)
    a[9, 30, 30] = 1.4
    a[2, 0, 0] = 3.0  # outside the body mask: must not win
    mask = np.ones(a.shape, bool)
    mask[:, 0, 0] = False
    session.add_result(_result(a, mask))
    assert view.hot_btn.isEnabled() and not view.colorbar.isHidden()
    view.set_slice(0)
    messages = []
    view.statusMessage.connect(messages.append)
    qtbot.mouseClick(view.hot_btn, Qt.MouseButton.LeftButton)
    assert view.index == 9 and view.slider.value() == 9
    assert messages and "hottest slice 10" in messages[-1] and "1.40" in messages[-1]
    view.set_slice(4)
    qtbot.keyClick(view, Qt.Key.Key_H)
    assert view.index == 9
    session.clear_results()
    assert not view.hot_btn.isEnabled() and view.colorbar.isHidden()


def test_colorbar_draws_the_fixed_scale_and_follows_the_overlay(qtbot):
    session = Session()
    bar = AnomalyColorBar(session)
    qtbot.addWidget(bar)
    bar.resize(210, bar.sizeHint().height())
    bar.show()
    session.set_overlay(colormap="viridis", threshold=0.5)
    r = bar.bar_rect()
    y = r.center().y()

    def px(value):  # the colour drawn at *value* on the 0..ANOMALY_DISPLAY_MAX scale
        img = bar.grab().toImage()
        x = r.left() + int(value / ANOMALY_DISPLAY_MAX * (r.width() - 1))
        c = img.pixelColor(x, y)
        return np.array([c.red(), c.green(), c.blue()])

    top = lut("viridis")[255].astype(int)
    assert np.abs(px(ANOMALY_DISPLAY_MAX) - top).max() <= 3
    assert np.abs(px(0.1) - 96).max() <= 1  # below the threshold: grey, as the overlay is transparent there
    assert np.abs(px(1.0) - lut("viridis")[128].astype(int)).max() <= 8
    session.set_overlay(colormap="inferno", threshold=0.0)
    assert np.abs(px(ANOMALY_DISPLAY_MAX) - lut("inferno")[255].astype(int)).max() <= 3
    assert np.abs(px(0.05) - lut("inferno")[6].astype(int)).max() <= 12


def test_colorbar_colours_known_answer():
    rgb = colorbar_rgb("inferno", threshold=1.0, width=4)  # centres at 0.25, 0.75, 1.25, 1.75
    assert (rgb[:2] == 96).all()
    assert (rgb[2] == lut("inferno")[int(1.25 / ANOMALY_DISPLAY_MAX * 255)]).all()
    assert (rgb[3] == lut("inferno")[int(1.75 / ANOMALY_DISPLAY_MAX * 255)]).all()
